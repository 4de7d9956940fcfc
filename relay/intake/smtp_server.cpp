// The listening side: accept loops, admission (allow_networks, connection caps) and the set of open
// connections, which shutdown cancels (gently, then hard, with a deadline). What happens on one
// connection is relay/intake/connection.cpp.
#include "relay/intake/smtp_server.hpp"

#include <utility>

#include <exception>
#include <list>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "relay/core/log.hpp"
#include "relay/core/spawn.hpp"
#include "relay/intake/client_limits.hpp"
#include "relay/intake/connection.hpp"
#include "relay/intake/local_tls.hpp"
#include "relay/intake/session_hooks.hpp"
#include "relay/smtp/replies.hpp"

namespace relay {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// After the hard cancel, how long sessions get to unwind (one waiting for a password check or a
// direct-mode upstream cannot be interrupted and is left behind).
constexpr auto kHardCancelWait = 1s;

// Normalises v4-mapped peers ("::ffff:10.0.0.1") so logs and network checks see plain IPv4.
asio::ip::address plain_address(const asio::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// SmtpServer

struct SmtpServer::Impl : std::enable_shared_from_this<Impl> {
    asio::any_io_executor io;
    std::shared_ptr<const conf::Config> config;
    ClientLimits limits;
    AuthAttempts auth_attempts;
    IntakeServices services;                      // what connections use; tls_context is set at start()
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::vector<bool> acceptor_is_tls;            // implicit TLS (listen_tls), by acceptor index
    std::vector<std::string> acceptor_names;      // "127.0.0.1:2525", by acceptor index (for the log)
    std::vector<std::string> addresses;           // `listen`, as bound
    std::vector<std::string> tls_addresses;       // `listen_tls`, as bound
    std::list<Connection*> connections;
    bool stopping = false;
    asio::steady_timer drained;                   // shutdown waits on it; the last connection out cancels it

    Impl(asio::any_io_executor e, std::shared_ptr<const conf::Config> c, Spool& s, SpoolCommitter& sc,
         asio::thread_pool& b, QueuedHandler h)
        : io(std::move(e)), config(std::move(c)), limits(limit_settings(*config)),
          auth_attempts(auth_settings(*config)), services{s, sc, b, limits, auth_attempts, std::move(h), {}, {}},
          drained(io) {}

    static ClientLimits::Settings limit_settings(const conf::Config& config) {
        const conf::RelaySettings& r = config.relay;
        return {r.max_clients, r.max_clients_per_ip};
    }

    static AuthAttempts::Settings auth_settings(const conf::Config& config) {
        AuthAttempts::Settings s;
        s.max_failures = config.relay.auth_max_failures;
        s.lockout = config.relay.auth_lockout;
        return s;
    }

    bool allowed(const asio::ip::address& peer) const {
        for (const auto& net : config->relay.allow_networks)
            if (net.contains(peer)) return true;
        return false;
    }

    // Beyond a cap the client gets one 421 (RFC 5321 3.8) and the connection is closed. The write is
    // a single non-blocking send into an empty socket buffer, so no coroutine or memory is spent.
    void refuse(tcp::socket& socket, const asio::ip::address& peer, ClientLimits::Admission why) {
        const bool per_address = why == ClientLimits::Admission::too_many_from_address;
        log::warning("connection_refused", {{"client", peer.to_string()},
                                            {"reason", per_address ? "max_clients_per_ip" : "max_clients"}});
        const std::string reply = (per_address ? smtp::replies::too_many_connections_from_address(config->relay.hostname)
                                               : smtp::replies::too_many_connections(config->relay.hostname)) + "\r\n";
        boost::system::error_code ec;
        socket.non_blocking(true, ec);
        socket.write_some(asio::buffer(reply), ec);
        socket.shutdown(tcp::socket::shutdown_both, ec);
        socket.close(ec);
    }

    // A peer outside allow_networks hears why (Postfix: 554 5.7.1 Client host rejected) and the
    // refusal is logged, once per connection, like a refused command. One non-blocking send, as in
    // refuse(): a scanner costs a line and a syscall, never a coroutine.
    void refuse_outsider(tcp::socket& socket, const asio::ip::address& peer) {
        const std::string client = peer.to_string();
        log_refusal(client, {.command = "CONNECT", .reply = smtp::replies::kClientNotAllowed});
        const std::string reply = std::string(smtp::replies::kClientNotAllowed) + "\r\n";
        boost::system::error_code ec;
        socket.non_blocking(true, ec);
        socket.write_some(asio::buffer(reply), ec);
        socket.shutdown(tcp::socket::shutdown_both, ec);
        socket.close(ec);
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self, tcp::acceptor* acceptor, bool implicit_tls) {
        while (!self->stopping) {
            auto [ec, socket] = co_await acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) {
                if (self->stopping || ec == asio::error::operation_aborted) break;
                log::warning("accept_failed", {{"error", ec.message()}});
                // EMFILE and friends: pause instead of spinning.
                asio::steady_timer pause(self->io, 100ms);
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                continue;
            }
            boost::system::error_code peer_ec;
            auto peer = plain_address(socket.remote_endpoint(peer_ec).address());
            if (peer_ec) continue;
            if (!self->allowed(peer)) {
                self->refuse_outsider(socket, peer);
                continue;
            }
            if (auto admission = self->limits.admit(peer.to_string()); admission != ClientLimits::Admission::ok) {
                self->refuse(socket, peer, admission);
                continue;
            }
            socket.set_option(tcp::no_delay(true), peer_ec);
            core::spawn(self->io, session(self, std::move(socket), peer, implicit_tls), "smtp_session",
                        "client=" + peer.to_string());
        }
    }

    // Keeps an accept loop running: one that ends with an exception is logged (core::spawn) and
    // started again, unless the server is stopping.
    static void accept(std::shared_ptr<Impl> self, std::size_t index) {
        tcp::acceptor* acceptor = self->acceptors[index].get();
        std::weak_ptr<Impl> weak = self;
        core::spawn(self->io, accept_loop(self, acceptor, self->acceptor_is_tls[index]), "smtp_accept",
                    "listen=" + self->acceptor_names[index], [weak, index](std::exception_ptr) {
                        if (auto again = weak.lock(); again && !again->stopping) accept(again, index);
                    });
    }

    static asio::awaitable<void> session(std::shared_ptr<Impl> self, tcp::socket socket, asio::ip::address peer,
                                         bool implicit_tls) {
        Connection c(std::shared_ptr<const IntakeServices>(self, &self->services), self->config, std::move(socket),
                     peer, implicit_tls);
        auto registered = self->connections.insert(self->connections.end(), &c);
        if (self->stopping) c.stop();   // accepted just before shutdown began
        std::exception_ptr failure;
        try {
            co_await c.run();
        } catch (...) {
            failure = std::current_exception();   // reported by core::spawn, after the bookkeeping below
        }
        self->connections.erase(registered);
        self->limits.release(c.peer());
        log::debug("disconnect", {{"client", c.peer()}});
        if (self->stopping && self->connections.empty()) self->drained.cancel();
        if (failure) std::rethrow_exception(failure);
    }

    // Waits until every connection has ended, or `limit` has passed.
    asio::awaitable<void> wait_drained(std::chrono::steady_clock::duration limit) {
        if (connections.empty()) co_return;
        drained.expires_after(limit);
        co_await drained.async_wait(asio::as_tuple(asio::use_awaitable));
    }
};

SmtpServer::SmtpServer(asio::any_io_executor io, std::shared_ptr<const conf::Config> config, Spool& spool,
                       SpoolCommitter& committer, asio::thread_pool& blocking, QueuedHandler on_queued)
    : impl_(std::make_shared<Impl>(std::move(io), std::move(config), spool, committer, blocking, std::move(on_queued))) {}

SmtpServer::~SmtpServer() = default;

void SmtpServer::set_direct_handler(DirectHandler handler) { impl_->services.direct = std::move(handler); }

void SmtpServer::start() {
    impl_->services.tls_context = make_local_tls_context(impl_->config->relay);
    std::vector<std::pair<conf::HostPort, bool>> endpoints;
    for (const auto& hp : impl_->config->relay.listen) endpoints.emplace_back(hp, false);
    for (const auto& hp : impl_->config->relay.listen_tls) endpoints.emplace_back(hp, true);
    for (const auto& [hp, implicit_tls] : endpoints) {
        boost::system::error_code ec;
        auto address = asio::ip::make_address(hp.host, ec);
        if (ec) throw boost::system::system_error(ec, "listen address " + hp.to_string());
        tcp::endpoint endpoint(address, hp.port);
        auto acceptor = std::make_unique<tcp::acceptor>(impl_->io);
        acceptor->open(endpoint.protocol(), ec);
        if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec && address.is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
        if (!ec) acceptor->bind(endpoint, ec);
        if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
        if (ec) throw boost::system::system_error(ec, "listen on " + hp.to_string());
        (implicit_tls ? impl_->tls_addresses : impl_->addresses).push_back(hp.to_string());
        impl_->acceptors.push_back(std::move(acceptor));
        impl_->acceptor_is_tls.push_back(implicit_tls);
        impl_->acceptor_names.push_back(hp.to_string());
    }
    for (std::size_t i = 0; i < impl_->acceptors.size(); ++i) Impl::accept(impl_, i);
}

asio::awaitable<void> SmtpServer::shutdown(std::chrono::milliseconds deadline) {
    Impl& s = *impl_;
    s.stopping = true;
    boost::system::error_code ignored;
    for (auto& acceptor : s.acceptors) acceptor->close(ignored);
    // Gently: idle sessions answer 421 now, the others at their next command; a message in flight
    // may finish. The wait ends when the last session has gone, or at the deadline.
    for (Connection* c : s.connections) c->stop();
    co_await s.wait_drained(deadline);
    // Then hard: closing a socket cancels whatever its session waits for.
    for (Connection* c : s.connections) c->abort();
    co_await s.wait_drained(kHardCancelWait);
}

void SmtpServer::update_config(std::shared_ptr<const conf::Config> config) {
    std::vector<std::string> wanted;
    for (const auto& hp : config->relay.listen) wanted.push_back(hp.to_string());
    if (wanted != impl_->addresses)
        log::warning("reload_listen_unchanged", {{"detail", "listen addresses take effect at the next restart"}});
    impl_->limits.update(Impl::limit_settings(*config));
    impl_->auth_attempts.update(Impl::auth_settings(*config));
    impl_->config = std::move(config);
}

std::vector<std::string> SmtpServer::listening() const {
    std::vector<std::string> all = impl_->addresses;
    for (const auto& a : impl_->tls_addresses) all.push_back(a + " (tls)");
    return all;
}
std::size_t SmtpServer::sessions() const { return impl_->connections.size(); }

}  // namespace relay
