// Accept loops and one-shot request/response sessions for the control socket and /metrics.
#include "relay/service/admin_server.hpp"

#include <utility>

#include <sys/stat.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "relay/core/log.hpp"
#include "relay/core/restart.hpp"
#include "relay/core/spawn.hpp"

namespace relay {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using local = asio::local::stream_protocol;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

constexpr auto kRequestDeadline = 5s;
constexpr std::size_t kMaxRequest = 8192;

std::string reason_phrase(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    }
    return "Error";
}

std::string http_message(int status, std::string_view content_type, const std::string& body, bool head_only,
                         std::string_view extra_headers = {}) {
    std::string out = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
                                  status, reason_phrase(status), content_type, body.size(), extra_headers);
    if (!head_only) out += body;
    return out;
}

// Reads up to `terminator` (or kMaxRequest bytes) within the deadline, then writes `respond(request)`.
template <class Socket, class Respond>
asio::awaitable<void> one_request(Socket socket, std::string_view terminator, Respond respond) {
    asio::steady_timer deadline(socket.get_executor(), kRequestDeadline);
    std::string request;
    auto buffer = asio::dynamic_buffer(request, kMaxRequest);
    auto read = co_await (asio::async_read_until(socket, buffer, std::string(terminator), asio::as_tuple(asio::use_awaitable)) ||
                          deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (read.index() == 1) co_return;  // too slow: just close
    auto [ec, n] = std::get<0>(read);
    if (ec && ec != asio::error::not_found && ec != asio::error::eof) co_return;
    std::string response = respond(std::string_view(request).substr(0, ec ? request.size() : n));
    deadline.expires_after(kRequestDeadline);
    co_await (asio::async_write(socket, asio::buffer(response), asio::as_tuple(asio::use_awaitable)) ||
              deadline.async_wait(asio::as_tuple(asio::use_awaitable)));
}

}  // namespace

std::string http_response(std::string_view head, const AdminServer::MetricsHandler& metrics) {
    auto line_end = head.find("\r\n");
    if (line_end == std::string_view::npos) return http_message(400, "text/plain", "bad request\n", false);
    std::string_view line = head.substr(0, line_end);
    auto sp1 = line.find(' ');
    auto sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1 || !line.substr(sp2 + 1).starts_with("HTTP/1."))
        return http_message(400, "text/plain", "bad request\n", false);
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    bool head_only = method == "HEAD";
    if (method != "GET" && !head_only)
        return http_message(405, "text/plain", "only GET\n", false, "Allow: GET, HEAD\r\n");
    std::string_view path = target.substr(0, target.find('?'));
    if (path != "/metrics") return http_message(404, "text/plain", "not found; try /metrics\n", head_only);
    return http_message(200, "text/plain; version=0.0.4; charset=utf-8", metrics(), head_only);
}

struct AdminServer::Impl : std::enable_shared_from_this<Impl> {
    explicit Impl(asio::any_io_executor e) : io(std::move(e)) {}
    asio::any_io_executor io;
    std::unique_ptr<local::acceptor> control;
    std::filesystem::path control_path;
    std::unique_ptr<tcp::acceptor> metrics;
    std::vector<std::string> addresses;
    bool stopping = false;

    template <class Acceptor, class Serve>
    static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self, Acceptor* acceptor, Serve serve) {
        while (!self->stopping) {
            auto [ec, socket] = co_await acceptor->async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) {
                if (self->stopping || ec == asio::error::operation_aborted) break;
                asio::steady_timer pause(self->io, 100ms);   // EMFILE and friends: do not spin
                co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
                continue;
            }
            serve(std::move(socket));
        }
    }

    // An accept loop that dies is logged and started again a second later: status and metrics must
    // stay reachable.
    template <class Acceptor, class Serve>
    void spawn_accept_loop(Acceptor* acceptor, Serve serve, const std::string& what) {
        std::weak_ptr<Impl> weak = weak_from_this();
        core::spawn(io, accept_loop(shared_from_this(), acceptor, serve), "admin_accept_loop", what,
                    [weak, acceptor, serve, what](std::exception_ptr) {
                        auto self = weak.lock();
                        if (!self) return;
                        core::restart_later(self->io, [weak, acceptor, serve, what] {
                            if (auto self = weak.lock(); self && !self->stopping) self->spawn_accept_loop(acceptor, serve, what);
                        });
                    });
    }
};

AdminServer::AdminServer(asio::any_io_executor io) : impl_(std::make_shared<Impl>(std::move(io))) {}
AdminServer::~AdminServer() { stop(); }

void AdminServer::listen_control(const std::filesystem::path& path, ControlHandler handler) {
    boost::system::error_code ec;
    {
        // A socket file outlives a crash and binding over it fails, so a stale one is removed; but
        // one that answers belongs to a relay that is running with this configuration.
        local::socket probe(impl_->io);
        probe.connect(local::endpoint(path.string()), ec);
        if (!ec) throw std::system_error(std::make_error_code(std::errc::address_in_use),
                                         "control socket " + path.string() + ": another relay is running");
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
    }
    auto acceptor = std::make_unique<local::acceptor>(impl_->io);
    acceptor->open(local(), ec);
    // Created 0600 from the start (umask at bind), not chmod-ed afterwards: no window for others.
    mode_t old_mask = ::umask(0177);
    if (!ec) acceptor->bind(local::endpoint(path.string()), ec);
    ::umask(old_mask);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::system_error(ec, "control socket " + path.string());
    impl_->control_path = path;
    impl_->addresses.push_back("unix:" + path.string());
    auto* raw = acceptor.get();
    impl_->control = std::move(acceptor);
    auto serve = [io = impl_->io, handler = std::move(handler)](local::socket socket) {
        // One request that fails ends only itself: logged, the socket closes with the frame.
        core::spawn(io, one_request(std::move(socket), "\n", [handler](std::string_view request) {
            while (!request.empty() && (request.back() == '\n' || request.back() == '\r')) request.remove_suffix(1);
            return handler(request);
        }), "admin_request", "control");
    };
    impl_->spawn_accept_loop(raw, std::move(serve), "control");
}

void AdminServer::listen_metrics(const conf::HostPort& address, MetricsHandler handler) {
    boost::system::error_code ec;
    auto ip = asio::ip::make_address(address.host, ec);
    if (ec) throw std::system_error(ec, "metrics_listen " + address.to_string());
    tcp::endpoint endpoint(ip, address.port);
    auto acceptor = std::make_unique<tcp::acceptor>(impl_->io);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) throw std::system_error(ec, "metrics_listen " + address.to_string());
    auto bound = acceptor->local_endpoint(ec);
    impl_->addresses.push_back(fmt::format("http://{}/metrics", conf::HostPort{address.host, bound.port()}.to_string()));
    auto* raw = acceptor.get();
    impl_->metrics = std::move(acceptor);
    auto serve = [io = impl_->io, handler = std::move(handler)](tcp::socket socket) {
        core::spawn(io, one_request(std::move(socket), "\r\n\r\n", [handler](std::string_view request) {
            return http_response(request, handler);
        }), "admin_request", "metrics");
    };
    impl_->spawn_accept_loop(raw, std::move(serve), "metrics");
}

void AdminServer::stop() {
    if (impl_->stopping) return;
    impl_->stopping = true;
    boost::system::error_code ignored;
    if (impl_->control) {
        impl_->control->close(ignored);
        std::error_code removed;
        std::filesystem::remove(impl_->control_path, removed);
    }
    if (impl_->metrics) impl_->metrics->close(ignored);
}

std::vector<std::string> AdminServer::addresses() const { return impl_->addresses; }

}  // namespace relay
