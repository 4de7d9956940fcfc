// The queue tools' requests (queue retry / retry --all / hold / release / delete), as read from the
// spool's control directory by ControlWatcher. Each one moves messages between the accounts'
// AccountQueues; files are only touched for a failed message that `queue retry` moved back.
#include "relay/delivery/agent.hpp"

#include "relay/core/log.hpp"
#include "relay/delivery/sender_rewrite.hpp"
#include "relay/spool/queue_state.hpp"

namespace relay {

// Removes a waiting (ready or deferred) message from whichever account has it.
std::optional<Item> DeliveryAgent::Impl::take_waiting(const std::string& id) {
    for (auto& [name, a] : accounts) {
        if (auto item = a->queue.take_waiting(id)) {
            rearm(*a);
            return item;
        }
    }
    return std::nullopt;
}

// `queue retry`: the message goes to the back of the ready queue and its account tries now.
void DeliveryAgent::Impl::make_ready(Item item) {
    auto it = accounts.find(item.message.envelope.account);
    if (it == accounts.end()) {
        --in_flight;
        log::error("account_unknown", {{"queue_id", item.message.id}, {"account", item.message.envelope.account},
                                       {"action", "message kept in the spool; add the account back or delete it"}});
        return;
    }
    Account& a = *it->second;
    a.queue.clear_backoff();
    // The admin may have granted SendAs: the retried message asks Exchange again (denied_senders.hpp).
    a.denied.forget(upstream_sender(a.config, item.message.envelope.mail_from));
    release_account(a, "queue retry");
    a.queue.push_ready(std::move(item));
    kick(a);
}

void DeliveryAgent::Impl::handle(const ControlRequest& r) {
    using Verb = ControlRequest::Verb;
    std::string text = format_request(r);
    text.pop_back();   // the newline
    log::info("queue_request", {{"request", text}});
    if (r.verb == Verb::retry_all) {
        for (auto& [name, a] : accounts) {
            a->queue.retry_now();
            a->denied.clear();
            release_account(*a, "queue retry");
            rearm(*a);
            kick(*a);
        }
        return;
    }
    const auto held_here = [this](const std::string& id) {
        for (auto& [name, a] : accounts)
            if (a->queue.is_held(id)) return true;
        return false;
    };
    const auto take_held = [this](const std::string& id) -> std::optional<Item> {
        for (auto& [name, a] : accounts)
            if (auto item = a->queue.take_held(id)) return item;
        return std::nullopt;
    };
    const std::filesystem::path file = spool.queue_path(r.id);
    if (r.verb == Verb::retry) {
        if (auto item = take_waiting(r.id)) return make_ready(std::move(*item));
        if (held_here(r.id) || active.count(r.id)) return;
        if (!std::filesystem::exists(file)) return;
        // Not known: a failed message the tool moved back into queue/.
        QueuedMessage message;
        try {
            message = Spool::read(file);
        } catch (const std::exception& e) {
            log::error("queue_request_failed", {{"queue_id", r.id}, {"error", e.what()}});
            return;
        }
        ++in_flight;
        make_ready(Item{std::move(message), 0, {}});
    } else if (r.verb == Verb::hold) {
        for (auto& [name, a] : accounts)
            if (a->queue.hold_message(r.id)) {
                rearm(*a);
                break;
            }
    } else if (r.verb == Verb::release) {
        if (!held_here(r.id) || std::filesystem::exists(hold_path(file))) return;
        if (auto item = take_held(r.id)) make_ready(std::move(*item));
    } else if (r.verb == Verb::remove) {
        if (active.count(r.id)) {
            forgotten.insert(r.id);
            return;
        }
        bool known = take_waiting(r.id).has_value() || take_held(r.id).has_value();
        if (known) {
            --in_flight;
            log::info("deleted", {{"queue_id", r.id}});
        }
    }
}

}  // namespace relay
