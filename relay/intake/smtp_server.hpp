// The listening side: accepts connections on every `listen` address (STARTTLS offered) and every
// `listen_tls` address (implicit TLS), refuses peers outside allow_networks at connect (they get
// nothing) and peers beyond the connection caps (one 421), and runs one coroutine per connection that moves
// bytes between the socket and the pure smtp::ServerSession. A finished message is committed to
// the spool (group commit) before the 250 goes out, then handed to delivery.
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

// Local users and account choice for the session, from the config.
class RelaySessionHooks : public smtp::SessionHooks {
public:
    RelaySessionHooks(std::shared_ptr<const conf::Config> config, std::string client_address);
    AuthResult authenticate(std::string_view user, std::string_view password) override;
    AuthResult authenticate_slow(std::string_view user, std::string_view password) override;
    RouteResult route(std::string_view user, std::string_view user_account, std::string_view mail_from) override;
    std::uint64_t size_limit(std::string_view user_account) override;
    void note(std::string_view what, std::string_view detail) override;
    std::string auth_refusal() override;

    // Set by the I/O layer for its brute-force lockout: true refuses AUTH with 454 4.7.0.
    std::function<bool()> auth_locked;
    std::size_t auth_failures = 0;   // failed AUTH attempts in this session so far

private:
    std::shared_ptr<const conf::Config> config_;   // the snapshot this session started with
    std::string client_;
};

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
    // `deadline`; then closes what is left.
    boost::asio::awaitable<void> shutdown(std::chrono::milliseconds deadline);

    std::vector<std::string> listening() const;   // "127.0.0.1:2525", ...
    std::size_t sessions() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace relay
