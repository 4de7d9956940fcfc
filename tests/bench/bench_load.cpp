// The benchmark's load generator: N concurrent SMTP clients on one Asio thread, each sending messages
// of S bytes (MAIL, RCPT and DATA pipelined when the server offers PIPELINING, RFC 2920), optionally
// after AUTH PLAIN, reusing its connection or opening one per message, until a total count or a
// duration is reached. Latency is measured per message from the MAIL command to the final reply
// after the body (for a queueing relay that is durable intake; for a direct one, end to end).
// Prints one JSON object. With --idle N it instead opens N connections, says EHLO, prints "ready"
// and holds them until stdin closes (the relay's memory with many idle clients); with --idle-send
// each connection in turn first sends one message (a printer that keeps its connection open).
//
//   bench-load --port P [--host 127.0.0.1] [--clients 1] [--size 10240] [--messages 1000 | --duration 5]
//              [--auth user:password] [--no-reuse] [--idle N [--idle-send]]
#include "bench_common.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

#include <boost/asio.hpp>
#include <fmt/format.h>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

struct Options {
    std::string host = "127.0.0.1";
    unsigned short port = 0;
    unsigned clients = 1;
    std::size_t size = 10240;
    long long messages = 0;       // 0: run for `duration` instead
    double duration_s = 0;
    std::string auth;             // "user:password" for AUTH PLAIN (RFC 4616); empty: none
    bool reuse = true;
};

struct Run {
    Options options;
    std::string body;             // the message, dot-stuffed already (no line starts with "."), with ".\r\n"
    long long started = 0;        // messages handed to clients
    long long sent = 0;
    long long failed = 0;
    std::int64_t deadline_ns = 0;
    std::vector<double> latencies_ms;
    std::string first_error;

    bool take() {
        if (options.messages > 0 ? started >= options.messages : bench::monotonic_ns() >= deadline_ns) return false;
        ++started;
        return true;
    }
};

// Header plus 76-character lines of text, padded to exactly `size` bytes before the terminator.
std::string make_message(std::size_t size) {
    std::string m = "From: bench@example.com\r\nTo: sink@example.com\r\nSubject: benchmark\r\n"
                    "Message-ID: <bench@example.com>\r\n\r\n";
    static constexpr std::string_view kLine = "The quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstu\r\n";
    while (m.size() + kLine.size() <= size) m += kLine;
    if (m.size() + 2 < size) m += std::string(size - m.size() - 2, 'x') + "\r\n";
    m += ".\r\n";
    return m;
}

struct Connection {
    tcp::socket socket;
    std::string in;
    std::vector<char> buffer = std::vector<char>(16384);
    bool pipelining = false;
    explicit Connection(asio::any_io_executor ex) : socket(ex) {}

    awaitable<int> reply(std::string* text = nullptr) {
        for (;;) {
            if (int code = bench::take_reply(in, text)) co_return code;
            std::size_t n = co_await socket.async_read_some(asio::buffer(buffer), use_awaitable);
            in.append(buffer.data(), n);
        }
    }
    awaitable<void> send(std::string_view bytes) {
        co_await asio::async_write(socket, asio::buffer(bytes), use_awaitable);
    }
    awaitable<void> expect(int want, const char* what) {
        std::string text;
        int code = co_await reply(&text);
        if (code != want) throw std::runtime_error(fmt::format("{}: expected {}, got {}", what, want, text));
    }
};

awaitable<void> open(Run& run, Connection& c, tcp::endpoint endpoint) {
    co_await c.socket.async_connect(endpoint, use_awaitable);
    c.socket.set_option(tcp::no_delay(true));
    co_await c.expect(220, "greeting");
    co_await c.send("EHLO bench-load\r\n");
    std::string text;
    // EHLO's reply is multiline; take_reply returns its last line, so look at the raw buffer first.
    for (;;) {
        if (c.in.find("\r\n250 ") != std::string::npos || c.in.starts_with("250 ")) break;
        std::size_t n = co_await c.socket.async_read_some(asio::buffer(c.buffer), use_awaitable);
        c.in.append(c.buffer.data(), n);
    }
    c.pipelining = c.in.find("PIPELINING") != std::string::npos;
    co_await c.expect(250, "EHLO");
    if (!run.options.auth.empty()) {
        auto colon = run.options.auth.find(':');
        std::string plain = std::string(1, '\0') + run.options.auth.substr(0, colon) + '\0' +
                            run.options.auth.substr(colon + 1);
        co_await c.send("AUTH PLAIN " + bench::base64_encode(plain) + "\r\n");
        co_await c.expect(235, "AUTH PLAIN");
    }
}

awaitable<void> transaction(Run& run, Connection& c) {
    auto begin = bench::monotonic_ns();
    static const std::string kEnvelope = "MAIL FROM:<bench@example.com>\r\nRCPT TO:<sink@example.com>\r\nDATA\r\n";
    if (c.pipelining) {
        co_await c.send(kEnvelope);
        co_await c.expect(250, "MAIL");
        co_await c.expect(250, "RCPT");
    } else {
        co_await c.send("MAIL FROM:<bench@example.com>\r\n");
        co_await c.expect(250, "MAIL");
        co_await c.send("RCPT TO:<sink@example.com>\r\n");
        co_await c.expect(250, "RCPT");
        co_await c.send("DATA\r\n");
    }
    co_await c.expect(354, "DATA");
    co_await c.send(run.body);
    co_await c.expect(250, "end of data");
    run.latencies_ms.push_back(static_cast<double>(bench::monotonic_ns() - begin) / 1e6);
    ++run.sent;
}

awaitable<void> client(Run& run, tcp::endpoint endpoint) {
    auto ex = co_await asio::this_coro::executor;
    while (run.take()) {
        Connection c(ex);
        try {
            co_await open(run, c, endpoint);
            do {
                co_await transaction(run, c);
            } while (run.options.reuse && run.take());
            co_await c.send("QUIT\r\n");
            co_await c.reply();
        } catch (const std::exception& e) {
            ++run.failed;
            if (run.first_error.empty()) run.first_error = e.what();
        }
    }
}

awaitable<void> idle_client(tcp::endpoint endpoint, Run& run, std::vector<std::unique_ptr<Connection>>& held,
                            unsigned& ready, bool send_first) {
    auto c = std::make_unique<Connection>(co_await asio::this_coro::executor);
    try {
        co_await open(run, *c, endpoint);
        if (send_first) co_await transaction(run, *c);
        held.push_back(std::move(c));
    } catch (const std::exception& e) {
        ++run.failed;
        if (run.first_error.empty()) run.first_error = e.what();
    }
    ++ready;
}

awaitable<void> idle_clients_one_by_one(tcp::endpoint endpoint, Run& run,
                                        std::vector<std::unique_ptr<Connection>>& held, unsigned& ready,
                                        unsigned count) {
    for (unsigned i = 0; i < count; ++i) co_await idle_client(endpoint, run, held, ready, true);
}

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    std::size_t k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return v[k];
}

void raise_fd_limit() {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        bench::Flags flags(argc, argv);
        Run run;
        Options& o = run.options;
        o.host = flags.str("host", o.host);
        o.port = static_cast<unsigned short>(flags.num("port", 0));
        o.clients = static_cast<unsigned>(flags.num("clients", 1));
        o.size = static_cast<std::size_t>(flags.num("size", 10240));
        o.messages = flags.num("messages", 0);
        o.duration_s = flags.real("duration", o.messages > 0 ? 0 : 5);
        o.auth = flags.str("auth");
        o.reuse = !flags.has("no-reuse");
        raise_fd_limit();
        run.body = make_message(o.size);
        asio::io_context io(1);
        tcp::endpoint endpoint(asio::ip::make_address(o.host), o.port);

        if (flags.has("idle")) {
            std::vector<std::unique_ptr<Connection>> held;
            unsigned ready = 0, want = static_cast<unsigned>(flags.num("idle", 1000));
            bool send_first = flags.has("idle-send");
            if (send_first) {
                // One after another: what stays allocated per idle client, not the peak of 1,000
                // messages at once.
                asio::co_spawn(io, idle_clients_one_by_one(endpoint, run, held, ready, want), asio::detached);
            } else {
                for (unsigned i = 0; i < want; ++i)
                    asio::co_spawn(io, idle_client(endpoint, run, held, ready, false), asio::detached);
            }
            while (ready < want) io.run_one();
            std::printf("ready connected=%zu failed=%lld%s%s\n", held.size(), run.failed,
                        run.first_error.empty() ? "" : " error=", run.first_error.c_str());
            std::fflush(stdout);
            char ignored[64];
            while (::read(0, ignored, sizeof ignored) > 0) {}
            return 0;
        }

        std::int64_t start = bench::monotonic_ns();
        run.deadline_ns = start + static_cast<std::int64_t>(o.duration_s * 1e9);
        for (unsigned i = 0; i < o.clients; ++i) asio::co_spawn(io, client(run, endpoint), asio::detached);
        io.run();
        std::int64_t end = bench::monotonic_ns();
        double elapsed = static_cast<double>(end - start) / 1e9;
        auto& lat = run.latencies_ms;
        double p50 = percentile(lat, 0.50), p99 = percentile(lat, 0.99);
        std::printf("%s\n", fmt::format(R"({{"sent":{},"failed":{},"elapsed_s":{:.4f},"msgs_per_s":{:.1f},)"
                                        R"("p50_ms":{:.3f},"p99_ms":{:.3f},"start_ns":{},"end_ns":{},"error":"{}"}})",
                                        run.sent, run.failed, elapsed, static_cast<double>(run.sent) / elapsed, p50,
                                        p99, start, end, run.first_error).c_str());
        return run.failed > 0 ? 1 : 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-load: %s\n", e.what());
        return 2;
    }
}
