// The benchmark's upstream: a fast SMTP sink standing in for Office 365 (EHLO with PIPELINING, SIZE,
// 8BITMIME, AUTH XOAUTH2 PLAIN and, given a certificate, STARTTLS; bodies are scanned for the end of
// data and discarded), plus a minimal HTTP token endpoint (RFC 6749 5.1 answers with a configurable
// lifetime) that counts its requests. XOAUTH2 is accepted when well formed; a token this sink issued
// is refused with 535 once expired, as the provider would. Counters are read and reset over HTTP
// (GET /stats, POST /reset) by tests/bench/run. One thread: the sink should cost as little as possible.
//
//   bench-sink --smtp-port 0 --http-port 0 [--token-lifetime 3600] [--data-delay-ms 0]
//              [--tls-cert cert.pem --tls-key key.pem]
// prints "smtp_port=P http_port=Q" on its first line, then serves until killed.
#include "bench_common.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <set>
#include <unordered_map>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <fmt/format.h>

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;

struct Stats {
    std::uint64_t messages = 0;
    std::uint64_t bytes = 0;
    std::uint64_t sessions = 0;
    std::uint64_t auths = 0;
    std::uint64_t auth_rejected_expired = 0;
    std::uint64_t token_requests = 0;
    std::int64_t first_message_ns = 0;
    std::int64_t last_message_ns = 0;
    unsigned open_sessions = 0;
    unsigned peak_sessions = 0;
    unsigned in_data = 0;
    unsigned peak_in_data = 0;
    std::set<std::string> tokens_used;
};

struct Sink {
    explicit Sink(asio::io_context& context) : io(context) {}
    asio::io_context& io;
    std::optional<ssl::context> tls;
    long token_lifetime_s = 3600;
    int data_delay_ms = 0;
    Stats stats;
    std::uint64_t next_token = 1;
    std::unordered_map<std::string, std::int64_t> token_expiry_ns;  // tokens we issued

    std::string stats_json() const {
        return fmt::format(
            R"({{"messages":{},"bytes":{},"sessions":{},"auths":{},"auth_rejected_expired":{},)"
            R"("token_requests":{},"distinct_tokens_used":{},"first_message_ns":{},"last_message_ns":{},)"
            R"("open_sessions":{},"peak_sessions":{},"peak_in_data":{}}})",
            stats.messages, stats.bytes, stats.sessions, stats.auths, stats.auth_rejected_expired,
            stats.token_requests, stats.tokens_used.size(), stats.first_message_ns, stats.last_message_ns,
            stats.open_sessions, stats.peak_sessions, stats.peak_in_data);
    }

    // XOAUTH2 initial response: "user=" user ^A "auth=Bearer " token ^A ^A (Google's XOAUTH2 spec).
    std::optional<std::string> xoauth2_token(std::string_view b64) {
        auto decoded = bench::base64_decode(b64);
        if (!decoded || !decoded->starts_with("user=")) return std::nullopt;
        auto at = decoded->find("\x01" "auth=Bearer ");
        if (at == std::string::npos || !decoded->ends_with("\x01\x01")) return std::nullopt;
        at += 13;
        return decoded->substr(at, decoded->size() - 2 - at);
    }

    // One AUTH command line; returns the reply.
    std::string authenticate(const std::string& line) {
        std::string rest = line.size() > 5 ? line.substr(5) : "";
        std::size_t sp = rest.find(' ');
        std::string mech = rest.substr(0, sp);
        std::string response = sp == std::string::npos ? "" : rest.substr(sp + 1);
        std::transform(mech.begin(), mech.end(), mech.begin(), ::toupper);
        if (mech == "PLAIN") {
            ++stats.auths;
            return "235 2.7.0 Authentication successful\r\n";
        }
        if (mech != "XOAUTH2") return "504 5.5.4 mechanism not supported\r\n";
        auto token = xoauth2_token(response);
        if (!token) return "501 5.5.2 malformed XOAUTH2 response\r\n";
        auto issued = token_expiry_ns.find(*token);
        if (issued != token_expiry_ns.end() && issued->second <= bench::monotonic_ns()) {
            ++stats.auth_rejected_expired;
            return "535 5.7.3 Authentication unsuccessful (token expired)\r\n";
        }
        ++stats.auths;
        stats.tokens_used.insert(*token);
        return "235 2.7.0 Authentication successful\r\n";
    }

    std::string issue_token() {
        std::string token = fmt::format("bench-access-{:08}", next_token++);
        token_expiry_ns[token] = bench::monotonic_ns() + token_lifetime_s * 1'000'000'000LL;
        ++stats.token_requests;
        return fmt::format(R"({{"token_type":"Bearer","scope":"https://outlook.office.com/SMTP.Send",)"
                           R"("expires_in":{},"access_token":"{}"}})", token_lifetime_s, token);
    }
};

// Byte stream that is plain TCP until STARTTLS, then TLS over the same socket.
struct Stream {
    ssl::stream<tcp::socket> s;
    bool tls = false;
    Stream(tcp::socket socket, ssl::context& ctx) : s(std::move(socket), ctx) {}
    awaitable<std::size_t> read(asio::mutable_buffer b) {
        if (tls) co_return co_await s.async_read_some(b, use_awaitable);
        co_return co_await s.next_layer().async_read_some(b, use_awaitable);
    }
    awaitable<void> write(std::string_view bytes) {
        if (tls) co_await asio::async_write(s, asio::buffer(bytes), use_awaitable);
        else co_await asio::async_write(s.next_layer(), asio::buffer(bytes), use_awaitable);
    }
};

ssl::context& plain_context() {
    static ssl::context ctx(ssl::context::tls_server);
    return ctx;
}

awaitable<void> smtp_session(Sink& sink, tcp::socket socket) {
    socket.set_option(tcp::no_delay(true));
    Stream stream(std::move(socket), sink.tls ? *sink.tls : plain_context());
    Stats& st = sink.stats;
    ++st.sessions;
    st.peak_sessions = std::max(st.peak_sessions, ++st.open_sessions);
    std::string in;
    std::string out = "220 bench-sink ESMTP\r\n";
    std::vector<char> buffer(65536);
    bool in_data = false;
    // End of data is CRLF "." CRLF; DATA's own CRLF counts as the first CRLF (RFC 5321 4.1.1.4).
    static constexpr char kEnd[] = "\r\n.\r\n";
    int matched = 0;
    std::uint64_t body_bytes = 0;
    try {
        co_await stream.write(out);
        out.clear();
        for (;;) {
            std::size_t n = co_await stream.read(asio::buffer(buffer));
            in.append(buffer.data(), n);
            bool close = false, start_tls = false;
            std::size_t delays = 0;
            while (!in.empty() && !close && !start_tls) {
                if (in_data) {
                    std::size_t i = 0;
                    for (; i < in.size(); ++i) {
                        char c = in[i];
                        if (c == kEnd[matched]) {
                            if (++matched == 5) break;
                        } else {
                            matched = c == '\r' ? 1 : 0;
                        }
                    }
                    if (matched != 5) {
                        body_bytes += in.size();
                        in.clear();
                        break;
                    }
                    body_bytes += i + 1;
                    in.erase(0, i + 1);
                    in_data = false;
                    --st.in_data;
                    ++delays;
                    ++st.messages;
                    st.bytes += body_bytes;
                    st.last_message_ns = bench::monotonic_ns();
                    if (st.first_message_ns == 0) st.first_message_ns = st.last_message_ns;
                    out += "250 2.0.0 OK queued\r\n";
                    continue;
                }
                std::size_t eol = in.find("\r\n");
                if (eol == std::string::npos) break;
                std::string line = in.substr(0, eol);
                in.erase(0, eol + 2);
                std::string verb = line.substr(0, line.find(' '));
                std::transform(verb.begin(), verb.end(), verb.begin(), ::toupper);
                if (verb == "EHLO") {
                    out += "250-bench-sink\r\n250-PIPELINING\r\n250-SIZE 157286400\r\n250-8BITMIME\r\n";
                    if (sink.tls && !stream.tls) out += "250-STARTTLS\r\n";
                    out += "250 AUTH XOAUTH2 PLAIN\r\n";
                } else if (verb == "HELO" || verb == "MAIL" || verb == "RCPT" || verb == "RSET" || verb == "NOOP") {
                    out += "250 2.0.0 OK\r\n";
                } else if (verb == "AUTH") {
                    out += sink.authenticate(line);
                } else if (verb == "DATA") {
                    out += "354 go ahead\r\n";
                    in_data = true;
                    matched = 2;
                    body_bytes = 0;
                    st.peak_in_data = std::max(st.peak_in_data, ++st.in_data);
                } else if (verb == "STARTTLS" && sink.tls && !stream.tls) {
                    out += "220 2.0.0 ready\r\n";
                    start_tls = true;
                } else if (verb == "QUIT") {
                    out += "221 2.0.0 bye\r\n";
                    close = true;
                } else {
                    out += "500 5.5.1 unknown command\r\n";
                }
            }
            if (delays > 0 && sink.data_delay_ms > 0) {
                // A slow provider: keeps deliveries in flight so they overlap (token refresh measurement).
                asio::steady_timer delay(sink.io, std::chrono::milliseconds(sink.data_delay_ms));
                co_await delay.async_wait(use_awaitable);
            }
            if (!out.empty()) {
                co_await stream.write(out);
                out.clear();
            }
            if (close) break;
            if (start_tls) {
                in.clear();  // RFC 3207 4.2: nothing read before the handshake counts after it
                co_await stream.s.async_handshake(ssl::stream_base::server, use_awaitable);
                stream.tls = true;
            }
        }
    } catch (const std::exception&) {
        // Peer closed or reset: the sink does not care why.
    }
    if (in_data) --st.in_data;
    --st.open_sessions;
}

awaitable<void> http_session(Sink& sink, tcp::socket socket) {
    std::string in;
    std::vector<char> buffer(8192);
    try {
        std::size_t header_end;
        while ((header_end = in.find("\r\n\r\n")) == std::string::npos) {
            std::size_t n = co_await socket.async_read_some(asio::buffer(buffer), use_awaitable);
            in.append(buffer.data(), n);
        }
        std::string head = in.substr(0, header_end);
        std::string lower = head;
        std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
        std::size_t length = 0;
        if (auto at = lower.find("content-length:"); at != std::string::npos)
            length = std::stoul(lower.substr(at + 15));
        while (in.size() < header_end + 4 + length) {
            std::size_t n = co_await socket.async_read_some(asio::buffer(buffer), use_awaitable);
            in.append(buffer.data(), n);
        }
        std::string body, status = "200 OK";
        if (head.starts_with("GET /stats")) {
            body = sink.stats_json();
        } else if (head.starts_with("POST /reset")) {
            unsigned open = sink.stats.open_sessions, in_data = sink.stats.in_data;
            sink.stats = Stats{};
            sink.stats.open_sessions = open;
            sink.stats.in_data = in_data;
            body = "{}";
        } else if (head.starts_with("POST ")) {
            // Any other POST is a token request (refresh_token grant, RFC 6749 6).
            body = sink.issue_token();
        } else {
            status = "404 Not Found";
            body = "{}";
        }
        std::string response = fmt::format("HTTP/1.1 {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
                                           "Connection: close\r\n\r\n{}", status, body.size(), body);
        co_await asio::async_write(socket, asio::buffer(response), use_awaitable);
        boost::system::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_send, ignored);
    } catch (const std::exception&) {
    }
}

template <class Session>
awaitable<void> accept_loop(Sink& sink, tcp::acceptor& acceptor, Session session) {
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
        asio::co_spawn(sink.io, session(sink, std::move(socket)), asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        bench::Flags flags(argc, argv);
        asio::io_context io(1);
        Sink sink(io);
        sink.token_lifetime_s = flags.num("token-lifetime", 3600);
        sink.data_delay_ms = static_cast<int>(flags.num("data-delay-ms", 0));
        if (flags.has("tls-cert")) {
            sink.tls.emplace(ssl::context::tls_server);
            sink.tls->use_certificate_chain_file(flags.str("tls-cert"));
            sink.tls->use_private_key_file(flags.str("tls-key"), ssl::context::pem);
        }
        auto loopback = asio::ip::make_address("127.0.0.1");
        tcp::acceptor smtp(io, tcp::endpoint(loopback, static_cast<unsigned short>(flags.num("smtp-port", 0))));
        tcp::acceptor http(io, tcp::endpoint(loopback, static_cast<unsigned short>(flags.num("http-port", 0))));
        smtp.listen(4096);
        std::printf("smtp_port=%u http_port=%u\n", smtp.local_endpoint().port(), http.local_endpoint().port());
        std::fflush(stdout);
        asio::co_spawn(io, accept_loop(sink, smtp, smtp_session), asio::detached);
        asio::co_spawn(io, accept_loop(sink, http, http_session), asio::detached);
        io.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-sink: %s\n", e.what());
        return 1;
    }
}
