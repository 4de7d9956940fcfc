// The listening side: accepts connections on every `listen` address (STARTTLS offered) and every
// `listen_tls` address (implicit TLS), refuses peers outside allow_networks at connect (they get
// nothing) and peers beyond the connection caps (one 421), and runs one Connection coroutine per
// client (relay/intake/connection.hpp) that moves bytes between the socket and the pure
// smtp::ServerSession. A finished message is committed to the spool (group commit) before the 250
// goes out, then handed to delivery.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include "conf/config.hpp"
#include "relay/smtp/server_session.hpp"
#include "relay/spool/spool.hpp"

namespace relay {

class SmtpServer {
public:
    using QueuedHandler = std::function<void(QueuedMessage)>;
    // delivery = "direct": delivers a message written to incoming/ (not committed) and returns the
    // reply line for the client (without CRLF).
    using DirectHandler = std::function<boost::asio::awaitable<std::string>(QueuedMessage)>;

    SmtpServer(boost::asio::any_io_executor io, std::shared_ptr<const conf::Config> config, Spool& spool,
               SpoolCommitter& committer, boost::asio::thread_pool& blocking, QueuedHandler on_queued);
    ~SmtpServer();

    // Binds every listen address; throws std::system_error naming the address that failed.
    void start();
    // Enables pass-through for accounts with delivery = "direct".
    void set_direct_handler(DirectHandler handler);
    // SIGHUP: sessions that start from now on use `config`; open sessions keep their snapshot.
    // Listen addresses are bound once, at start.
    void update_config(std::shared_ptr<const conf::Config> config);
    // Closes the listeners, tells idle sessions 421 and lets transactions in flight finish within
    // `deadline` (gentle cancellation); then closes what is left (hard cancellation) and gives those
    // sessions a moment to unwind.
    boost::asio::awaitable<void> shutdown(std::chrono::milliseconds deadline);

    std::vector<std::string> listening() const;   // "127.0.0.1:2525", ...
    std::size_t sessions() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace relay
