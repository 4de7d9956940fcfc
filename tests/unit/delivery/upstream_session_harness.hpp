// The UpstreamSession tests' helpers (test_upstream_session.cpp, test_upstream_session_tls.cpp): a
// message body from a string (in chunks, or failing like a spool read), plain options for the
// scripted server on 127.0.0.1, a bounded run of one client coroutine, and what it threw.
#pragma once

#include "fake_smtp_server.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>
#include <vector>

#include "relay/delivery/upstream_session.hpp"

namespace upstream_testing {

namespace asio = boost::asio;
using relay::BodyReader;
using relay::Envelope;
using relay::UpstreamOptions;

class StringBody : public BodyReader {
public:
    explicit StringBody(std::string text, std::size_t max_chunk = 1 << 30)
        : text_(std::move(text)), max_chunk_(max_chunk) {}
    std::size_t read(char* buffer, std::size_t size) override {
        if (fail_) throw std::system_error(std::make_error_code(std::errc::io_error), "spool read");
        std::size_t n = std::min({size, max_chunk_, text_.size() - pos_});
        std::memcpy(buffer, text_.data() + pos_, n);
        pos_ += n;
        return n;
    }
    void rewind() override { pos_ = 0; }
    bool fail_ = false;

private:
    std::string text_;
    std::size_t max_chunk_;
    std::size_t pos_ = 0;
};

inline UpstreamOptions plain_options(std::uint16_t port) {
    UpstreamOptions options;
    options.server = {"127.0.0.1", port};
    options.tls = relay::conf::UpstreamTls::none;
    options.helo_name = "relay.test";
    options.connect_timeout = std::chrono::seconds(5);
    options.command_timeout = std::chrono::seconds(5);
    options.data_timeout = std::chrono::seconds(5);
    return options;
}

// Runs `client` to completion (bounded) and returns what it threw, if anything.
template <class Client>
std::exception_ptr run(asio::io_context& io, Client client) {
    bool done = false;
    std::exception_ptr error;
    asio::co_spawn(io, std::move(client), [&](std::exception_ptr e) {
        error = e;
        done = true;
    });
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done && std::chrono::steady_clock::now() < until) io.run_one_for(std::chrono::milliseconds(100));
    io.poll();  // let the server see the close
    EXPECT_TRUE(done) << "client did not finish";
    return error;
}

template <class Exception>
Exception caught(std::exception_ptr error) {
    try {
        if (error) std::rethrow_exception(error);
    } catch (const Exception& e) {
        return e;
    }
    throw std::runtime_error("expected exception not thrown");
}

inline std::string message(std::exception_ptr error) {
    try {
        if (error) std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "no exception";
}

inline Envelope envelope(std::vector<std::string> rcpts, std::string from = "sender@example.com") {
    Envelope e;
    e.mail_from = std::move(from);
    e.rcpt_to = std::move(rcpts);
    return e;
}

}  // namespace upstream_testing
