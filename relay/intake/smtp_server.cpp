// Accept loops and per-connection coroutines. Only bytes move here: every protocol decision is made
// by smtp::ServerSession. One I/O thread; the only slow step, the spool commit, is awaited. The
// limits a state machine cannot see live here: connection caps, per-command and session timeouts,
// the minimum DATA rate, the error tarpit and the AUTH lockout (with ClientLimits), local TLS.
#include "relay/intake/smtp_server.hpp"

#include <utility>

#include <algorithm>
#include <list>
#include <optional>

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
#include <unistd.h>

#include "auth/password_hash.hpp"
#include "relay/core/blocking.hpp"
#include "relay/intake/client_limits.hpp"
#include "relay/intake/client_stream.hpp"
#include "relay/intake/local_tls.hpp"
#include "relay/core/log.hpp"
#include "relay/intake/routing.hpp"

namespace relay {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr std::size_t kCommandBuffer = 4096;
constexpr std::size_t kDataBuffer = 65536;
constexpr auto kTlsShutdownWait = 2s;       // for the client's close_notify; a hostile one gets no more

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
    if (u && !u->password_hash.empty()) {
        // A password seen before is answered from the cache; a new one needs PBKDF2, off this thread.
        auto verdict = auth::cached_password_verdict(u->name, u->password_hash, password);
        if (!verdict) return {.needs_slow_check = true};
        if (!*verdict) return {};
        return {true, u->account};
    }
    // Compare even for unknown users so timing does not reveal which names exist.
    std::string_view expected = u ? std::string_view(u->password.reveal()) : std::string_view("\x01unknown-user");
    bool ok = constant_time_equal(expected, password) && u != nullptr && !u->password.empty();
    if (!ok) return {};
    return {true, u->account};
}

smtp::SessionHooks::AuthResult RelaySessionHooks::authenticate_slow(std::string_view user, std::string_view password) {
    const conf::User* u = config_->find_user(std::string(user));
    if (!u || u->password_hash.empty() || !auth::verify_password_cached(u->name, u->password_hash, password)) return {};
    return {true, u->account};
}

smtp::SessionHooks::RouteResult RelaySessionHooks::route(std::string_view user, std::string_view user_account,
                                                         std::string_view mail_from) {
    return route_message(*config_, user, user_account, mail_from);
}

std::uint64_t RelaySessionHooks::size_limit(std::string_view user_account) {
    return advertised_size(*config_, user_account);
}

void RelaySessionHooks::note(std::string_view what, std::string_view detail) {
    // "auth_failed client=<ip> ..." is the fail2ban line (README): client= always comes first.
    if (what == "auth_failed") ++auth_failures;
    log::warning(what, {{"client", client_}, {"detail", detail}});
}

std::string RelaySessionHooks::auth_refusal() {
    if (auth_locked && auth_locked()) {
        log::warning("auth_refused_locked", {{"client", client_}});
        return "454 4.7.0 Too many failed authentication attempts; try again later";
    }
    return {};
}

// ---------------------------------------------------------------------------------------------
// SmtpServer

struct SmtpServer::Impl : std::enable_shared_from_this<Impl> {
    struct Connection {
        ClientStream stream;
        asio::steady_timer timer;
        bool stopping = false;
        explicit Connection(tcp::socket s) : stream(std::move(s)), timer(stream.socket().get_executor()) {}
    };

    asio::any_io_executor io;
    std::shared_ptr<const conf::Config> config;
    Spool& spool;
    SpoolCommitter& committer;
    asio::thread_pool& blocking;      // password hash checks
    QueuedHandler on_queued;
    DirectHandler direct;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::vector<bool> acceptor_is_tls;            // implicit TLS (listen_tls), by acceptor index
    std::vector<std::string> addresses;           // `listen`, as bound
    std::vector<std::string> tls_addresses;       // `listen_tls`, as bound
    std::list<Connection*> connections;
    bool stopping = false;
    std::shared_ptr<asio::ssl::context> tls_context;   // set at start(); STARTTLS and listen_tls use it
    ClientLimits limits;

    Impl(asio::any_io_executor e, std::shared_ptr<const conf::Config> c, Spool& s, SpoolCommitter& sc,
         asio::thread_pool& b, QueuedHandler h)
        : io(std::move(e)), config(std::move(c)), spool(s), committer(sc), blocking(b), on_queued(std::move(h)),
          limits(limit_settings(*config)) {}

    static ClientLimits::Settings limit_settings(const conf::Config& config) {
        const conf::RelaySettings& r = config.relay;
        return {r.max_clients, r.max_clients_per_ip, r.auth_max_failures, r.auth_lockout};
    }

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
        p.data.max_line_length = config.relay.max_line_length;
        p.data.normalize_bare_newlines = config.relay.bare_newlines == "normalize";
        p.max_command_line = config.relay.max_command_line;
        p.max_recipients = config.relay.max_recipients;
        p.max_errors = config.relay.max_errors;
        return p;
    }

    // Beyond a cap the client gets one 421 (RFC 5321 3.8) and the connection is closed. The write is
    // a single non-blocking send into an empty socket buffer, so no coroutine or memory is spent.
    void refuse(tcp::socket& socket, const asio::ip::address& peer, ClientLimits::Admission why) {
        const bool per_address = why == ClientLimits::Admission::too_many_from_address;
        log::warning("connection_refused", {{"client", peer.to_string()},
                                            {"reason", per_address ? "max_clients_per_ip" : "max_clients"}});
        const std::string reply = "421 4.7.0 " + config->relay.hostname +
                                  (per_address ? " Error: too many connections from your address\r\n"
                                               : " Error: too many connections\r\n");
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
                log::warning("connection_refused", {{"client", peer.to_string()},
                                                    {"reason", "not in allow_networks"}});
                socket.close(peer_ec);
                continue;
            }
            if (auto admission = self->limits.admit(peer.to_string()); admission != ClientLimits::Admission::ok) {
                self->refuse(socket, peer, admission);
                continue;
            }
            socket.set_option(tcp::no_delay(true), peer_ec);
            asio::co_spawn(self->io, session(self, std::move(socket), peer, implicit_tls), asio::detached);
        }
    }

    static asio::awaitable<void> write_all(Connection& c, std::string& out, std::chrono::seconds timeout) {
        if (out.empty()) co_return;
        c.timer.expires_after(timeout);
        ClientStream::Result result = co_await c.stream.write_all(asio::buffer(out), c.timer);
        out.clear();
        if (result.timed_out) throw boost::system::system_error(asio::error::timed_out);
        if (result.error) throw boost::system::system_error(result.error);
    }

    // A pause before answering (tarpit, AUTH failure delay). Shutdown's timer cancel ends it early.
    static asio::awaitable<void> pause(Connection& c, std::chrono::seconds delay) {
        if (delay.count() <= 0 || c.stopping) co_return;
        c.timer.expires_after(delay);
        co_await c.timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }

    static asio::awaitable<void> session(std::shared_ptr<Impl> self, tcp::socket socket, asio::ip::address peer_ip,
                                         bool implicit_tls) {
        using Clock = std::chrono::steady_clock;
        Connection c(std::move(socket));
        auto registered = self->connections.insert(self->connections.end(), &c);
        std::shared_ptr<const conf::Config> config = self->config;
        const conf::RelaySettings& limits = config->relay;
        const std::string peer = peer_ip.to_string();
        RelaySessionHooks hooks(config, peer);
        hooks.auth_locked = [self, peer] { return self->limits.auth_locked(peer, Clock::now()); };
        SpoolWriter writer(self->spool);
        smtp::SessionPolicy session_policy = policy(*config);
        session_policy.starttls_offered = self->tls_context && !implicit_tls;
        session_policy.tls_active = implicit_tls;
        // RFC 8314 / RFC 4954 4: passwords cross the LAN only encrypted, unless the admin says otherwise.
        session_policy.plaintext_auth_allowed = limits.allow_plaintext_auth || peer_ip.is_loopback();
        smtp::ServerSession smtp(std::move(session_policy), hooks, writer, peer);
        log::debug("connect", {{"client", peer}, {"tls", implicit_tls ? "implicit" : "no"}});
        const auto session_end = Clock::now() + limits.session_timeout;
        const auto rate_window = limits.min_data_rate_window;
        std::optional<Clock::time_point> window_start;   // the current min_data_rate window, during DATA
        std::uint64_t window_bytes = 0;
        std::string out;
        std::string pending;                  // an incomplete line carried to the next read
        std::vector<char> buffer(kCommandBuffer);
        try {
            if (implicit_tls) {
                c.timer.expires_after(limits.command_timeout);
                ClientStream::Result shake = co_await c.stream.handshake(*self->tls_context, c.timer);
                if (shake.timed_out || shake.error) {
                    log::info("tls_handshake_failed", {{"client", peer},
                                                       {"error", shake.timed_out ? "timeout" : shake.error.message()}});
                    throw boost::system::system_error(asio::error::connection_aborted, "TLS handshake");
                }
                log::debug("tls_started", {{"client", peer}, {"tls", c.stream.tls_description()}});
            }
            if (!implicit_tls) {
                // RFC 5321 3.1 / 4.3.1: the client waits for the 220. Bytes before it come from software
                // that does not read replies (spambots, smuggling tools): 554 5.5.0, as for pipelining.
                c.timer.expires_after(limits.greet_pause);
                if (co_await c.stream.client_spoke_first(c.timer)) {
                    log::warning("pregreet_traffic", {{"client", peer}});
                    out = "554 5.5.0 " + limits.hostname + " Error: SMTP protocol synchronization\r\n";
                    co_await write_all(c, out, limits.command_timeout);
                    throw boost::system::system_error(asio::error::connection_aborted, "talked before the greeting");
                }
            }
            out = smtp.greeting();
            co_await write_all(c, out, limits.command_timeout);
            bool open = true;
            while (open) {
                if (c.stopping && !smtp.in_data()) {
                    out = smtp.shutdown_reply();
                    co_await write_all(c, out, limits.command_timeout);
                    break;
                }
                const auto now = Clock::now();
                // min_data_rate: at the end of each window during DATA, a client that sent less than
                // rate x window is cut off (slowloris); a fresh window starts otherwise.
                if (!smtp.in_data() || limits.min_data_rate == 0) {
                    window_start.reset();
                } else if (!window_start) {
                    window_start = now;
                    window_bytes = 0;
                } else if (now >= *window_start + rate_window) {
                    if (window_bytes < limits.min_data_rate * static_cast<std::uint64_t>(rate_window.count())) {
                        log::info("data_rate_too_low", {{"client", peer}, {"bytes", window_bytes},
                                                        {"window_s", rate_window.count()}});
                        out = "421 4.4.2 " + limits.hostname + " Error: data rate too low\r\n";
                        co_await write_all(c, out, limits.command_timeout);
                        break;
                    }
                    window_start = now;
                    window_bytes = 0;
                }
                if (now >= session_end) {
                    log::info("timeout", {{"client", peer}, {"limit", "session_timeout"}});
                    out = smtp.timeout_reply();
                    co_await write_all(c, out, limits.command_timeout);
                    break;
                }
                const auto command_deadline = std::min(now + limits.command_timeout, session_end);
                auto wake = command_deadline;
                if (window_start) wake = std::min(wake, *window_start + rate_window);
                std::size_t want = smtp.in_data() ? kDataBuffer : kCommandBuffer;
                // A new vector, not assign(): that keeps the 64 KiB capacity of DATA for every idle
                // client that has sent a message (benchmark, issue 7: 1,000 such clients took 91 MB).
                if (buffer.size() != want) buffer = std::vector<char>(want);
                c.timer.expires_at(wake);
                ClientStream::Result result = co_await c.stream.read_some(asio::buffer(buffer), c.timer);
                if (result.timed_out) {
                    if (c.stopping) continue;  // woken by shutdown: the loop head answers
                    if (Clock::now() < command_deadline) continue;   // a rate window ended: the loop head checks
                    log::info("timeout", {{"client", peer}, {"limit", "command_timeout"}});
                    out = smtp.timeout_reply();
                    co_await write_all(c, out, limits.command_timeout);
                    break;
                }
                if (result.error) break;  // peer closed or reset
                if (smtp.in_data()) window_bytes += result.bytes;
                std::string_view input(buffer.data(), result.bytes);
                if (!pending.empty()) {
                    pending.append(input);
                    input = pending;
                }
                const std::size_t errors_before = smtp.errors();
                const std::size_t auth_failures_before = hooks.auth_failures;
                bool start_tls = false;
                while (true) {
                    smtp::ServerSession::Step step = smtp.feed(input);
                    out += step.replies;
                    input.remove_prefix(step.consumed);
                    if (step.next == smtp::ServerSession::Next::commit_message) {
                        co_await write_all(c, out, limits.command_timeout);
                        if (self->is_direct(*config, smtp.envelope().account))
                            out = co_await commit_direct(self, writer, smtp, peer);
                        else
                            out = co_await commit(self, writer, smtp, peer);
                        continue;
                    }
                    if (step.next == smtp::ServerSession::Next::verify_credentials) {
                        co_await write_all(c, out, limits.command_timeout);
                        auto [name, password] = smtp.pending_credentials();
                        auto check = [&hooks, name, password] { return hooks.authenticate_slow(name, password); };
                        smtp::SessionHooks::AuthResult verdict = co_await run_blocking(self->blocking, std::move(check));
                        smtp::ServerSession::Step answered = smtp.credentials_verified(std::move(verdict));
                        out += answered.replies;
                        if (answered.next == smtp::ServerSession::Next::close) {
                            open = false;
                            break;
                        }
                        continue;
                    }
                    if (step.next == smtp::ServerSession::Next::start_tls) start_tls = true;
                    if (step.next == smtp::ServerSession::Next::close) open = false;
                    break;
                }
                // AUTH failures: each one is reported to the per-address lockout and answered late,
                // so guessing passwords costs the attacker time (Postfix smtpd_error_sleep_time).
                if (hooks.auth_failures > auth_failures_before) {
                    for (std::size_t i = auth_failures_before; i < hooks.auth_failures; ++i) {
                        if (self->limits.auth_failed(peer, Clock::now()))
                            log::warning("auth_lockout", {{"client", peer}, {"failures", limits.auth_max_failures},
                                                          {"lockout_s", limits.auth_lockout.count()}});
                    }
                    co_await pause(c, limits.auth_failure_delay);
                } else if (smtp.errors() > errors_before && smtp.errors() >= limits.soft_error_limit) {
                    // RFC 5321 4.5.3.2 allows a slow server; past the soft limit every error reply is
                    // delayed, well below any client timeout.
                    co_await pause(c, limits.error_delay);
                }
                if (start_tls) {
                    // RFC 3207 5: whatever followed STARTTLS in the same read arrived in plaintext and is
                    // dropped here, unread; the session noted the injection.
                    input = {};
                    pending.clear();
                    co_await write_all(c, out, limits.command_timeout);
                    c.timer.expires_after(limits.command_timeout);
                    ClientStream::Result shake = co_await c.stream.handshake(*self->tls_context, c.timer);
                    if (shake.timed_out || shake.error) {
                        log::info("tls_handshake_failed", {{"client", peer},
                                                           {"error", shake.timed_out ? "timeout" : shake.error.message()}});
                        break;
                    }
                    smtp.tls_started();
                    log::debug("tls_started", {{"client", peer}, {"tls", c.stream.tls_description()}});
                    continue;
                }
                std::string rest(input);
                pending = std::move(rest);
                co_await write_all(c, out, limits.command_timeout);
            }
        } catch (const std::exception& e) {
            log::debug("session_error", {{"client", peer}, {"error", e.what()}});
        }
        if (writer.active()) writer.message_abort();
        if (c.stream.tls_active() && !c.stopping) {
            c.timer.expires_after(kTlsShutdownWait);
            co_await c.stream.shutdown_tls(c.timer);
        }
        c.stream.close();
        self->connections.erase(registered);
        self->limits.release(peer);
        log::debug("disconnect", {{"client", peer}});
    }

    bool is_direct(const conf::Config& config, const std::string& account) const {
        const conf::Account* a = config.find_account(account);
        return direct && a && a->delivery == conf::DeliveryMode::direct;
    }

    // End of data in direct mode: the upstream's verdict is the reply. The file stays in incoming/
    // and is never synced: until the client has its reply the client still owns the message (a
    // crash means no reply, so it sends again), and recovery discards incoming/ leftovers.
    static asio::awaitable<std::string> commit_direct(std::shared_ptr<Impl> self, SpoolWriter& writer,
                                                      smtp::ServerSession& smtp, const std::string& peer) {
        QueuedMessage message;
        bool written = false;
        try {
            auto [pending, queued] = writer.finish();
            ::close(pending.fd);
            message = std::move(queued);
            message.path = self->spool.incoming_dir() / message.id;
            written = true;
        } catch (const std::exception& e) {
            log::error("spool_write_failed", {{"client", peer}, {"error", e.what()}});
        }
        if (!written) co_return smtp.commit_finished(std::nullopt, "451 4.3.0 Error: queue file write error");
        const Envelope& env = message.envelope;
        log::info("received", {{"queue_id", message.id}, {"client", peer}, {"user", env.user},
                               {"account", env.account}, {"from", env.mail_from},
                               {"rcpt_count", env.rcpt_to.size()}, {"size", message.size}, {"delivery", "direct"}});
        const std::filesystem::path path = message.path;
        std::string reply = co_await self->direct(std::move(message));
        ::unlink(path.c_str());
        co_return smtp.commit_finished(std::nullopt, reply);
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
                       SpoolCommitter& committer, asio::thread_pool& blocking, QueuedHandler on_queued)
    : impl_(std::make_shared<Impl>(std::move(io), std::move(config), spool, committer, blocking, std::move(on_queued))) {}

SmtpServer::~SmtpServer() = default;

void SmtpServer::set_direct_handler(DirectHandler handler) { impl_->direct = std::move(handler); }

void SmtpServer::start() {
    impl_->tls_context = make_local_tls_context(impl_->config->relay);
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
    }
    for (std::size_t i = 0; i < impl_->acceptors.size(); ++i)
        asio::co_spawn(impl_->io, Impl::accept_loop(impl_, impl_->acceptors[i].get(), impl_->acceptor_is_tls[i]),
                       asio::detached);
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
    for (auto* c : impl_->connections) c->stream.close();
}

void SmtpServer::update_config(std::shared_ptr<const conf::Config> config) {
    std::vector<std::string> wanted;
    for (const auto& hp : config->relay.listen) wanted.push_back(hp.to_string());
    if (wanted != impl_->addresses)
        log::warning("reload_listen_unchanged", {{"detail", "listen addresses take effect at the next restart"}});
    impl_->limits.update(Impl::limit_settings(*config));
    impl_->config = std::move(config);
}

std::vector<std::string> SmtpServer::listening() const {
    std::vector<std::string> all = impl_->addresses;
    for (const auto& a : impl_->tls_addresses) all.push_back(a + " (tls)");
    return all;
}
std::size_t SmtpServer::sessions() const { return impl_->connections.size(); }

}  // namespace relay
