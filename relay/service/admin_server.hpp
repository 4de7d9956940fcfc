// Local endpoints for administrators, served on the I/O thread next to SMTP: the control socket
// (a unix stream socket, mode 0600, where `smtp-oauth2-relay status` sends "status\n" and reads a
// JSON snapshot) and the optional Prometheus endpoint (HTTP/1.1 GET /metrics on metrics_listen).
// Both are one request, one response, then close; each request has a small size limit and a
// deadline so a stuck client cannot hold a connection open.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "conf/config.hpp"

namespace relay {

class AdminServer {
public:
    // The control socket's answer to one request line ("status"); runs on the I/O thread.
    using ControlHandler = std::function<std::string(std::string_view command)>;
    // The body of GET /metrics; runs on the I/O thread.
    using MetricsHandler = std::function<std::string()>;

    explicit AdminServer(boost::asio::any_io_executor io);
    ~AdminServer();

    // Binds `path` (replacing a stale socket file left by a crash) with mode 0600.
    // Throws std::system_error naming the path.
    void listen_control(const std::filesystem::path& path, ControlHandler handler);
    // Binds the metrics address. Throws std::system_error naming the address.
    void listen_metrics(const conf::HostPort& address, MetricsHandler handler);
    // Closes the listeners and removes the socket file.
    void stop();

    std::vector<std::string> addresses() const;   // "unix:/var/lib/.../control.sock", "http://127.0.0.1:9925/metrics"

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

// The complete HTTP/1.1 response to one request head (pure; RFC 9112): GET or HEAD /metrics -> 200
// in Prometheus text format 0.0.4; another path -> 404; another method -> 405; garbage -> 400.
std::string http_response(std::string_view request_head, const AdminServer::MetricsHandler& metrics);

}  // namespace relay
