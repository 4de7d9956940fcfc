// Accept loops and per-connection coroutines. Only bytes move here: every protocol decision is made
// by smtp::ServerSession. One I/O thread; the only slow step, the spool commit, is awaited.
#include "relay/smtp_server.hpp"

#include <utility>

#include <list>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/crypto.h>

#include "relay/log.hpp"

namespace relay {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr auto kCommandTimeout = 300s;      // RFC 5321 4.5.3.2.7: server timeout of 5 minutes
constexpr std::size_t kCommandBuffer = 4096;
constexpr std::size_t kDataBuffer = 65536;

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// Normalises v4-mapped peers ("::ffff:10.0.0.1") so logs and network checks see plain IPv4.
asio::ip::address plain_address(const asio::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// RelaySessionHooks

RelaySessionHooks::RelaySessionHooks(std::shared_ptr<const conf::Config> config, std::string client_address)
    : config_(std::move(config)), client_(std::move(client_address)) {}

smtp::SessionHooks::AuthResult RelaySessionHooks::authenticate(std::string_view user, std::string_view password) {
    const conf::User* u = config_->find_user(std::string(user));
    // Compare even for unknown users so timing does not reveal which names exist.
    std::string_view expected = u ? std::string_view(u->password.reveal()) : std::string_view("\x01unknown-user");
    bool ok = constant_time_equal(expected, password) && u != nullptr && !u->password.empty();
    if (!ok) return {};
    return {true, u->account};
}

smtp::SessionHooks::RouteResult RelaySessionHooks::route(std::string_view user, std::string_view user_account,
                                                         std::string_view mail_from) {
    if (!user.empty()) return {true, std::string(user_account), {}};
    if (config_->relay.default_account) return {true, *config_->relay.default_account, {}};
    return {false, {}, "530 5.7.0 Authentication required: this relay has no default account for unauthenticated clients"};
}

void RelaySessionHooks::note(std::string_view what, std::string_view detail) {
    log::warning(what, {{"client", client_}, {"detail", detail}});
}

// ---------------------------------------------------------------------------------------------
// SmtpServer

struct SmtpServer::Impl : std::enable_shared_from_this<Impl> {
    struct Connection {
        tcp::socket socket;
        asio::steady_timer timer;
        bool stopping = false;
        explicit Connection(tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
    };

    asio::any_io_executor io;
    std::shared_ptr<const conf::Config> config;
    Spool& spool;
    SpoolCommitter& committer;
    QueuedHandler on_queued;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::vector<std::string> addresses;
    std::list<Connection*> connections;
    bool stopping = false;

    Impl(asio::any_io_executor e, std::shared_ptr<const conf::Config> c, Spool& s, SpoolCommitter& sc, QueuedHandler h)
        : io(std::move(e)), config(std::move(c)), spool(s), committer(sc), on_queued(std::move(h)) {}

    bool allowed(const asio::ip::address& peer) const {
        for (const auto& net : config->relay.allow_networks)
            if (net.contains(peer)) return true;
        return false;
    }

    static smtp::SessionPolicy policy(const conf::Config& config) {
        smtp::SessionPolicy p;
        p.hostname = config.relay.hostname;
        p.max_message_size = config.relay.max_message_size;
        p.require_auth = config.relay.require_auth;
        p.auth_offered = !config.users.empty();
        p.data.max_message_size = config.relay.max_message_size;
        return p;
    }

    static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self, tcp::acceptor* acceptor) {
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
                log::warning("connection_refused", {{"client", peer.to_string()},
                                                    {"reason", "not in allow_networks"}});
                socket.close(peer_ec);
                continue;
            }
            socket.set_option(tcp::no_delay(true), peer_ec);
            asio::co_spawn(self->io, session(self, std::move(socket), peer.to_string()), asio::detached);
        }
    }

    static asio::awaitable<void> write_all(Connection& c, std::string& out) {
        if (out.empty()) co_return;
        c.timer.expires_after(kCommandTimeout);
        auto result = co_await (asio::async_write(c.socket, asio::buffer(out), asio::as_tuple(asio::use_awaitable)) ||
                                c.timer.async_wait(asio::as_tuple(asio::use_awaitable)));
        out.clear();
        if (result.index() == 1) throw boost::system::system_error(asio::error::timed_out);
        if (auto [ec, n] = std::get<0>(result); ec) throw boost::system::system_error(ec);
    }

    static asio::awaitable<void> session(std::shared_ptr<Impl> self, tcp::socket socket, std::string peer) {
        Connection c(std::move(socket));
        auto registered = self->connections.insert(self->connections.end(), &c);
        std::shared_ptr<const conf::Config> config = self->config;
        RelaySessionHooks hooks(config, peer);
        SpoolWriter writer(self->spool);
        smtp::ServerSession smtp(policy(*config), hooks, writer, peer);
        log::debug("connect", {{"client", peer}});
        std::string out = smtp.greeting();
        std::string pending;                  // an incomplete line carried to the next read
        std::vector<char> buffer(kCommandBuffer);
        try {
            co_await write_all(c, out);
            bool open = true;
            while (open) {
                if (c.stopping && !smtp.in_data()) {
                    out = smtp.shutdown_reply();
                    co_await write_all(c, out);
                    break;
                }
                std::size_t want = smtp.in_data() ? kDataBuffer : kCommandBuffer;
                // A new vector, not assign(): that keeps the 64 KiB capacity of DATA for every idle
                // client that has sent a message (benchmark, issue 7: 1,000 such clients took 91 MB).
                if (buffer.size() != want) buffer = std::vector<char>(want);
                c.timer.expires_after(kCommandTimeout);
                auto result = co_await (c.socket.async_read_some(asio::buffer(buffer), asio::as_tuple(asio::use_awaitable)) ||
                                        c.timer.async_wait(asio::as_tuple(asio::use_awaitable)));
                if (result.index() == 1) {
                    if (c.stopping) continue;  // woken by shutdown: the loop head answers
                    log::info("timeout", {{"client", peer}});
                    out = smtp.timeout_reply();
                    co_await write_all(c, out);
                    break;
                }
                auto [ec, n] = std::get<0>(result);
                if (ec) break;  // peer closed or reset
                std::string_view input(buffer.data(), n);
                if (!pending.empty()) {
                    pending.append(input);
                    input = pending;
                }
                while (true) {
                    smtp::ServerSession::Step step = smtp.feed(input);
                    out += step.replies;
                    input.remove_prefix(step.consumed);
                    if (step.next == smtp::ServerSession::Next::commit_message) {
                        co_await write_all(c, out);
                        out = co_await commit(self, writer, smtp, peer);
                        continue;
                    }
                    if (step.next == smtp::ServerSession::Next::close ||
                        step.next == smtp::ServerSession::Next::start_tls) {
                        // Local TLS is not configured on this listener, so start_tls cannot be offered.
                        open = false;
                    }
                    break;
                }
                std::string rest(input);
                pending = std::move(rest);
                co_await write_all(c, out);
            }
        } catch (const std::exception& e) {
            log::debug("session_error", {{"client", peer}, {"error", e.what()}});
        }
        if (writer.active()) writer.message_abort();
        boost::system::error_code ignored;
        c.socket.shutdown(tcp::socket::shutdown_both, ignored);
        c.socket.close(ignored);
        self->connections.erase(registered);
        log::debug("disconnect", {{"client", peer}});
    }

    // End of data: make the message durable, then answer. Returns the reply bytes.
    static asio::awaitable<std::string> commit(std::shared_ptr<Impl> self, SpoolWriter& writer,
                                               smtp::ServerSession& smtp, const std::string& peer) {
        QueuedMessage message;
        try {
            auto [pending, queued] = writer.finish();
            message = std::move(queued);
            co_await self->committer.commit(std::move(pending));
        } catch (const std::exception& e) {
            log::error("spool_write_failed", {{"client", peer}, {"error", e.what()}});
            co_return smtp.commit_finished(std::nullopt, "451 4.3.0 Error: queue file write error");
        }
        const Envelope& env = message.envelope;
        log::info("received", {{"queue_id", message.id}, {"client", peer}, {"user", env.user},
                               {"account", env.account}, {"from", env.mail_from},
                               {"rcpt_count", env.rcpt_to.size()}, {"size", message.size}});
        std::string reply = smtp.commit_finished(message.id);
        self->on_queued(std::move(message));
        co_return reply;
    }
};

SmtpServer::SmtpServer(asio::any_io_executor io, std::shared_ptr<const conf::Config> config, Spool& spool,
                       SpoolCommitter& committer, QueuedHandler on_queued)
    : impl_(std::make_shared<Impl>(std::move(io), config, spool, committer, std::move(on_queued))) {}

SmtpServer::~SmtpServer() = default;

void SmtpServer::start() {
    for (const auto& hp : impl_->config->relay.listen) {
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
        impl_->addresses.push_back(hp.to_string());
        impl_->acceptors.push_back(std::move(acceptor));
    }
    for (auto& acceptor : impl_->acceptors)
        asio::co_spawn(impl_->io, Impl::accept_loop(impl_, acceptor.get()), asio::detached);
}

asio::awaitable<void> SmtpServer::shutdown(std::chrono::milliseconds deadline) {
    impl_->stopping = true;
    boost::system::error_code ignored;
    for (auto& acceptor : impl_->acceptors) acceptor->close(ignored);
    for (auto* c : impl_->connections) {
        c->stopping = true;
        c->timer.cancel();   // wakes a session waiting for its next command
    }
    auto until = std::chrono::steady_clock::now() + deadline;
    asio::steady_timer poll(impl_->io);
    while (!impl_->connections.empty() && std::chrono::steady_clock::now() < until) {
        poll.expires_after(20ms);
        co_await poll.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    for (auto* c : impl_->connections) c->socket.close(ignored);
}

void SmtpServer::update_config(std::shared_ptr<const conf::Config> config) {
    std::vector<std::string> wanted;
    for (const auto& hp : config->relay.listen) wanted.push_back(hp.to_string());
    if (wanted != impl_->addresses)
        log::warning("reload_listen_unchanged", {{"detail", "listen addresses take effect at the next restart"}});
    impl_->config = std::move(config);
}

std::vector<std::string> SmtpServer::listening() const { return impl_->addresses; }
std::size_t SmtpServer::sessions() const { return impl_->connections.size(); }

}  // namespace relay
