// Delivery workers: each holds one upstream session (a TransportSession) and sends ready messages
// of its account one after another, then decides what the outcome means: delivered (file removed),
// deferred with backoff, failed for good (moved to failed/, DSN to the sender; a SendAs refusal also
// remembers the sender, delivery_senders.cpp), the account backed off (421/432, quota, provider
// trouble) or put on hold (a person must act: account_hold.hpp). See agent.hpp.
#include "relay/delivery/agent.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "relay/core/blocking.hpp"
#include "relay/core/log.hpp"
#include "relay/core/spawn.hpp"
#include "relay/delivery/account_hold.hpp"
#include "relay/delivery/upstream_queue_id.hpp"
#include "relay/spool/queue_state.hpp"

namespace relay {
namespace {

std::int64_t ms_since(SystemClock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::now() - t).count();
}

}  // namespace

// A worker that dies of an exception is logged (core::spawn) and counted out like any other, so its
// account's worker count never stays raised; kick() then starts another for the waiting mail. The
// message it was sending stays in the spool and goes out at the next start.
void DeliveryAgent::Impl::spawn_worker(Account& a) {
    ++a.workers;
    std::weak_ptr<Impl> weak = weak_from_this();
    Account* account = &a;
    core::spawn(io, worker(shared_from_this(), account), "delivery_worker", a.config.name,
                [weak, account](std::exception_ptr) {
                    if (auto self = weak.lock()) self->worker_ended(*account);
                });
}

asio::awaitable<void> DeliveryAgent::Impl::worker(std::shared_ptr<Impl> self, Account* a) {
    std::unique_ptr<TransportSession> open;
    while (!self->stopping) {
        if (!a->queue.can_send()) {
            if (!open || self->stopping) break;
            // Keep the authenticated session for a moment: mail often comes in bursts.
            asio::steady_timer idle(self->io, kIdleSessionKeep);
            a->idle_workers.push_back(&idle);
            auto [ec] = co_await idle.async_wait(asio::as_tuple(asio::use_awaitable));
            std::erase(a->idle_workers, &idle);
            if (!ec) break;  // nothing came in time: QUIT
            continue;
        }
        if (!open || !open->usable()) {
            std::optional<AccountFailure> failure = co_await self->reopen(*a, open);
            if (failure && failure->hold_action) {
                self->hold_account(*a, failure->reason, *failure->hold_action);
                break;
            }
            if (failure && failure->token_wait) {
                // The token manager retries on its own schedule and wakes the account (issue 11, item 4).
                self->wait_for_token(*a, failure->reason, *failure->token_wait + std::chrono::seconds(1));
                break;
            }
            if (failure) {
                self->back_off_account(*a, failure->reason);
                // Charge one attempt to the oldest ready message so its log shows the trouble.
                if (a->queue.ready() > 0) {
                    Item item = a->queue.pop_ready();
                    ++item.attempts;
                    self->defer(*a, std::move(item), failure->reason);
                }
                break;
            }
            // Connecting took a while: another worker may have taken the ready messages meanwhile.
            continue;
        }
        // Other workers ran while this one connected: the queue may be empty by now.
        if (a->queue.ready() == 0) continue;
        if (!co_await self->deliver(*a, *open, a->queue.pop_ready())) open.reset();
    }
    if (open) co_await open->close();
    self->worker_ended(*a);
}

// Replaces a stale or broken session with a newly authenticated one; the failure when that fails
// (logged here unless it puts the account on hold, which logs its own line).
asio::awaitable<std::optional<AccountFailure>> DeliveryAgent::Impl::reopen(Account& a,
                                                                           std::unique_ptr<TransportSession>& open) {
    if (open) co_await open->close();
    open.reset();
    std::optional<AccountFailure> failure;
    // A reload may replace the account's transport while this one connects: keep it alive.
    std::shared_ptr<Transport> transport = a.transport;
    try {
        open = co_await transport->open();
    } catch (const AccountFailure& f) {
        failure = f;
    }
    if (failure && !failure->hold_action && !failure->token_wait) {
        a.note_error(failure->reason);
        log::warning("upstream_unavailable", {{"account", a.config.name}, {"error", failure->reason}});
    }
    co_return failure;
}

// One message through `session`, each transaction paced to the account's rate_per_minute.
asio::awaitable<Outcome> DeliveryAgent::Impl::send(Account& a, TransportSession& session, const QueuedMessage& message) {
    AccountQueue& queue = a.queue;
    asio::any_io_executor ex = io;
    Pacer pace = [&queue, ex]() -> asio::awaitable<void> {
        auto at = queue.pace();
        if (at <= Steady::now()) co_return;
        asio::steady_timer timer(ex, at);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    };
    co_return co_await session.send(message, pace);
}

// One message on an open session. Returns false when the session broke.
asio::awaitable<bool> DeliveryAgent::Impl::deliver(Account& a, TransportSession& session, Item item) {
    active.insert(item.message.id);
    ++a.active;
    Outcome out;
    std::string read_error;
    QueuedMessage upstream;
    std::string header_from;
    try {
        upstream = co_await upstream_copy(a, item.message, header_from);
        if (auto denial = recently_denied(a, upstream, header_from)) {
            // Asking again would be one more refusal toward continuous-error throttling of the mailbox.
            --a.active;
            active.erase(item.message.id);
            fail(item, denial->reply + " [not sent again: this sender was refused for " + denial->queue_id + "]");
            co_return session.usable();
        }
        ++item.attempts;
        out = co_await send(a, session, upstream);
    } catch (const std::system_error& e) {
        read_error = e.what();
    }
    --a.active;
    active.erase(item.message.id);
    if (out.sender_denied) sender_refused(a, upstream, header_from, *out.sender_denied);
    if (!read_error.empty()) {
        fail(item, std::string("cannot read queue file: ") + read_error);
        co_return session.usable();
    }
    if (!out.delivered.empty()) {
        a.queue.delivered();
        log::info("delivered", {{"queue_id", item.message.id}, {"account", a.config.name},
                                {"from", upstream.envelope.mail_from},
                                {"rcpt_count", out.delivered.size()}, log::recipients(out.delivered),
                                {"size", item.message.size},
                                {"upstream_reply", out.last_ok->text()}, {"attempt", item.attempts},
                                {"delay_ms", ms_since(item.message.received)},
                                {"upstream_queue_id", upstream_queue_id(out.last_ok->text())}});
    }
    if (out.retry.empty()) {
        if (out.delivered.empty()) {
            fail(item, out.first_permanent ? out.first_permanent->text() : "no recipient accepted", out.failed);
            co_return session.usable();
        }
        for (const auto& f : out.failed)
            log::error("recipient_failed", {{"queue_id", item.message.id}, {"rcpt", f.address},
                                            {"upstream_reply", f.diagnostic}});
        if (!out.failed.empty()) bounce(item.message, out.failed);
        if (!forget_if_deleted(item)) {
            --in_flight;
            spool.remove(item.message);
        }
        co_return session.usable();
    }
    for (const auto& f : out.failed)
        log::error("recipient_failed", {{"queue_id", item.message.id}, {"rcpt", f.address},
                                        {"upstream_reply", f.diagnostic}});
    if (!out.failed.empty()) bounce(item.message, out.failed);
    item.message.envelope.rcpt_to = out.retry;
    if (out.hold) {
        // Kept at the head of the queue, untouched, until the hold is lifted.
        item.last_reply = out.hold->text();
        if (forget_if_deleted(item)) co_return session.usable();
        save_state(item, SystemClock::now());
        a.queue.push_front(std::move(item));
        hold_account(a, out.hold->text(), hold_action_of(out));
        co_return session.usable();
    }
    std::string reply = out.first_transient ? out.first_transient->text() : out.io_error;
    // 421/432: the provider is pacing this mailbox; slow the whole account down.
    // So does the daily recipient quota.
    if (out.account_backoff) {
        back_off_account_for(a, reply, *out.account_backoff);
    } else if (out.first_transient && (out.first_transient->code == 421 || out.first_transient->code == 432 ||
                                       quota_exceeded(*out.first_transient))) {
        back_off_account(a, reply);
    }
    defer(a, std::move(item), reply, out.account_backoff);
    co_return out.io_error.empty() && session.usable();
}

void DeliveryAgent::Impl::defer(Account& a, Item item, const std::string& reply, std::optional<std::chrono::seconds> wait) {
    item.last_reply = reply;
    if (forget_if_deleted(item)) return;
    auto age = std::chrono::duration_cast<std::chrono::seconds>(SystemClock::now() - item.message.received);
    auto decision = a.queue.retry_decision(item, age);
    if (decision.expired) {
        fail(item, fmt::format("message expired after {} attempts in the queue; last reply: {}", item.attempts, reply));
        return;
    }
    if (wait) decision.delay = *wait;
    save_state(item, SystemClock::now() + decision.delay);
    if (std::filesystem::exists(hold_path(item.message.path))) {
        a.queue.add_held(std::move(item));
        return;
    }
    a.note_error(reply);
    log::warning("deferred", {{"queue_id", item.message.id}, {"account", a.config.name},
                              log::recipients(item.message.envelope.rcpt_to),
                              {"upstream_reply", reply}, {"attempt", item.attempts},
                              {"next_try_in_s", static_cast<long>(decision.delay.count())}});
    a.queue.add_deferred(std::move(item), decision.delay);
    rearm(a);
}

void DeliveryAgent::Impl::back_off_account_for(Account& a, const std::string& reason, std::chrono::seconds delay) {
    a.queue.back_off_for(delay);
    log::warning("account_backoff", {{"account", a.config.name}, {"state", state::name(state::Account::backing_off)},
                                     {"reason", reason},
                                     {"failures", a.queue.account_failures()},
                                     {"next_try_in_s", static_cast<long>(delay.count())}});
    rearm(a);
}

void DeliveryAgent::Impl::back_off_account(Account& a, const std::string& reason) {
    auto delay = a.queue.back_off();
    log::warning("account_backoff", {{"account", a.config.name}, {"state", state::name(state::Account::backing_off)},
                                     {"reason", reason},
                                     {"failures", a.queue.account_failures()},
                                     {"next_try_in_s", static_cast<long>(delay.count())}});
    rearm(a);
}

// `queue delete` removed this message while it was being sent: drop it, touch no file.
bool DeliveryAgent::Impl::forget_if_deleted(const Item& item) {
    if (forgotten.erase(item.message.id) == 0) return false;
    --in_flight;
    log::info("deleted", {{"queue_id", item.message.id}});
    return true;
}

void DeliveryAgent::Impl::fail(const Item& item, const std::string& reason, std::vector<FailedRecipient> recipients) {
    if (forget_if_deleted(item)) return;
    if (recipients.empty())
        for (const auto& rcpt : item.message.envelope.rcpt_to)
            recipients.push_back({rcpt, status_of_reply(reason), reason});
    bounce(item.message, std::move(recipients));
    --in_flight;
    if (auto it = accounts.find(item.message.envelope.account); it != accounts.end()) it->second->note_error(reason);
    log::error("failed", {{"queue_id", item.message.id}, {"account", item.message.envelope.account},
                          {"from", item.message.envelope.mail_from},
                          {"rcpt_count", item.message.envelope.rcpt_to.size()},
                          log::recipients(item.message.envelope.rcpt_to),
                          {"upstream_reply", reason}, {"attempt", item.attempts},
                          {"delay_ms", ms_since(item.message.received)}});
    // The move syncs two directories: on the pool, not the I/O thread.
    asio::post(pool, [&spool = spool, message = item.message, reason] {
        try {
            spool.move_to_failed(message, reason);
        } catch (const std::exception& e) {
            log::error("spool_move_failed", {{"queue_id", message.id}, {"error", e.what()}});
        }
    });
}

// bounce = true: an RFC 3464 report to the sender, queued through the same account.
void DeliveryAgent::Impl::bounce(const QueuedMessage& original, std::vector<FailedRecipient> recipients) {
    auto it = accounts.find(original.envelope.account);
    if (it == accounts.end() || !it->second->config.bounce || !may_bounce(original.envelope)) return;
    DsnInput in;
    in.reporting_host = config->relay.hostname;
    in.account_email = it->second->config.email;
    in.account = it->second->config.name;
    in.original = original.envelope;
    in.original_id = original.id;
    in.arrival = original.received;
    in.now = SystemClock::now();
    in.failed = std::move(recipients);
    try {
        in.original_header = read_header_block(original);
    } catch (const std::exception&) {
        // The report goes out without the original header rather than not at all.
    }
    const std::string id = original.id;
    core::spawn(io, queue_dsn(shared_from_this(), std::move(in)), "dsn_queue", id);
}

asio::awaitable<void> DeliveryAgent::Impl::queue_dsn(std::shared_ptr<Impl> self, DsnInput in) {
    auto job = [self, in] {
        Dsn dsn = build_dsn(in);
        return self->spool.inject(dsn.envelope, dsn.message);
    };
    QueuedMessage message;
    std::string error;
    try {
        message = co_await run_blocking(self->pool, std::move(job));
    } catch (const std::exception& e) {
        error = e.what();
    }
    if (!error.empty()) {
        log::error("dsn_failed", {{"queue_id", in.original_id}, {"error", error}});
        co_return;
    }
    log::info("dsn_queued", {{"queue_id", message.id}, {"original", in.original_id},
                             {"to", in.original.mail_from}, {"account", in.account}});
    self->enqueue(Item{std::move(message), 0, {}});
}

void DeliveryAgent::Impl::save_state(const Item& item, SystemClock::time_point next_try) {
    MessageState state{item.attempts, next_try, item.last_reply, {}};
    state.rcpt_left = item.message.envelope.rcpt_to;
    try {
        write_state(item.message.path, state);
    } catch (const std::exception& e) {
        log::warning("queue_state_write_failed", {{"queue_id", item.message.id}, {"error", e.what()}});
    }
}

}  // namespace relay
