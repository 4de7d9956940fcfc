// Moves queued messages upstream, per account: up to max_connections upstream sessions, each reused
// for the next ready message while there is one (and kept briefly when the queue runs dry). A 4xx or
// a broken connection defers the message with exponential backoff; trouble reaching or
// authenticating to the provider backs off the whole account; a 5xx moves the message to failed/.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "auth/http_client.hpp"
#include "auth/token_manager.hpp"
#include "auth/token_store.hpp"
#include "conf/config.hpp"
#include "relay/spool.hpp"

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
    // Stops starting transactions; waits up to `deadline` for those in flight. Undelivered mail
    // simply stays in the spool for the next start.
    boost::asio::awaitable<void> stop(std::chrono::milliseconds deadline);

    std::size_t queued() const;     // messages known to the agent and not yet delivered or failed

    // A snapshot of one account for `status`, STATUS= and metrics (read on the I/O thread).
    struct AccountState {
        std::string name;
        std::size_t ready = 0;          // waiting for a free upstream session
        std::size_t deferred = 0;       // waiting for their retry time
        unsigned sessions = 0;          // upstream sessions (workers) running
        std::optional<SystemClock::time_point> oldest;   // receipt of the oldest waiting message
        std::chrono::seconds backoff_remaining{0};      // > 0: the account is on hold
        auth::TokenStatus token;
    };
    std::vector<AccountState> account_states() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace relay
