// RelaySessionHooks: local users, AUTH attempt accounting and routing for one session. See
// session_hooks.hpp.
#include "relay/intake/session_hooks.hpp"
#include "relay/smtp/replies.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>

#include <openssl/crypto.h>

#include "auth/password_hash.hpp"
#include "relay/core/log.hpp"
#include "relay/intake/routing.hpp"

namespace relay {
namespace {

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

using smtp::replies::kAuthBusy;
using smtp::replies::kAuthLocked;

// The iteration count an unknown name's dummy check uses: what the configured hashes cost. Zero
// when no user has a password_hash (then every check is cheap, and so is an unknown name's).
std::uint32_t dummy_iterations(const conf::Config& config) {
    std::uint32_t most = 0;
    for (const auto& u : config.users)
        if (!u.password_hash.empty())
            if (auto parsed = auth::parse_password_hash(u.password_hash)) most = std::max(most, parsed->iterations);
    return most;
}
}  // namespace

RelaySessionHooks::RelaySessionHooks(std::shared_ptr<const conf::Config> config, std::string client_address,
                                     AuthAttempts* attempts)
    : config_(std::move(config)), client_(std::move(client_address)), attempts_(attempts) {}

// A session that ends while its check runs (disconnect, shutdown) still spent an attempt.
RelaySessionHooks::~RelaySessionHooks() {
    if (attempt_open_) attempt_finished(false);
}

void RelaySessionHooks::attempt_finished(bool ok) {
    attempt_open_ = false;
    if (!attempts_) return;
    if (!ok) failure_counted_ = true;
    if (attempts_->finish(client_, ok, std::chrono::steady_clock::now()))
        log::warning("auth_lockout", {{"client", client_}, {"failures", config_->relay.auth_max_failures},
                                      {"lockout_s", config_->relay.auth_lockout.count()}});
}

smtp::SessionHooks::AuthResult RelaySessionHooks::authenticate(std::string_view user, std::string_view password) {
    // Counted before the check (issue 13, item 1): guesses in parallel sessions cannot all pass a
    // lockout test that only sees failures already answered.
    if (attempts_) {
        switch (attempts_->begin(client_, std::chrono::steady_clock::now())) {
        case AuthAttempts::Verdict::go: break;
        case AuthAttempts::Verdict::locked:
            log::warning("auth_refused_locked", {{"client", client_}});
            return {.refusal = std::string(kAuthLocked)};
        case AuthAttempts::Verdict::busy:
            log::warning("auth_refused_busy", {{"client", client_}});
            return {.refusal = std::string(kAuthBusy)};
        }
    }
    AuthResult result = [&]() -> AuthResult {
        const conf::User* u = config_->find_user(std::string(user));
        if (u && !u->password_hash.empty()) {
            // A password seen before is answered from the cache; a new one needs PBKDF2, off this thread.
            auto verdict = auth::cached_password_verdict(u->name, u->password_hash, password);
            if (!verdict) return {.needs_slow_check = true};
            if (!*verdict) return {};
            return {true, u->account};
        }
        // An unknown name costs what a real user's wrong password costs (item 12): the same KDF, the
        // same cache, so timing does not tell which names exist.
        if (!u) {
            const std::uint32_t iterations = dummy_iterations(*config_);
            if (iterations > 0 && !auth::cached_unknown_user_verdict(user, iterations, password))
                return {.needs_slow_check = true};
        }
        // Compare even for unknown users so timing does not reveal which names exist.
        std::string_view expected = u ? std::string_view(u->password.reveal()) : std::string_view("\x01unknown-user");
        bool ok = constant_time_equal(expected, password) && u != nullptr && !u->password.empty();
        if (!ok) return {};
        return {true, u->account};
    }();
    if (result.needs_slow_check) attempt_open_ = attempts_ != nullptr;
    else attempt_finished(result.ok);
    return result;
}

smtp::SessionHooks::AuthResult RelaySessionHooks::authenticate_slow(std::string_view user, std::string_view password) {
    const conf::User* u = config_->find_user(std::string(user));
    if (!u) {
        if (const std::uint32_t iterations = dummy_iterations(*config_); iterations > 0)
            auth::verify_unknown_user_cached(user, iterations, password);
        return {};
    }
    if (u->password_hash.empty() || !auth::verify_password_cached(u->name, u->password_hash, password)) return {};
    return {true, u->account};
}

void RelaySessionHooks::slow_check_finished(bool ok) {
    if (attempt_open_) attempt_finished(ok);
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
    if (what == "auth_failed") {
        ++auth_failures;
        // A failure no check preceded (malformed AUTH PLAIN) still counts toward the lockout.
        if (!failure_counted_ && attempts_ && attempts_->failed_without_check(client_, std::chrono::steady_clock::now()))
            log::warning("auth_lockout", {{"client", client_}, {"failures", config_->relay.auth_max_failures},
                                          {"lockout_s", config_->relay.auth_lockout.count()}});
        failure_counted_ = false;
    }
    log::warning(what, {{"client", client_}, {"detail", detail}});
}

void RelaySessionHooks::refused(const Refusal& refusal) { log_refusal(client_, refusal); }

void log_refusal(std::string_view client, const smtp::SessionHooks::Refusal& r) {
    const std::string_view from = !r.from ? std::string_view{} : r.from->empty() ? std::string_view("<>") : *r.from;
    log::info("reject", {{"client", client}, {"command", r.command}, {"helo", r.helo}, {"from", from},
                         {"to", r.to}, {"arg", r.argument}, {"reply", r.reply}});
}

std::string RelaySessionHooks::auth_refusal() {
    if (attempts_ && attempts_->locked(client_, std::chrono::steady_clock::now())) {
        log::warning("auth_refused_locked", {{"client", client_}});
        return std::string(kAuthLocked);
    }
    return {};
}

}  // namespace relay
