// DeliveryAgent's public face and its account registry: config and reload, recovery at startup,
// the per-account retry timers, what a changed token file does, status snapshots, start and stop.
// See agent.hpp for how the agent's files divide the work.
#include "relay/delivery/agent.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "relay/core/log.hpp"
#include "relay/core/restart.hpp"
#include "relay/core/spawn.hpp"
#include "relay/spool/queue_state.hpp"

namespace relay {

using namespace std::chrono_literals;

DeliveryAgent::Impl::Impl(asio::any_io_executor e, asio::thread_pool& p, Spool& s,
                          std::shared_ptr<const conf::Config> c, auth::HttpClient& h, auth::TokenStore& ts)
    : io(std::move(e)), pool(p), spool(s), config(std::move(c)), http(h), store(ts) {
    apply_config();
}

// Brings `accounts` and `schedule` in line with `config`; returns the names of new accounts.
std::vector<std::string> DeliveryAgent::Impl::apply_config() {
    schedule = RetrySchedule{config->relay.min_backoff, config->relay.max_backoff, config->relay.max_queue_lifetime};
    const auto configure = [this](Account& a) {
        a.queue.configure(RetrySchedule{a.config.min_backoff.value_or(schedule.min_backoff),
                                        a.config.max_backoff.value_or(schedule.max_backoff),
                                        a.config.max_queue_lifetime.value_or(schedule.max_queue_lifetime)},
                          a.config.rate_per_minute);
        a.transport = make_transport(a.config, TransportDeps{io, pool, http, *a.tokens, config->relay.hostname});
    };
    std::vector<std::string> added;
    for (const auto& [name, account] : config->accounts) {
        auto it = accounts.find(name);
        if (it == accounts.end()) {
            auto a = std::make_unique<Account>(io, clock);
            a->config = account;
            a->tokens = std::make_unique<auth::TokenManager>(account, store, http, io, pool);
            configure(*a);
            accounts.emplace(name, std::move(a));
            added.push_back(name);
            continue;
        }
        Account& a = *it->second;
        const bool was_removed = a.removed;
        a.removed = false;
        a.config = account;
        a.tokens->update_account(account);
        configure(a);
        a.queue.clear_backoff();
        a.denied.clear();   // send_as or rewrite_sender may have changed
        if (was_removed && !stopping) a.tokens->start_upkeep();
        release_account(a, "configuration reloaded");
    }
    for (auto& [name, a] : accounts) {
        if (config->accounts.count(name) == 0 && !a->removed) {
            a->removed = true;
            a->tokens->stop_upkeep();
            log::warning("account_removed", {{"account", name}, {"queued", a->queue.waiting()},
                                             {"action", "its queued mail stays in the spool until the account is configured again"}});
        }
    }
    return added;
}

// The account's retry timer loop and its token upkeep (scheduled by the token manager itself).
void DeliveryAgent::Impl::start_account(Account& a) {
    spawn_retry_loop(a);
    // The token manager's own retry got a token after failures: a waiting account goes now.
    std::weak_ptr<Impl> weak = weak_from_this();
    Account* account = &a;
    a.tokens->on_recovered([weak, account] {
        if (auto self = weak.lock(); self && !self->stopping) self->token_arrived(*account);
    });
    if (!a.removed) a.tokens->start_upkeep();
}

// A retry loop that dies would leave deferred mail waiting forever: log it and start another a
// second later.
void DeliveryAgent::Impl::spawn_retry_loop(Account& a) {
    std::weak_ptr<Impl> weak = weak_from_this();
    Account* account = &a;
    core::spawn(io, retry_loop(shared_from_this(), account), "delivery_retry_timer", a.config.name,
                [weak, account](std::exception_ptr) {
                    auto self = weak.lock();
                    if (!self || self->stopping) return;
                    core::restart_later(self->io, [weak, account] {
                        if (auto self = weak.lock(); self && !self->stopping) self->spawn_retry_loop(*account);
                    });
                });
}

void DeliveryAgent::Impl::enqueue(Item item) {
    auto it = accounts.find(item.message.envelope.account);
    if (it == accounts.end()) {
        // The config no longer has this account: keep the file, a reload may bring it back.
        log::error("account_unknown", {{"queue_id", item.message.id},
                                       {"account", item.message.envelope.account},
                                       {"action", "message kept in the spool; add the account back or delete it"}});
        return;
    }
    ++in_flight;
    if (std::filesystem::exists(hold_path(item.message.path))) {
        it->second->queue.add_held(std::move(item));
        return;
    }
    it->second->queue.push_ready(std::move(item));
    kick(*it->second);
}

// A message recovered at startup: its sidecar says how often it was tried and when to try next.
void DeliveryAgent::Impl::recover(QueuedMessage message) {
    Item item{std::move(message), 0, {}};
    auto state = read_state(item.message.path);
    if (state) {
        item.attempts = state->attempts;
        item.last_reply = state->last_reply;
        if (!state->rcpt_left.empty()) item.message.envelope.rcpt_to = state->rcpt_left;
    }
    auto it = accounts.find(item.message.envelope.account);
    if (!state || state->next_try <= SystemClock::now() || it == accounts.end() ||
        std::filesystem::exists(hold_path(item.message.path))) {
        enqueue(std::move(item));
        return;
    }
    ++in_flight;
    it->second->queue.add_deferred(std::move(item), state->next_try - SystemClock::now());
    rearm(*it->second);
}

void DeliveryAgent::Impl::hold_account(Account& a, const std::string& reason, const std::string& action) {
    if (!a.queue.hold()) return;
    a.hold_token_stamp = store.stamp(a.config.name);
    a.hold_reason = reason;
    a.hold_action = action;
    a.note_error(reason);
    log::error("account_hold", {{"account", a.config.name}, {"state", state::name(state::Account::held)},
                                {"reason", reason}, {"queued", a.queue.waiting()}, {"action", action}});
}

void DeliveryAgent::Impl::release_account(Account& a, std::string_view why) {
    if (!a.queue.release()) return;
    a.hold_reason.clear();
    a.hold_action.clear();
    log::info("account_released", {{"account", a.config.name}, {"state", state::name(a.queue.state())}, {"reason", why}});
    kick(a);
}

// The token endpoint failed in a way the token manager retries on its own short schedule: no
// SMTP backoff, no attempt charged to any message; token_arrived() (or `at_most`) ends the wait.
void DeliveryAgent::Impl::wait_for_token(Account& a, const std::string& reason, std::chrono::seconds at_most) {
    a.queue.wait_for_token(at_most);
    a.note_error(reason);
    log::warning("account_waiting_for_token",
                 {{"account", a.config.name}, {"state", state::name(state::Account::waiting_for_token)},
                  {"reason", reason}, {"queued", a.queue.waiting()}, {"next_try_in_s", static_cast<long>(at_most.count())}});
    rearm(a);
}

void DeliveryAgent::Impl::token_arrived(Account& a) {
    if (!a.queue.waiting_for_token()) return;   // an SMTP backoff is about the upstream: it stays
    log::info("account_woken", {{"account", a.config.name}, {"reason", "access token obtained"},
                                {"queued", a.queue.waiting()}});
    a.queue.token_arrived();
    kick(a);
    rearm(a);
}

// Starts a worker for ready mail when the account may send and has room, or wakes an idle one.
void DeliveryAgent::Impl::kick(Account& a) {
    if (stopping || a.removed || a.queue.on_hold() || a.queue.ready() == 0) return;
    if (a.queue.backing_off() || a.queue.waiting_for_token()) {
        rearm(a);
        return;
    }
    if (!a.idle_workers.empty()) {
        a.idle_workers.back()->cancel();
        a.idle_workers.pop_back();
        return;
    }
    if (a.slot_free()) spawn_worker(a);
}

void DeliveryAgent::Impl::rearm(Account& a) {
    auto next = a.queue.next_wakeup();
    if (a.retry_timer.expiry() != next) a.retry_timer.expires_at(next);  // cancels the current wait
}

asio::awaitable<void> DeliveryAgent::Impl::retry_loop(std::shared_ptr<Impl> self, Account* a) {
    while (!self->stopping) {
        co_await a->retry_timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (self->stopping) break;
        a->queue.release_due();
        if (a->retry_timer.expiry() <= Steady::now()) a->retry_timer.expires_at(Steady::time_point::max());
        self->kick(*a);
        self->rearm(*a);
    }
}

// The token watcher saw these accounts' files change (or, with `all`, maybe every account's).
void DeliveryAgent::Impl::token_files_changed(const std::set<std::string>& names, bool all) {
    for (auto& [name, a] : accounts)
        if (!a->removed && (all || names.count(name))) token_file_changed(*a);
}

// A new token file (or one this relay wrote, or new permissions) for an account in trouble: the
// cause may be fixed, so a hold ends, the backoff ends and deferred mail is retried now.
void DeliveryAgent::Impl::token_file_changed(Account& a) {
    if (a.queue.on_hold() && store.stamp(a.config.name) != a.hold_token_stamp) release_account(a, "token file changed");
    const bool uses_token_file = a.config.auth == conf::AuthMode::delegated &&
                                 (a.config.upstream_auth == conf::UpstreamAuth::xoauth2 ||
                                  a.config.upstream_auth == conf::UpstreamAuth::oauthbearer);
    if (!uses_token_file || !a.queue.troubled()) return;  // healthy: the next use re-reads it
    log::info("account_woken", {{"account", a.config.name}, {"reason", "token file changed"},
                                {"deferred", a.queue.deferred()}});
    a.queue.retry_now();
    kick(a);
    rearm(a);
}

bool DeliveryAgent::Impl::busy() const {
    for (const auto& [name, a] : accounts)
        if (a->workers > 0) return true;
    return false;
}

// Every worker ends here, also one that died of an exception, so the count never stays raised.
void DeliveryAgent::Impl::worker_ended(Account& a) {
    --a.workers;
    if (stopping) {
        if (!busy()) drained.cancel();
        return;
    }
    kick(a);
    slot_freed(a);
}

// Gentle: nothing new starts, idle sessions and timers are cancelled, transactions in flight run
// on; wait for them until `deadline` (woken by the last worker, no polling). What is still running
// then is abandoned when the caller stops the I/O loop (hard); its mail stays in the spool.
asio::awaitable<void> DeliveryAgent::Impl::stop(std::chrono::milliseconds deadline) {
    stopping = true;
    for (auto& [name, a] : accounts) {
        a->tokens->stop_upkeep();
        for (auto* idle : a->idle_workers) idle->cancel();
        a->idle_workers.clear();
        for (auto* waiter : a->slot_waiters) waiter->cancel();
        a->retry_timer.cancel();
    }
    if (!busy()) co_return;
    drained.expires_after(deadline);
    auto [ec] = co_await drained.async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;   // cancelled by the last worker: all done
    unsigned sessions = 0;
    for (const auto& [name, a] : accounts) sessions += a->workers;
    log::warning("delivery_stop_deadline", {{"sessions", sessions},
                                            {"detail", "transactions still in flight are abandoned; their mail stays in the spool"}});
}

// ---- the public face ----------------------------------------------------------------------------

DeliveryAgent::DeliveryAgent(asio::any_io_executor io, asio::thread_pool& blocking, Spool& spool,
                             std::shared_ptr<const conf::Config> config, auth::HttpClient& http, auth::TokenStore& tokens)
    : impl_(std::make_shared<Impl>(std::move(io), blocking, spool, std::move(config), http, tokens)) {}

DeliveryAgent::~DeliveryAgent() = default;

void DeliveryAgent::start(std::vector<QueuedMessage> recovered) {
    for (auto& [name, a] : impl_->accounts) impl_->start_account(*a);
    if (!recovered.empty()) log::info("queue_recovered", {{"messages", recovered.size()}});
    for (auto& m : recovered) impl_->recover(std::move(m));
}

asio::awaitable<std::string> DeliveryAgent::deliver_direct(QueuedMessage message) {
    auto self = impl_;
    co_return co_await self->deliver_direct(std::move(message));
}

void DeliveryAgent::handle_requests(const std::vector<ControlRequest>& requests) {
    for (const auto& r : requests) impl_->handle(r);
}

void DeliveryAgent::tokens_changed(const std::set<std::string>& accounts, bool all) {
    impl_->token_files_changed(accounts, all);
}

void DeliveryAgent::enqueue(QueuedMessage message) { impl_->enqueue(Item{std::move(message), 0, {}}); }

void DeliveryAgent::update_config(std::shared_ptr<const conf::Config> config) {
    impl_->config = std::move(config);
    for (const auto& name : impl_->apply_config()) impl_->start_account(*impl_->accounts.at(name));
    for (auto& [name, a] : impl_->accounts) {
        impl_->rearm(*a);
        impl_->kick(*a);
    }
}

asio::awaitable<void> DeliveryAgent::stop(std::chrono::milliseconds deadline) {
    auto self = impl_;
    co_await self->stop(deadline);
}

std::size_t DeliveryAgent::queued() const { return impl_->in_flight; }

std::vector<DeliveryAgent::AccountState> DeliveryAgent::account_states() const {
    std::vector<AccountState> states;
    for (const auto& [name, a] : impl_->accounts) {
        if (a->removed) continue;
        AccountState s;
        s.name = name;
        s.state = a->queue.state();
        s.queued = a->queue.ready();
        s.active = a->active;
        s.deferred = a->queue.deferred();
        s.held = a->queue.held();
        s.sessions = a->workers;
        s.oldest = a->queue.oldest();
        s.wait_remaining = a->queue.wait_remaining();
        s.hold_reason = a->hold_reason;
        s.hold_action = a->hold_action;
        s.last_error = a->last_error;
        s.last_error_at = a->last_error_at;
        s.token = a->tokens->status();
        states.push_back(std::move(s));
    }
    return states;
}

}  // namespace relay
