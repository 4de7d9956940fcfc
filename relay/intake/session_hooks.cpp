// RelaySessionHooks; see session_hooks.hpp.
#include "relay/intake/session_hooks.hpp"

#include <openssl/crypto.h>

#include "auth/password_hash.hpp"
#include "relay/core/log.hpp"
#include "relay/intake/routing.hpp"
#include "relay/smtp/replies.hpp"

namespace relay {
namespace {

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

RelaySessionHooks::RelaySessionHooks(std::shared_ptr<const conf::Config> config, std::string client_address)
    : config_(std::move(config)), client_(std::move(client_address)) {}

smtp::SessionHooks::AuthResult RelaySessionHooks::authenticate(std::string_view user, std::string_view password) {
    const conf::User* u = config_->find_user(std::string(user));
    if (u && !u->password_hash.empty()) {
        // A password seen before is answered from the cache; a new one needs PBKDF2, off this thread.
        auto verdict = auth::cached_password_verdict(u->name, u->password_hash, password);
        if (!verdict) return {.needs_slow_check = true};
        if (!*verdict) return {};
        return {true, u->account};
    }
    // Compare even for unknown users so timing does not reveal which names exist.
    std::string_view expected = u ? std::string_view(u->password.reveal()) : std::string_view("\x01unknown-user");
    bool ok = constant_time_equal(expected, password) && u != nullptr && !u->password.empty();
    if (!ok) return {};
    return {true, u->account};
}

smtp::SessionHooks::AuthResult RelaySessionHooks::authenticate_slow(std::string_view user, std::string_view password) {
    const conf::User* u = config_->find_user(std::string(user));
    if (!u || u->password_hash.empty() || !auth::verify_password_cached(u->name, u->password_hash, password)) return {};
    return {true, u->account};
}

smtp::SessionHooks::RouteResult RelaySessionHooks::route(std::string_view user, std::string_view user_account,
                                                         std::string_view mail_from) {
    return route_message(*config_, user, user_account, mail_from);
}

std::uint64_t RelaySessionHooks::size_limit(std::string_view user_account) {
    return advertised_size(*config_, user_account);
}

void RelaySessionHooks::note(std::string_view what, std::string_view detail) {
    // "auth_failed client=<ip> ..." is the fail2ban line (README): client= always comes first.
    if (what == "auth_failed") ++auth_failures;
    log::warning(what, {{"client", client_}, {"detail", detail}});
}

std::string RelaySessionHooks::auth_refusal() {
    if (auth_locked && auth_locked()) {
        log::warning("auth_refused_locked", {{"client", client_}});
        return std::string(smtp::replies::kAuthLocked);
    }
    return {};
}

}  // namespace relay
