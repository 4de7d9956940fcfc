// One client connection's coroutine, in named steps (issue 10):
//   greet          implicit-TLS handshake, the pre-greeting check, the 220
//   read           one read under the command, session and minimum-data-rate deadlines
//   feed           bytes into smtp::ServerSession, with the spool commit and the slow password check
//   penalty_delay  the AUTH-failure delay and the error tarpit
//   start_tls      the STARTTLS handshake
//   close          abandon an unfinished message, TLS close_notify, close the socket
// Only bytes move here: every protocol decision is smtp::ServerSession's. Shutdown reaches a
// connection as cancellation: stop() asks gently (a 421 at the next command boundary; a message in
// flight may finish), abort() cancels hard (the socket closes, every pending operation ends).
#pragma once

#include <utility>  // GCC 12 + Boost 1.81: must precede asio/awaitable.hpp

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "conf/config.hpp"
#include "relay/intake/auth_attempts.hpp"
#include "relay/intake/client_limits.hpp"
#include "relay/intake/client_stream.hpp"
#include "relay/intake/session_hooks.hpp"
#include "relay/smtp/server_session.hpp"
#include "relay/spool/spool.hpp"

namespace relay {

// What a connection uses of its server. The server owns it; a connection holds it through a
// shared_ptr that keeps the server's state alive until the connection's coroutine has ended.
struct IntakeServices {
    using QueuedHandler = std::function<void(QueuedMessage)>;
    using DirectHandler = std::function<boost::asio::awaitable<std::string>(QueuedMessage)>;

    Spool& spool;
    SpoolCommitter& committer;
    boost::asio::thread_pool& blocking;      // password hash checks
    ClientLimits& limits;
    AuthAttempts& auth_attempts;             // AUTH accounting across connections (issue 13, item 1)
    QueuedHandler on_queued;
    DirectHandler direct;                    // set when some account has delivery = "direct"
    std::shared_ptr<boost::asio::ssl::context> tls_context;   // STARTTLS and listen_tls; may be null
};

// The session policy a listener's config gives (before the per-connection TLS and address facts).
smtp::SessionPolicy session_policy(const conf::Config& config);
// True when `peer` is in lenient_networks: its session gets SessionPolicy::lenient.
bool is_lenient(const conf::Config& config, const boost::asio::ip::address& peer);

class Connection {
public:
    Connection(std::shared_ptr<const IntakeServices> services, std::shared_ptr<const conf::Config> config,
               boost::asio::ip::tcp::socket socket, const boost::asio::ip::address& peer, bool implicit_tls);

    // The whole conversation, from greeting to close. Expected failures (the client went away, a
    // write timed out) end it quietly with a debug line; it returns once the socket is closed.
    boost::asio::awaitable<void> run();

    // Gentle shutdown: idle now or at the next command boundary, the client gets 421 4.3.2.
    void stop();
    // Hard shutdown: closes the socket, which cancels whatever the coroutine is waiting for.
    void abort();

    const std::string& peer() const { return peer_; }

private:
    using Clock = std::chrono::steady_clock;
    enum class After { read_more, start_tls, close };   // what feed() leaves to the loop

    boost::asio::awaitable<void> greet();
    boost::asio::awaitable<std::optional<std::string_view>> read();
    boost::asio::awaitable<After> feed(std::string_view& input);
    boost::asio::awaitable<std::string> commit_message();
    boost::asio::awaitable<std::string> commit_direct();
    boost::asio::awaitable<void> penalty_delay(std::size_t errors_before, std::size_t auth_failures_before);
    boost::asio::awaitable<bool> start_tls();
    boost::asio::awaitable<void> close();

    // Writes and clears out_; a timeout or a write error throws (the session ends).
    boost::asio::awaitable<void> write_out();
    // Ends the session with one last reply.
    boost::asio::awaitable<void> last_words(std::string reply);
    boost::asio::awaitable<void> pause(std::chrono::seconds delay);
    bool is_direct() const;

    std::shared_ptr<const IntakeServices> services_;
    std::shared_ptr<const conf::Config> config_;   // the snapshot this session started with
    const conf::RelaySettings& settings_;
    const std::string peer_;
    const bool implicit_tls_;

    ClientStream stream_;
    boost::asio::steady_timer timer_;    // the deadline of whatever the connection is waiting for
    bool stopping_ = false;
    RelaySessionHooks hooks_;
    SpoolWriter writer_;
    smtp::ServerSession smtp_;

    const Clock::time_point session_end_;
    std::optional<Clock::time_point> window_start_;   // the current min_data_rate window, during DATA
    std::uint64_t window_bytes_ = 0;
    std::string out_;                    // reply bytes not yet written
    std::string pending_;                // an incomplete line carried to the next read
    std::vector<char> buffer_;
};

}  // namespace relay
