// Senders Exchange just refused for one account (554 5.2.252 SendAsDenied, 550 5.7.60, Graph's 403
// ErrorSendAsDenied; issue 11 item 3). A device that sends as an address its mailbox may not use
// sends it again and again; each refusal counts toward Exchange's continuous-error throttling
// (5.2.251-5.2.255), which would stop the whole mailbox. So for a while (kDeniedSenderMemory) later
// messages from that sender fail at once, naming the earlier refusal, without asking Exchange.
//
// Forgotten early when the cause may have changed: `queue retry ID` of such a message (the admin
// may have granted SendAs: the retried message is tried upstream again), `queue retry --all` and a
// config reload (send_as or rewrite_sender may have changed). The account's own address is never
// remembered: a refusal with it as envelope sender is about the From: header of that one message,
// and remembering it would stop the mailbox's own mail. Pure: time from an injected core::Clock.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "relay/core/clock.hpp"

namespace relay {

inline constexpr std::chrono::seconds kDeniedSenderMemory{3600};

class DeniedSenders {
public:
    using time_point = core::Clock::time_point;

    struct Denial {
        std::string reply;        // Exchange's refusal, e.g. "554 5.2.252 SendAsDenied; ..."
        std::string queue_id;     // the message it refused
        time_point at{};
        time_point until{};
    };

    explicit DeniedSenders(const core::Clock& clock, std::chrono::seconds memory = kDeniedSenderMemory,
                           std::size_t capacity = 1000)
        : clock_(&clock), memory_(memory), capacity_(capacity) {}

    // Exchange refused `sender` (envelope sender sent upstream; "" = null sender) for `queue_id`.
    // Returns false when the sender is not remembered (the account's own address).
    bool remember(std::string_view sender, std::string_view account_email, std::string reply, std::string queue_id);
    // The refusal still in force for `sender`, if any.
    std::optional<Denial> find(std::string_view sender) const;
    void forget(std::string_view sender);
    void clear() { denied_.clear(); }
    std::size_t size() const { return denied_.size(); }

private:
    const core::Clock* clock_;
    std::chrono::seconds memory_;
    std::size_t capacity_;   // many distinct senders (a hostile LAN client) cannot grow it for ever
    std::map<std::string, Denial> denied_;   // lower-case sender -> refusal
};

}  // namespace relay
