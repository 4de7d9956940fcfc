// TokenManager on its own schedule: the upkeep loop keeps an idle account's refresh token alive
// (keepalive_refresh) and warns while it ages; the retry loop asks the token endpoint again after a
// retryable failure for as long as someone waits for a token. Like the rest of the manager, all
// of it runs on the I/O executor (token_manager.cpp says why that needs no locks).
#include "auth/token_manager_impl.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <fmt/format.h>

#include "auth/token_hints.hpp"
#include "relay/core/log.hpp"
#include "relay/core/restart.hpp"
#include "relay/core/spawn.hpp"

namespace relay::auth {

using namespace std::chrono_literals;

std::chrono::seconds upkeep_interval(const conf::Account& account) {
    return std::clamp<std::chrono::seconds>(account.keepalive_refresh / 2, 1s, 3600s);
}

asio::awaitable<void> TokenManager::Impl::upkeep() {
    const bool uses_refresh_token = account.auth == conf::AuthMode::delegated &&
                                    (account.upstream_auth == conf::UpstreamAuth::xoauth2 ||
                                     account.upstream_auth == conf::UpstreamAuth::oauthbearer);
    if (!uses_refresh_token) co_return;
    bool readable = true;
    try {
        co_await sync_with_store();
    } catch (const std::exception&) {
        readable = false;  // already logged by sync_with_store
    }
    if (!readable || cache.refresh_token.empty()) co_return;
    // A file without last_refresh (written by hand or an older version): refresh now to learn it.
    const bool unknown = cache.last_refresh == Clock::time_point{};
    if (unknown || clock() - cache.last_refresh >= account.keepalive_refresh) {
        const auto idle = std::chrono::duration_cast<std::chrono::seconds>(clock() - cache.last_refresh);
        log::info("token_keepalive", {{"account", account.name},
                                      {"idle_s", unknown ? std::string("unknown") : std::to_string(idle.count())}});
        std::optional<std::string> current = cache.access_token;  // forces one refresh (single flight)
        try {
            co_await get(current, false);
        } catch (const std::exception&) {
            // token_refresh_failed has been logged (or fail-fast is answering from memory)
        }
    }
    if (cache.last_refresh == Clock::time_point{}) co_return;  // still unknown: no age to warn about
    const auto age = clock() - cache.last_refresh;
    const auto days = std::chrono::duration_cast<std::chrono::hours>(age).count() / 24;
    if (age >= std::chrono::hours(24) * account.refresh_token_warn_days)
        log::warning("refresh_token_aging",
                     {{"account", account.name}, {"days_since_refresh", static_cast<long long>(days)},
                      {"warn_days", account.refresh_token_warn_days},
                      {"action", fmt::format("the refresh token may soon be dropped (Microsoft: after 90 days "
                                             "without use); fix the cause in the token_refresh_failed lines or run "
                                             "`smtp-oauth2-relay authorize --account {}`", account.name)}});
}

// Upkeep on a timer, for as long as upkeep_on. Runs on the I/O thread like everything here.
asio::awaitable<void> TokenManager::Impl::upkeep_loop(std::shared_ptr<Impl> self) {
    while (self->upkeep_on) {
        self->upkeep_again = false;
        co_await self->upkeep();
        if (!self->upkeep_on) break;
        if (self->upkeep_again) continue;
        self->upkeep_timer.expires_after(upkeep_interval(self->account));
        co_await self->upkeep_timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void TokenManager::Impl::start_upkeep() {
    if (upkeep_on) return;
    upkeep_on = true;
    // A loop that dies (it should not: upkeep() never throws) is logged and started again a second later.
    std::weak_ptr<Impl> weak = weak_from_this();
    core::spawn(io, upkeep_loop(shared_from_this()), "token_upkeep", account.name,
                [weak](std::exception_ptr) {
                    auto self = weak.lock();
                    if (!self || !self->upkeep_on) return;
                    self->upkeep_on = false;
                    core::restart_later(self->io, [weak] {
                        if (auto self = weak.lock()) self->start_upkeep();
                    });
                });
}

void TokenManager::Impl::stop_upkeep() {
    upkeep_on = false;
    upkeep_timer.cancel();
    retry_timer.cancel();
}

// Asks the endpoint again when the retry time comes, for as long as failures are retryable and
// someone wants a token; ends at a success, a person's failure, or stop_upkeep().
asio::awaitable<void> TokenManager::Impl::retry_loop(std::shared_ptr<Impl> self) {
    while (self->retry_loop_on && self->upkeep_on && self->wanted && self->failures.failing() &&
           !self->failures.needs_person_now()) {
        const auto wait = self->failures.retry_at() - self->clock();
        self->retry_timer.expires_after(std::max<std::chrono::steady_clock::duration>(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(wait), 0s));
        auto [ec] = co_await self->retry_timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (ec || !self->upkeep_on) break;
        try {
            co_await self->get(std::nullopt, false);
        } catch (const std::exception&) {
            // logged by fail(); the loop looks at the new retry time
        }
    }
    self->retry_loop_on = false;
}

void TokenManager::Impl::start_retry_loop() {
    if (retry_loop_on || !upkeep_on || !wanted) return;
    retry_loop_on = true;
    core::spawn(io, retry_loop(shared_from_this()), "token_retry", account.name);
}

// Permanent failures are logged once and then answered from memory; the others are answered
// from memory until their retry time (token_retry.hpp), each real attempt logged, and asked
// again by the retry loop when someone waits for a token.
void TokenManager::Impl::fail(const TokenError& e, Clock::time_point now) {
    const auto wait = failures.record(e, now);
    const std::string action = token_hint(e, account).fix;
    if (needs_person(e.kind())) {
        log::error("token_refresh_failed", {{"account", account.name}, {"error", e.what()}, {"action", action}});
        return;
    }
    log::event(e.kind() == TokenFailure::temporary ? log::Level::warning : log::Level::error,
               "token_refresh_failed",
               {{"account", account.name}, {"error", e.what()}, {"action", action},
                {"retry_in", static_cast<long long>(wait.count())}});
    start_retry_loop();
}

}  // namespace relay::auth
