// Direct mode (delivery = "direct"): the message goes upstream while the client waits and the
// client gets the upstream's own reply. Sessions are authenticated once and kept for
// kIdleSessionKeep, sharing the account's max_connections with the queue workers. A caller that
// finds every connection busy waits for one to be freed (woken, not polling) up to kDirectSlotWait.
#include "relay/delivery/agent.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "relay/core/log.hpp"
#include "relay/core/spawn.hpp"
#include "relay/delivery/account_hold.hpp"
#include "relay/smtp/replies.hpp"

namespace relay {
namespace {

std::int64_t ms_since(SystemClock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::now() - t).count();
}

}  // namespace

// Waits until the account has an idle direct session or room for a new connection. False when
// none came within kDirectSlotWait or the relay is stopping.
asio::awaitable<bool> DeliveryAgent::Impl::wait_for_slot(Account& a) {
    const auto give_up = Steady::now() + kDirectSlotWait;
    asio::steady_timer wake(io);
    while (a.direct_idle.empty() && !a.slot_free()) {
        if (stopping || Steady::now() >= give_up) co_return false;
        wake.expires_at(give_up);
        a.slot_waiters.push_back(&wake);
        co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
        std::erase(a.slot_waiters, &wake);
    }
    co_return true;
}

// A connection was closed or a direct session became idle: the longest-waiting caller looks again.
void DeliveryAgent::Impl::slot_freed(Account& a) {
    if (a.slot_waiters.empty()) return;
    a.slot_waiters.front()->cancel();
    a.slot_waiters.pop_front();
}

asio::awaitable<std::string> DeliveryAgent::Impl::deliver_direct(QueuedMessage message) {
    auto it = accounts.find(message.envelope.account);
    if (it == accounts.end() || it->second->removed)
        co_return std::string(smtp::replies::kAccountNotConfigured);
    Account& a = *it->second;
    if (a.queue.on_hold()) co_return std::string(smtp::replies::kAccountOnHold);
    QueuedMessage upstream;
    std::string header_from;
    try {
        upstream = co_await upstream_copy(a, message, header_from);
    } catch (const std::system_error&) {
        co_return std::string(smtp::replies::kSpoolReadError);
    }
    if (auto denial = recently_denied(a, upstream, header_from)) co_return denial->reply;
    if (!co_await wait_for_slot(a)) co_return std::string(smtp::replies::kUpstreamBusy);
    std::unique_ptr<TransportSession> open;
    if (!a.direct_idle.empty()) {
        open = std::move(a.direct_idle.back().first);
        a.direct_idle.pop_back();
    } else {
        ++a.direct_open;
    }
    if (!open || !open->usable()) {
        std::optional<AccountFailure> failure = co_await reopen(a, open);
        if (failure) {
            --a.direct_open;
            if (failure->hold_action) hold_account(a, failure->reason, *failure->hold_action);
            else if (failure->token_wait) wait_for_token(a, failure->reason, *failure->token_wait + std::chrono::seconds(1));
            kick(a);
            slot_freed(a);
            co_return std::string(smtp::replies::kUpstreamUnavailable);
        }
    }
    Item item{std::move(message), 1, {}};
    Outcome out;
    std::string read_error;
    try {
        out = co_await send(a, *open, upstream);
    } catch (const std::system_error& e) {
        read_error = e.what();
    }
    if (out.sender_denied) sender_refused(a, upstream, header_from, *out.sender_denied);
    if (open->usable() && out.io_error.empty() && !stopping) {
        a.direct_idle.emplace_back(std::move(open), Steady::now());
        std::string name = a.config.name;
        core::spawn(io, reap_direct(shared_from_this(), &a), "direct_session_reaper", name);
    } else {
        co_await open->close();
        --a.direct_open;
    }
    kick(a);
    slot_freed(a);
    if (!read_error.empty()) co_return std::string(smtp::replies::kSpoolReadError);
    if (out.hold) hold_account(a, out.hold->text(), hold_action_of(out));
    if (out.account_backoff)
        back_off_account_for(a, out.first_transient ? out.first_transient->text() : "", *out.account_backoff);
    for (const auto& f : out.failed)
        log::warning("recipient_failed", {{"queue_id", item.message.id}, {"rcpt", f.address},
                                          {"upstream_reply", f.diagnostic}, {"delivery", "direct"}});
    if (!out.delivered.empty()) {
        log::info("delivered", {{"queue_id", item.message.id}, {"account", a.config.name},
                                {"from", item.message.envelope.mail_from},
                                {"rcpt_count", out.delivered.size()}, log::recipients(out.delivered),
                                {"size", item.message.size},
                                {"upstream_reply", out.last_ok->text()}, {"attempt", 1},
                                {"delay_ms", ms_since(item.message.received)}, {"delivery", "direct"}});
        if (!out.retry.empty())
            log::warning("recipients_not_retried", {{"queue_id", item.message.id}, {"rcpt_count", out.retry.size()},
                                                    {"detail", "direct mode answers once; the client got 250"}});
        co_return reply_line(*out.last_ok);
    }
    const smtp::Reply* verdict = out.hold ? &*out.hold : out.first_permanent ? &*out.first_permanent
                                           : out.first_transient ? &*out.first_transient : nullptr;
    log::warning("direct_refused", {{"queue_id", item.message.id}, {"account", a.config.name},
                                    {"upstream_reply", verdict ? verdict->text() : out.io_error}});
    if (verdict) co_return reply_line(*verdict);
    co_return std::string(smtp::replies::kUpstreamBroke);
}

// Closes direct-mode sessions that stayed idle for kIdleSessionKeep.
asio::awaitable<void> DeliveryAgent::Impl::reap_direct(std::shared_ptr<Impl> self, Account* a) {
    asio::steady_timer timer(self->io, kIdleSessionKeep);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    std::vector<std::unique_ptr<TransportSession>> expired;
    auto now = Steady::now();
    std::erase_if(a->direct_idle, [&](auto& entry) {
        if (!self->stopping && now - entry.second < kIdleSessionKeep) return false;
        expired.push_back(std::move(entry.first));
        return true;
    });
    for (auto& open : expired) {
        co_await open->close();
        --a->direct_open;
    }
    if (!expired.empty()) {
        self->kick(*a);
        for (std::size_t i = 0; i < expired.size(); ++i) self->slot_freed(*a);
    }
}

}  // namespace relay
