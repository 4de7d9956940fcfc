// Delivery status notifications (RFC 3464) for permanent failures, sent when an account has
// `bounce = true`. The report is a multipart/report (RFC 6522) with a human-readable part, the
// message/delivery-status part (one per-recipient block each with Final-Recipient, Action: failed,
// Status and the upstream's Diagnostic-Code) and the original message's header (text/rfc822-headers).
// It goes to the original envelope sender through the same account, from the account's own
// mailbox (Exchange Online accepts no other sender), and is marked so it is never bounced itself.
// Pure but for randomness: the caller supplies the original header and the clock; the MIME
// boundary is random (issue 13, item 8: one built from the queue id was predicted by a client,
// which added parts of its own to the report) and is checked against every part it separates.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/envelope.hpp"

namespace relay {

struct FailedRecipient {
    std::string address;
    std::string status;       // RFC 3463 code, e.g. "5.1.1"
    std::string diagnostic;   // the upstream reply, e.g. "550 5.1.1 User unknown"
};

struct DsnInput {
    std::string reporting_host;        // our hostname (Reporting-MTA)
    std::string account_email;         // From: and envelope sender of the report
    std::string account;               // account that carries it
    Envelope original;                 // the failed message's envelope
    std::string original_id;           // queue id
    std::chrono::system_clock::time_point arrival{};
    std::chrono::system_clock::time_point now{};
    std::vector<FailedRecipient> failed;
    std::string original_header;       // header block of the original message (may be empty)
};

// Whether a failure of this message may be reported: never for the null sender (RFC 5321 6.1)
// nor for a report made by this relay.
bool may_bounce(const Envelope& original);

// The status code to report for a reply: its enhanced code, else one derived from the class.
std::string status_of_reply(const std::string& reply_text);

struct Dsn {
    Envelope envelope;
    std::string message;   // CRLF line ends, ready for the spool
};
// `random_token` returns a fresh unpredictable token per call (default: 16 bytes from RAND_bytes,
// hex); tests may inject their own. A token whose boundary occurs in the report's content is drawn again.
Dsn build_dsn(const DsnInput& input, const std::function<std::string()>& random_token = {});

}  // namespace relay
