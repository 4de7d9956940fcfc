// Plain-or-TLS client stream with deadlines. See client_stream.hpp.
#include "relay/intake/client_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace relay {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

template <class Variant>
ClientStream::Result to_result(Variant&& raced) {
    ClientStream::Result result;
    if (raced.index() == 1) {
        result.timed_out = true;
        return result;
    }
    auto [ec, n] = std::get<0>(raced);
    result.error = ec;
    result.bytes = n;
    return result;
}

}  // namespace

ClientStream::ClientStream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
ClientStream::~ClientStream() = default;

std::string ClientStream::tls_description() const {
    if (!tls_) return {};
    SSL* ssl = const_cast<asio::ssl::stream<asio::ip::tcp::socket&>&>(*tls_).native_handle();
    return std::string(SSL_get_version(ssl)) + " " + SSL_get_cipher_name(ssl);
}

asio::awaitable<ClientStream::Result> ClientStream::read_some(asio::mutable_buffer buffer, asio::steady_timer& timer) {
    if (tls_) {
        auto raced = co_await (tls_->async_read_some(buffer, kTuple) || timer.async_wait(kTuple));
        co_return to_result(raced);
    }
    auto raced = co_await (socket_.async_read_some(buffer, kTuple) || timer.async_wait(kTuple));
    co_return to_result(raced);
}

asio::awaitable<ClientStream::Result> ClientStream::write_all(asio::const_buffer buffer, asio::steady_timer& timer) {
    if (tls_) {
        auto raced = co_await (asio::async_write(*tls_, buffer, kTuple) || timer.async_wait(kTuple));
        co_return to_result(raced);
    }
    auto raced = co_await (asio::async_write(socket_, buffer, kTuple) || timer.async_wait(kTuple));
    co_return to_result(raced);
}

asio::awaitable<ClientStream::Result> ClientStream::handshake(asio::ssl::context& context, asio::steady_timer& timer) {
    tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(socket_, context);
    auto raced = co_await (tls_->async_handshake(asio::ssl::stream_base::server, kTuple) || timer.async_wait(kTuple));
    Result result;
    if (raced.index() == 1) {
        result.timed_out = true;
    } else {
        auto [ec] = std::get<0>(raced);
        result.error = ec;
    }
    co_return result;
}

asio::awaitable<void> ClientStream::shutdown_tls(asio::steady_timer& timer) {
    if (!tls_) co_return;
    co_await (tls_->async_shutdown(kTuple) || timer.async_wait(kTuple));
}

asio::awaitable<bool> ClientStream::client_spoke_first(asio::steady_timer& timer) {
    boost::system::error_code ec;
    if (socket_.available(ec) > 0) co_return true;
    if (timer.expiry() <= asio::steady_timer::clock_type::now()) co_return false;
    auto raced = co_await (socket_.async_wait(asio::ip::tcp::socket::wait_read, kTuple) || timer.async_wait(kTuple));
    co_return raced.index() == 0 && socket_.available(ec) > 0;
}

void ClientStream::close() {
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
}

}  // namespace relay
