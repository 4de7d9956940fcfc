// The SMTP client that talks to the upstream provider over Asio: connect, greeting, EHLO, STARTTLS
// with a verified chain and host name (RFC 3207, RFC 6125), AUTH with an initial response
// (RFC 4954), and MAIL/RCPT/DATA transactions with PIPELINING (RFC 2920). Protocol parsing lives in
// smtp_reply.cpp; this file moves bytes, and every read and write runs against a deadline (timer ||
// operation). A timeout or I/O error closes the connection and marks the session unusable, because
// after a lost reply nobody knows which command the server is answering. The AUTH line carries a
// token or password: it is never logged nor put into an exception.
#include <utility>  // GCC 12 needs it before the Asio headers that pull in awaitable

#include "relay/delivery/upstream_session.hpp"

#include "relay/core/base64.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace relay {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Stage = UpstreamError::Stage;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

constexpr std::size_t kBodyChunk = 64 * 1024;
constexpr auto kQuitTimeout = std::chrono::seconds(5);
constexpr auto kToken = asio::as_tuple(asio::use_awaitable);


bool is_ip_literal(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

std::string describe(const error_code& ec) {
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated)
        return "connection closed by the upstream";
    return ec.message();
}

bool is_2xx(const smtp::Reply& reply) { return reply.code / 100 == 2; }

}  // namespace

UpstreamError::UpstreamError(Stage stage, std::string message, std::optional<smtp::Reply> reply)
    : std::runtime_error(std::move(message)), stage_(stage), reply_(std::move(reply)) {}

bool UpstreamError::temporary() const { return !(reply_ && reply_->permanent()); }

std::shared_ptr<asio::ssl::context> make_upstream_tls_context(const std::filesystem::path& extra_ca_file) {
    auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
    context->set_verify_mode(asio::ssl::verify_peer);
    error_code ignored;  // a system without a CA bundle can still trust extra_ca_file
    context->set_default_verify_paths(ignored);
    if (!extra_ca_file.empty()) {
        error_code ec;
        context->load_verify_file(extra_ca_file.string(), ec);
        if (ec)
            throw std::runtime_error("cannot load CA file " + extra_ca_file.string() + ": " + ec.message());
    }
    return context;
}

struct UpstreamSession::Impl {
    Impl(asio::any_io_executor ex, std::shared_ptr<asio::ssl::context> context, UpstreamOptions opts)
        : executor(ex),
          tls_context(context ? std::move(context)
                              : std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client)),
          options(std::move(opts)),
          stream(executor, *tls_context) {}

    asio::any_io_executor executor;
    std::shared_ptr<asio::ssl::context> tls_context;
    UpstreamOptions options;
    asio::ssl::stream<tcp::socket> stream;
    smtp::ReplyParser parser;
    smtp::Reply capabilities;
    bool tls_active = false;
    bool connected = false;
    bool broken = false;

    void close() {
        broken = true;
        error_code ignored;
        stream.next_layer().close(ignored);
    }

    [[noreturn]] void fail(Stage stage, const std::string& what, std::optional<smtp::Reply> reply = {}) {
        close();
        throw UpstreamError(stage, options.server.to_string() + ": " + what, std::move(reply));
    }

    void require_usable(Stage stage) {
        if (!connected || broken)
            throw UpstreamError(stage, options.server.to_string() + ": session is not usable");
    }

    // Runs one Asio operation (returning a tuple whose first element is the error_code) against
    // `deadline`; the loser of the race is cancelled. Fails the session on timeout.
    template <class Result, class Operation>
    asio::awaitable<Result> with_deadline(Operation operation, Clock::time_point deadline, Stage stage,
                                          const char* doing) {
        using namespace asio::experimental::awaitable_operators;
        asio::steady_timer timer(executor, deadline);
        auto outcome = co_await (operation() || timer.async_wait(kToken));
        if (outcome.index() == 1) fail(stage, std::string("timed out ") + doing);
        co_return std::get<0>(std::move(outcome));
    }

    asio::awaitable<void> write_all(std::string_view bytes, Stage stage, Clock::duration timeout) {
        auto [ec, n] = co_await with_deadline<std::tuple<error_code, std::size_t>>(
            [&] {
                return tls_active ? asio::async_write(stream, asio::buffer(bytes), kToken)
                                  : asio::async_write(stream.next_layer(), asio::buffer(bytes), kToken);
            },
            Clock::now() + timeout, stage, "sending a command");
        if (ec) fail(stage, "sending a command: " + describe(ec));
    }

    asio::awaitable<smtp::Reply> read_reply(Stage stage, Clock::duration timeout) {
        const auto deadline = Clock::now() + timeout;
        std::array<char, 4096> buffer;
        while (true) {
            std::optional<smtp::Reply> reply;
            try {
                reply = parser.next();
            } catch (const std::runtime_error& e) {
                fail(stage, e.what());
            }
            if (reply) co_return std::move(*reply);
            auto [ec, n] = co_await with_deadline<std::tuple<error_code, std::size_t>>(
                [&] {
                    return tls_active ? stream.async_read_some(asio::buffer(buffer), kToken)
                                      : stream.next_layer().async_read_some(asio::buffer(buffer), kToken);
                },
                deadline, stage, "waiting for a reply");
            if (ec) fail(stage, "waiting for a reply: " + describe(ec));
            parser.feed(std::string_view(buffer.data(), n));
        }
    }

    asio::awaitable<smtp::Reply> command(const std::string& line, Stage stage) {
        co_await write_all(line + "\r\n", stage, options.command_timeout);
        co_return co_await read_reply(stage, options.command_timeout);
    }

    asio::awaitable<void> handshake() {
        // RFC 6125: check the name we were configured with, not one from DNS. SNI only for DNS
        // names (RFC 6066 section 3 forbids IP literals there).
        SSL* ssl = stream.native_handle();
        const std::string& host = options.server.host;
        if (is_ip_literal(host)) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
        } else {
            SSL_set_tlsext_host_name(ssl, host.c_str());
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            SSL_set1_host(ssl, host.c_str());
        }
        auto [ec] = co_await with_deadline<std::tuple<error_code>>(
            [&] { return stream.async_handshake(asio::ssl::stream_base::client, kToken); },
            Clock::now() + options.command_timeout, Stage::tls, "in the TLS handshake");
        if (ec) {
            long verify = SSL_get_verify_result(ssl);
            if (verify != X509_V_OK)
                fail(Stage::tls, std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify));
            fail(Stage::tls, "TLS handshake failed: " + describe(ec));
        }
        tls_active = true;
    }

    asio::awaitable<void> ehlo() {
        smtp::Reply reply = co_await command("EHLO " + options.helo_name, Stage::ehlo);
        // RFC 5321 4.1.1.1 / 3.2: an old server may not know EHLO; without TLS, HELO is enough.
        if (reply.permanent() && options.tls == conf::UpstreamTls::none)
            reply = co_await command("HELO " + options.helo_name, Stage::ehlo);
        if (reply.code != 250) {
            co_await quit();
            throw UpstreamError(Stage::ehlo, options.server.to_string() + ": EHLO refused: " + reply.text(), reply);
        }
        capabilities = std::move(reply);
    }

    asio::awaitable<void> reset() {
        smtp::Reply reply = co_await command("RSET", Stage::mail);
        // A server that cannot reset its transaction cannot be trusted with the next one.
        if (!is_2xx(reply)) close();
    }

    asio::awaitable<void> quit() {
        if (connected && !broken) {
            try {
                co_await write_all("QUIT\r\n", Stage::io, std::min<Clock::duration>(options.command_timeout, kQuitTimeout));
                co_await read_reply(Stage::io, std::min<Clock::duration>(options.command_timeout, kQuitTimeout));
            } catch (...) {
                // QUIT is a courtesy (RFC 5321 4.1.1.10); the connection closes either way.
            }
        }
        close();
    }
};

UpstreamSession::UpstreamSession(asio::any_io_executor executor, std::shared_ptr<asio::ssl::context> tls_context,
                                 UpstreamOptions options)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(tls_context), std::move(options))) {}

UpstreamSession::~UpstreamSession() = default;

asio::awaitable<void> UpstreamSession::connect() {
    Impl& s = *impl_;
    if (s.connected || s.broken) throw UpstreamError(Stage::connect, "an upstream session connects only once");
    const auto deadline = Clock::now() + s.options.connect_timeout;
    tcp::resolver resolver(s.executor);
    auto [resolve_ec, endpoints] = co_await s.with_deadline<std::tuple<error_code, tcp::resolver::results_type>>(
        [&] { return resolver.async_resolve(s.options.server.host, std::to_string(s.options.server.port), kToken); },
        deadline, Stage::connect, "resolving the host name");
    if (resolve_ec) s.fail(Stage::connect, "resolving the host name: " + describe(resolve_ec));
    auto [connect_ec, endpoint] = co_await s.with_deadline<std::tuple<error_code, tcp::endpoint>>(
        [&] { return asio::async_connect(s.stream.next_layer(), endpoints, kToken); },
        deadline, Stage::connect, "connecting");
    if (connect_ec) s.fail(Stage::connect, "connecting: " + describe(connect_ec));
    s.connected = true;
    // The end of data (".\r\n") and pipelined commands are small writes behind larger ones:
    // with Nagle's algorithm they wait for the peer's delayed ACK, ~40 ms per message.
    error_code nodelay_ec;
    s.stream.next_layer().set_option(tcp::no_delay(true), nodelay_ec);

    if (s.options.tls == conf::UpstreamTls::implicit) co_await s.handshake();
    smtp::Reply greeting = co_await s.read_reply(Stage::greeting, s.options.command_timeout);
    if (greeting.code != 220) {
        co_await s.quit();  // RFC 5321 3.1: after a 554 greeting the client should QUIT
        throw UpstreamError(Stage::greeting, s.options.server.to_string() + ": greeting: " + greeting.text(), greeting);
    }
    co_await s.ehlo();
    if (s.options.tls != conf::UpstreamTls::starttls) co_return;

    if (!s.capabilities.has_line_starting("STARTTLS")) {
        co_await s.quit();
        throw UpstreamError(Stage::tls, s.options.server.to_string() + ": upstream does not offer STARTTLS");
    }
    smtp::Reply reply = co_await s.command("STARTTLS", Stage::tls);
    if (reply.code != 220) {
        co_await s.quit();
        throw UpstreamError(Stage::tls, s.options.server.to_string() + ": STARTTLS refused: " + reply.text(), reply);
    }
    // RFC 3207 section 4.2 / CVE-2011-0411: plaintext that arrived before the handshake must not be
    // taken as replies after it.
    s.parser.clear();
    co_await s.handshake();
    co_await s.ehlo();  // RFC 3207 4.2: forget what was learned before TLS
}

asio::awaitable<smtp::Reply> UpstreamSession::authenticate(std::string mechanism, std::string response) {
    Impl& s = *impl_;
    s.require_usable(Stage::auth);
    std::transform(mechanism.begin(), mechanism.end(), mechanism.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    smtp::Reply reply;
    if (mechanism == "LOGIN") {
        // LOGIN (draft-murchison-sasl-login): two 334 prompts, for the user name then the password.
        std::size_t nul = response.find('\0');
        std::string user = response.substr(0, nul);
        std::string password = nul == std::string::npos ? std::string() : response.substr(nul + 1);
        // Named locals, not temporaries, around co_await: GCC 12 miscompiles some of those.
        const std::string answers[2] = {core::base64_encode(user), core::base64_encode(password)};
        reply = co_await s.command("AUTH LOGIN", Stage::auth);
        for (const std::string& answer : answers) {
            if (reply.code != 334) break;
            reply = co_await s.command(answer, Stage::auth);
        }
    } else {
        // RFC 4954 section 4: "=" stands for an empty initial response.
        std::string auth_line = "AUTH " + mechanism + " ";
        auth_line += response.empty() ? std::string("=") : core::base64_encode(response);
        reply = co_await s.command(auth_line, Stage::auth);
        if (reply.code == 334) {
            // The server refused the response and explains why in a base64 JSON challenge (Google's
            // XOAUTH2; RFC 7628 3.2.3 for OAUTHBEARER, answered with %x01). Finishing the exchange
            // brings the final 5xx; any other mechanism is cancelled with "*" (RFC 4954 section 4).
            std::string answer = mechanism == "XOAUTH2" ? "" : mechanism == "OAUTHBEARER" ? "AQ==" : "*";
            reply = co_await s.command(answer, Stage::auth);
        }
    }
    if (reply.code == 334) reply = co_await s.command("*", Stage::auth);
    if (reply.code == 334) s.close();  // still mid-exchange after a cancel: the session is lost
    co_return reply;
}

asio::awaitable<TransactionResult> UpstreamSession::send(const Envelope& envelope, std::uint64_t size,
                                                         BodyReader& body) {
    Impl& s = *impl_;
    s.require_usable(Stage::mail);
    if (envelope.rcpt_to.empty()) throw std::invalid_argument("upstream transaction without recipients");
    // The SMTP server already refuses these; a CR or LF here would inject commands upstream.
    auto has_line_break = [](const std::string& a) { return a.find_first_of("\r\n") != std::string::npos; };
    if (has_line_break(envelope.mail_from) || std::any_of(envelope.rcpt_to.begin(), envelope.rcpt_to.end(), has_line_break))
        throw std::invalid_argument("envelope address contains a line break");

    std::string mail = "MAIL FROM:<" + envelope.mail_from + ">";
    if (s.capabilities.has_line_starting("SIZE")) mail += " SIZE=" + std::to_string(size);  // RFC 1870
    if (envelope.eight_bit && s.capabilities.has_line_starting("8BITMIME")) mail += " BODY=8BITMIME";  // RFC 6152

    TransactionResult result;
    smtp::Reply mail_reply;
    std::vector<smtp::Reply> rcpt_replies;
    if (s.capabilities.has_line_starting("PIPELINING")) {
        // RFC 2920 3.1: MAIL and RCPT may go in one group; the replies come back in order.
        std::string group = mail + "\r\n";
        for (const std::string& rcpt : envelope.rcpt_to) group += "RCPT TO:<" + rcpt + ">\r\n";
        co_await s.write_all(group, Stage::mail, s.options.command_timeout);
        mail_reply = co_await s.read_reply(Stage::mail, s.options.command_timeout);
        for (std::size_t i = 0; i < envelope.rcpt_to.size(); ++i)
            rcpt_replies.push_back(co_await s.read_reply(Stage::rcpt, s.options.command_timeout));
    } else {
        mail_reply = co_await s.command(mail, Stage::mail);
        if (is_2xx(mail_reply))
            for (const std::string& rcpt : envelope.rcpt_to)
                rcpt_replies.push_back(co_await s.command("RCPT TO:<" + rcpt + ">", Stage::rcpt));
    }
    if (!is_2xx(mail_reply)) {
        // The MAIL reply speaks for every recipient; the pipelined RCPT replies (503s) mean nothing.
        result.final_reply = std::move(mail_reply);
        co_await s.reset();
        co_return result;
    }
    for (std::size_t i = 0; i < envelope.rcpt_to.size(); ++i) {
        if (is_2xx(rcpt_replies[i]))
            result.accepted.push_back(envelope.rcpt_to[i]);
        else
            result.rejected.emplace_back(envelope.rcpt_to[i], rcpt_replies[i]);
    }
    if (result.accepted.empty()) {
        result.final_reply = rcpt_replies.back();
        co_await s.reset();
        co_return result;
    }

    smtp::Reply data_reply = co_await s.command("DATA", Stage::data);
    if (data_reply.code != 354) {
        result.final_reply = std::move(data_reply);
        co_await s.reset();
        co_return result;
    }
    // Stream the body: a 35 MB message is never held in memory, one stuffed chunk at a time.
    body.rewind();
    smtp::DotStuffer stuffer;
    std::vector<char> chunk(kBodyChunk);
    std::string wire;
    wire.reserve(kBodyChunk + kBodyChunk / 2);
    while (true) {
        std::size_t n = 0;
        try {
            n = body.read(chunk.data(), chunk.size());
        } catch (...) {
            // Closing without the terminator makes the server drop the transaction (RFC 5321 4.1.1.4).
            s.close();
            throw;
        }
        if (n == 0) break;
        wire.clear();
        stuffer.stuff(std::string_view(chunk.data(), n), wire);
        co_await s.write_all(wire, Stage::data, s.options.command_timeout);
    }
    co_await s.write_all(stuffer.finish(), Stage::data, s.options.command_timeout);
    result.data_sent = true;
    result.final_reply = co_await s.read_reply(Stage::data, s.options.data_timeout);
    co_return result;
}

asio::awaitable<void> UpstreamSession::quit() { co_await impl_->quit(); }

bool UpstreamSession::usable() const { return impl_->connected && !impl_->broken; }

const smtp::Reply& UpstreamSession::capabilities() const { return impl_->capabilities; }

std::string UpstreamSession::tls_version() const {
    return impl_->tls_active ? SSL_get_version(impl_->stream.native_handle()) : "";
}

}  // namespace relay
