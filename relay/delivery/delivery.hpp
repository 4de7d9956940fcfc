// Moves queued messages upstream, per account: up to max_connections upstream sessions, each reused
// for the next ready message while there is one (and kept briefly when the queue runs dry), paced
// to rate_per_minute transactions, envelopes split at max_recipients_per_message. A 4xx or a broken
// connection defers the message with exponential backoff; 421/432 and trouble reaching or
// authenticating to the provider back off the whole account; replies that need a person (5.7.139,
// continuous-error throttling, a dead refresh token) put the account on hold; a 5xx about the
// message (SendAs denied included: that sender is then refused at once for a while) moves the
// message to failed/ (with an RFC 3464 report to the sender when bounce = true).
// Direct-mode accounts deliver while the client waits, on reused authenticated sessions.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "auth/http_client.hpp"
#include "auth/token_manager.hpp"
#include "auth/token_store.hpp"
#include "conf/config.hpp"
#include "relay/core/states.hpp"
#include "relay/spool/queue_control.hpp"
#include "relay/spool/spool.hpp"

namespace relay {

class DeliveryAgent {
public:
    DeliveryAgent(boost::asio::any_io_executor io, boost::asio::thread_pool& blocking, Spool& spool,
                  std::shared_ptr<const conf::Config> config, auth::HttpClient& http, auth::TokenStore& tokens);
    ~DeliveryAgent();

    // Queues messages found on disk at startup.
    void start(std::vector<QueuedMessage> recovered);
    // A message was just committed to the spool.
    void enqueue(QueuedMessage message);
    // SIGHUP: new account settings and retry policy. Changed accounts drop their backoff (the cause
    // may be fixed) and re-read their token file; new accounts start; a removed account's mail stays
    // in the spool untouched.
    void update_config(std::shared_ptr<const conf::Config> config);
    // Stops starting transactions and cancels idle waits; waits up to `deadline` for those in
    // flight (woken when the last one ends, no polling). Undelivered mail simply stays in the
    // spool for the next start.
    boost::asio::awaitable<void> stop(std::chrono::milliseconds deadline);

    // delivery = "direct": delivers `message` (written to the spool but not acknowledged) now and
    // returns the reply line for the client, without CRLF: the upstream's own reply, or a 451 when
    // the upstream cannot be reached. The caller removes the file afterwards.
    boost::asio::awaitable<std::string> deliver_direct(QueuedMessage message);
    // Requests of the queue tools (see queue_control.hpp).
    void handle_requests(const std::vector<ControlRequest>& requests);
    // These accounts' token files changed (auth::TokenFileWatcher; `all`: maybe every account's):
    // an account on hold or backing off for token trouble tries again now.
    void tokens_changed(const std::set<std::string>& accounts, bool all);

    std::size_t queued() const;     // messages known to the agent and not yet delivered or failed

    // A snapshot of one account for `status`, STATUS= and metrics (read on the I/O thread).
    // Message and account states use the one vocabulary of relay/core/states.hpp.
    struct AccountState {
        std::string name;
        state::Account state = state::Account::ready;
        std::size_t queued = 0;         // waiting for their turn
        std::size_t active = 0;         // being sent right now
        std::size_t deferred = 0;       // waiting for their retry time
        std::size_t held = 0;           // kept by `queue hold ID`
        unsigned sessions = 0;          // upstream sessions (workers) running
        std::optional<SystemClock::time_point> oldest;   // receipt of the oldest waiting message
        std::chrono::seconds wait_remaining{0};         // backing-off / waiting-for-token: until the next try
        std::string hold_reason;        // held: the reply or token error that caused it
        std::string hold_action;        // held: what a person does
        std::string last_error;         // the last error of the account or its mail (kept after recovery)
        SystemClock::time_point last_error_at{};
        auth::TokenStatus token;
    };
    std::vector<AccountState> account_states() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace relay
