// What one delivery attempt did to each recipient of a message, built from the upstream's
// transaction results (one transaction per max_recipients_per_message recipients): delivered,
// failed for good (with the reply, for the failed area and the DSN), to retry, or stopped by a
// reply that puts the account on hold (account_hold.hpp says which replies are about the account,
// a sender or one message). Pure, so every mix of per-recipient replies is unit-tested.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "relay/delivery/dsn.hpp"
#include "relay/smtp/reply.hpp"
#include "relay/delivery/upstream_session.hpp"

namespace relay {

struct Outcome {
    std::vector<std::string> delivered;
    std::vector<FailedRecipient> failed;             // permanent, per recipient
    std::vector<std::string> retry;                  // to try again
    std::optional<smtp::Reply> last_ok;              // the last positive end-of-data reply
    std::optional<smtp::Reply> first_transient;
    std::optional<smtp::Reply> first_permanent;
    std::optional<smtp::Reply> hold;                 // a reply that puts the account on hold
    std::optional<smtp::Reply> sender_denied;        // a SendAs refusal: the sender is remembered
    std::string io_error;                            // the session broke
    // Set by transports whose provider says more than a reply code (Microsoft Graph): how long to
    // leave the whole account alone (Retry-After), and the admin's next step for `hold`.
    std::optional<std::chrono::seconds> account_backoff;
    std::optional<std::string> hold_action;

    // Once on hold or broken, the remaining transactions are not attempted; nor once the sender was
    // refused (asking again for the next chunk only adds to Exchange's continuous-error count).
    bool stopped() const { return hold.has_value() || !io_error.empty() || sender_denied.has_value(); }
    // Adds one transaction's result for `chunk`, the recipients it was sent for.
    void add(const std::vector<std::string>& chunk, const TransactionResult& result);
    // Recipients that were not attempted (after stopped()) or whose session broke: retried, or
    // failed with the refusal when only the sender's denial stopped the message.
    void not_attempted(const std::vector<std::string>& chunk);
};

// Recipient lists of at most `per` (>= 1) each, in order.
std::vector<std::vector<std::string>> split_recipients(const std::vector<std::string>& rcpts, std::size_t per);

// "550 5.1.1 text" for a client: the reply's code, enhanced code (derived from the class when the
// upstream gave none) and first line of text.
std::string reply_line(const smtp::Reply& reply);

}  // namespace relay
