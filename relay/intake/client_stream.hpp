// One client connection as the per-connection coroutine sees it: a plain TCP socket that may turn
// into TLS (STARTTLS, RFC 3207) or start as TLS (implicit TLS, RFC 8314). Reads, writes and the
// handshake go through one interface with a deadline timer. The SSL object is allocated only when a
// handshake starts, so the many idle plain connections a LAN relay holds cost no TLS memory.
#pragma once

#include <utility>

#include <cstddef>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>

namespace relay {

class ClientStream {
public:
    struct Result {
        bool timed_out = false;          // the timer fired first (or was cancelled)
        boost::system::error_code error;
        std::size_t bytes = 0;
    };

    explicit ClientStream(boost::asio::ip::tcp::socket socket);
    ~ClientStream();

    boost::asio::ip::tcp::socket& socket() { return socket_; }
    bool tls_active() const { return tls_ != nullptr; }
    std::string tls_description() const;   // "TLSv1.3 TLS_AES_256_GCM_SHA384", empty without TLS

    // Each operation races `timer`, which the caller has set; expiry or cancel gives timed_out.
    boost::asio::awaitable<Result> read_some(boost::asio::mutable_buffer buffer, boost::asio::steady_timer& timer);
    boost::asio::awaitable<Result> write_all(boost::asio::const_buffer buffer, boost::asio::steady_timer& timer);
    // Server side handshake; afterwards every read and write is encrypted.
    boost::asio::awaitable<Result> handshake(boost::asio::ssl::context& context, boost::asio::steady_timer& timer);

    // Sends a TLS close_notify and waits for the peer's, at most until `timer` fires (OpenSSL 3
    // clients report a missing close_notify as an error). No-op without TLS.
    boost::asio::awaitable<void> shutdown_tls(boost::asio::steady_timer& timer);
    // Plain connections only: true when the client has sent bytes that are not read yet, waiting up to
    // until `timer` fires for them (RFC 5321 3.1: the client waits for the greeting).
    boost::asio::awaitable<bool> client_spoke_first(boost::asio::steady_timer& timer);
    // Closes the TCP connection.
    void close();

private:
    boost::asio::ip::tcp::socket socket_;
    std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
};

}  // namespace relay
