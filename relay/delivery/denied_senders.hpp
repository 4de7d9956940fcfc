// Senders Exchange just refused for one account (554 5.2.252 SendAsDenied, 550 5.7.60, Graph's 403
// ErrorSendAsDenied; issue 11 item 3). A device that sends as an address its mailbox may not use
// sends it again and again; each refusal counts toward Exchange's continuous-error throttling
// (5.2.251-5.2.255), which would stop the whole mailbox. So for a while (kDeniedSenderMemory) later
// messages from that sender fail at once, naming the earlier refusal, without asking Exchange.
// Exchange checks the envelope sender and the From: header (Graph only has the latter), so a sender
// is the pair of both: a device logged in as the mailbox with a fixed foreign From: is remembered
// by that From:, and the mailbox's other mail is not touched.
//
// Forgotten early when the cause may have changed: `queue retry ID` of such a message (the admin
// may have granted SendAs: the retried message is tried upstream again), `queue retry --all` and a
// config reload (send_as or rewrite_sender may have changed). The mailbox's own pair (its address
// as envelope with itself or no From:) is never remembered: that refusal cannot be about the
// sender, and remembering it would stop the mailbox's own mail. Pure: time from an injected clock.
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

    // Exchange refused the envelope sender `sender` ("" = null sender) with the From: address
    // `header_from` ("" = none) for `queue_id`, as sent upstream. Returns false when not remembered.
    bool remember(std::string_view sender, std::string_view header_from, std::string_view account_email,
                  std::string reply, std::string queue_id);
    // The refusal still in force for this pair, if any.
    std::optional<Denial> find(std::string_view sender, std::string_view header_from) const;
    // Every refusal of this envelope sender, whatever its From: (queue retry).
    void forget(std::string_view sender);
    void clear() { denied_.clear(); }
    std::size_t size() const { return denied_.size(); }

private:
    const core::Clock* clock_;
    std::chrono::seconds memory_;
    std::size_t capacity_;   // many distinct senders (a hostile LAN client) cannot grow it for ever
    std::map<std::string, Denial> denied_;   // lower-case "sender\nfrom" -> refusal
};

}  // namespace relay
