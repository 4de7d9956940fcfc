// How a message leaves the relay: the seam between scheduling (AccountQueue and the workers in
// delivery.cpp decide *what* and *when*) and the wire (a Transport decides *how*). Today's SMTP
// upstream (smtp_transport.cpp) is the first implementation; a Microsoft Graph sendMail transport
// is added by implementing these two classes and one case in make_transport(), without touching
// scheduling, holds, backoff, DSNs or direct mode.
//
// Contract (every implementation keeps it; delivery.cpp relies on each point):
// - Threading: everything runs on the single I/O thread. A transport never blocks it: network I/O
//   is asynchronous, blocking work (file reads of large bodies are fine through SpoolBodyReader,
//   which is what the SMTP transport does too) goes through run_blocking on `deps.blocking`.
// - Transport::open() connects AND authenticates (token from deps.tokens, one fresh-token retry
//   when the provider refuses a token, as SMTP does after a 535). Account-wide trouble (cannot
//   connect, TLS, refused credentials, token endpoint failure) is thrown as AccountFailure; the
//   caller backs the account off, or holds it when `hold_action` is set (a person must act). It
//   never throws anything else for expected failures. Failures are logged by the caller, so the
//   transport does not log them again; secrets never appear in `reason`.
// - TransportSession::send() delivers ONE queued message to all of its envelope's recipients,
//   split into as many provider transactions as the provider needs (SMTP: max_recipients_per_message
//   each), calling `pace()` before each transaction (the account's rate_per_minute is enforced
//   there; the transport never sleeps on its own). It returns an Outcome classified per recipient
//   (delivery_outcome.hpp): delivered / failed for good / retry / hold, plus io_error when the
//   session broke. Expected upstream refusals are outcomes, not exceptions. It throws
//   std::system_error only when the queue file cannot be read (the message then fails).
// - TransportSession::usable() is false once the session broke or its authentication is no longer
//   fresh (e.g. the access token that opened it is about to expire); the caller then opens a new one.
//   A usable session is reused for the next message of the same account.
// - close() ends the session politely (SMTP QUIT) and never throws.
// - Lifetime: a reload replaces an account's Transport while its sessions are open and in use, so a
//   session must not refer to the Transport that opened it. The caller keeps the Transport alive
//   for the duration of an open().
// - Cancellation: the caller may cancel at shutdown; an operation_aborted system_error out of open()
//   or send() is treated as "stopped", not as a failure of the message.
#pragma once

#include <utility>  // GCC 12 + Boost 1.81: must precede asio/awaitable.hpp

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "auth/http_client.hpp"
#include "auth/token_manager.hpp"
#include "conf/config.hpp"
#include "relay/delivery/delivery_outcome.hpp"
#include "relay/spool/spool.hpp"

namespace relay {

// A failure that concerns the account (connect, TLS, AUTH, token), not one message.
struct AccountFailure {
    std::string reason;                        // for the log and the deferred message's last reply
    std::optional<std::string> hold_action{};  // set when a person must act: hold the account
    // Set when the token endpoint failed in a way its own retry schedule handles (token_retry.hpp):
    // the account waits for the token manager's on_recovered instead of the SMTP backoff, and looks
    // again on its own after this long at the latest (issue 11, item 4).
    std::optional<std::chrono::seconds> token_wait{};
};

// The AccountFailure for a failed token request: a hold with the hint table's fix when a person
// must act (invalid_grant, client, consent), a wait for the token manager's retry when it has one
// scheduled, else plain account trouble (SMTP backoff).
AccountFailure token_failure(const auth::TokenError& error, const conf::Account& account,
                             const auth::TokenStatus& status);

// Waits for the account's next transaction slot (rate_per_minute); provided by the scheduler.
using Pacer = std::function<boost::asio::awaitable<void>()>;

// One authenticated connection to the provider, reused for message after message.
class TransportSession {
public:
    virtual ~TransportSession() = default;
    virtual boost::asio::awaitable<Outcome> send(const QueuedMessage& message, const Pacer& pace) = 0;
    virtual bool usable() const = 0;
    virtual boost::asio::awaitable<void> close() = 0;
};

// One account's way out. Built from the account's config; rebuilt at a reload that changes it.
class Transport {
public:
    virtual ~Transport() = default;
    // Throws AccountFailure.
    virtual boost::asio::awaitable<std::unique_ptr<TransportSession>> open() = 0;
};

// What a transport may use; all outlive it.
struct TransportDeps {
    boost::asio::any_io_executor io;
    boost::asio::thread_pool& blocking;
    auth::HttpClient& http;
    auth::TokenManager& tokens;     // the account's token manager (token-based logins only use it)
    std::string helo_name;          // [relay] hostname
};

// The transport the account's config asks for (today: SMTP upstream). Throws std::runtime_error
// when it cannot be built (e.g. an unreadable upstream_ca_file).
std::unique_ptr<Transport> make_transport(const conf::Account& account, const TransportDeps& deps);

}  // namespace relay
