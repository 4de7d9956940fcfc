// AUTH PLAIN and LOGIN (RFC 4954, 4616) for smtp::ServerSession: the exchange, the credential
// check (cheap here, or handed to the I/O layer for the slow KDF) and the answer. See session_state.hpp.
#include "relay/smtp/session_state.hpp"

#include "relay/core/base64.hpp"
#include "relay/smtp/replies.hpp"

namespace relay::smtp {

void ServerSession::State::auth(std::string_view argument) {
    if (!policy.auth_offered) return reply(replies::kAuthNotEnabled);
    if (authenticated) return reply(replies::kAlreadyAuthenticated);
    const std::size_t space = argument.find(' ');
    const std::string_view mechanism = argument.substr(0, space);
    const std::string_view initial = space == std::string_view::npos ? std::string_view{} : argument.substr(space + 1);
    if (mechanism.empty() || initial.find(' ') != std::string_view::npos)
        return reply(replies::kAuthSyntax);
    const bool plain = equals_nocase(mechanism, "PLAIN");
    if (!plain && !equals_nocase(mechanism, "LOGIN")) return reply(replies::kAuthUnknownMechanism);
    if (!auth_allowed_here())
        return reply(replies::kEncryptionRequired);
    if (std::string refusal = hooks.auth_refusal(); !refusal.empty()) return reply(refusal);
    if (initial.empty()) {
        stage = plain ? Stage::auth_plain : Stage::auth_login_user;
        return reply(plain ? replies::kAuthPlainChallenge : replies::kAuthUsernameChallenge);
    }
    // RFC 4954 4: "=" is an empty initial response.
    auth_response(initial == "=" ? std::string_view{} : initial, plain ? Stage::auth_plain : Stage::auth_login_user);
}

void ServerSession::State::auth_line(std::string_view line) {
    const Stage at = stage;
    stage = Stage::ready;
    if (line == "*") return reply(replies::kAuthCancelled);
    auth_response(line, at);
}

void ServerSession::State::auth_response(std::string_view base64, Stage at) {
    stage = Stage::ready;
    std::optional<std::string> decoded = core::base64_decode(base64);
    if (!decoded) return reply(replies::kInvalidBase64);
    WipedString response{std::move(*decoded)};
    if (at == Stage::auth_login_user) {
        login_user.value = std::move(response.value);
        stage = Stage::auth_login_password;
        return reply(replies::kAuthPasswordChallenge);
    }
    if (at == Stage::auth_login_password) {
        const std::string name = std::move(login_user.value);
        login_user.value.clear();
        return check_credentials(name, response.value);
    }
    // RFC 4616 2: message = [authzid] NUL authcid NUL passwd; we act only as authcid.
    const std::string_view message = response.value;
    const std::size_t first = message.find('\0');
    const std::size_t second = first == std::string_view::npos ? first : message.find('\0', first + 1);
    if (second == std::string_view::npos || message.find('\0', second + 1) != std::string_view::npos)
        return check_failed("");
    const std::string_view authzid = message.substr(0, first);
    const std::string_view authcid = message.substr(first + 1, second - first - 1);
    if (!authzid.empty() && authzid != authcid) return check_failed(authcid);
    check_credentials(authcid, message.substr(second + 1));
}

void ServerSession::State::check_credentials(std::string_view name, std::string_view password) {
    if (name.empty()) return check_failed(name);
    SessionHooks::AuthResult result = hooks.authenticate(name, password);
    if (result.needs_slow_check) {
        // A KDF run takes a fraction of a second: the I/O layer does it on a worker thread.
        pending_user.assign(name);
        pending_password.value.assign(password);
        stage = Stage::awaiting_credentials;
        step->next = Next::verify_credentials;
        return;
    }
    credentials_checked(name, std::move(result));
}

void ServerSession::State::credentials_checked(std::string_view name, SessionHooks::AuthResult result) {
    if (!result.ok) return check_failed(name);
    authenticated = true;
    user.assign(name);
    user_account = std::move(result.account);
    reply(replies::kAuthSucceeded);
}

void ServerSession::State::check_failed(std::string_view name) {
    hooks.note("auth_failed", "user=" + std::string(name.substr(0, 256)));
    reply(replies::kAuthFailed);
}

}  // namespace relay::smtp
