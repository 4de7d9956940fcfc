// UpstreamSession against a scripted SMTP server on 127.0.0.1 (fake_smtp_server.hpp): pipelining
// order, partial and total RCPT rejection, MAIL rejection with RSET, exact dot-stuffed bytes on the
// wire, AUTH challenge handling, deadlines, and STARTTLS verification (trusted, untrusted CA, name
// and IP mismatch, plaintext injected before the handshake).
#include "fake_smtp_server.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <unistd.h>

#include "relay/delivery/upstream_session.hpp"

namespace asio = boost::asio;
using relay::BodyReader;
using relay::Envelope;
using relay::TransactionResult;
using relay::UpstreamError;
using relay::UpstreamOptions;
using relay::UpstreamSession;
using Stage = relay::UpstreamError::Stage;

namespace {

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

UpstreamOptions plain_options(std::uint16_t port) {
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

std::string message(std::exception_ptr error) {
    try {
        if (error) std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "no exception";
}

Envelope envelope(std::vector<std::string> rcpts, std::string from = "sender@example.com") {
    Envelope e;
    e.mail_from = std::move(from);
    e.rcpt_to = std::move(rcpts);
    return e;
}

}  // namespace

TEST(UpstreamSession, PipelinedMailAndRcptWithPartialRejection) {
    asio::io_context io;
    fake::SmtpServer server(io);
    server.respond = [](const std::string& line) -> std::string {
        return line == "RCPT TO:<nobody@example.com>" ? "550 5.1.1 User unknown\r\n" : "";
    };
    // Replies are held until the last RCPT: only a pipelining client can ever see them.
    server.flush_after = [](const std::string& line) {
        return !line.starts_with("MAIL") && (!line.starts_with("RCPT") || line == "RCPT TO:<c@example.com>");
    };
    TransactionResult result;
    Envelope env = envelope({"a@example.com", "nobody@example.com", "c@example.com"});
    env.eight_bit = true;
    StringBody body("Subject: hi\r\n\r\nhello\r\n");
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), nullptr, plain_options(server.port()));
        co_await session.connect();
        result = co_await session.send(env, 123, body);
        co_await session.quit();
    });
    ASSERT_FALSE(error) << message(error);
    EXPECT_EQ(server.lines, (std::vector<std::string>{
        "EHLO relay.test", "MAIL FROM:<sender@example.com> SIZE=123 BODY=8BITMIME", "RCPT TO:<a@example.com>",
        "RCPT TO:<nobody@example.com>", "RCPT TO:<c@example.com>", "DATA", "QUIT"}));
    EXPECT_TRUE(result.data_sent);
    EXPECT_EQ(result.final_reply.code, 250);
    EXPECT_EQ(result.accepted, (std::vector<std::string>{"a@example.com", "c@example.com"}));
    ASSERT_EQ(result.rejected.size(), 1u);
    EXPECT_EQ(result.rejected[0].first, "nobody@example.com");
    EXPECT_EQ(result.rejected[0].second.enhanced(), "5.1.1");
    ASSERT_EQ(server.data.size(), 1u);
    EXPECT_EQ(server.data[0], "Subject: hi\r\n\r\nhello\r\n.\r\n");
}

TEST(UpstreamSession, NoSizeNoBodyParameterWhenNotOfferedAndNoPipelining) {
    asio::io_context io;
    fake::SmtpServer server(io);
    server.ehlo_reply = "250 fake.example\r\n";
    Envelope env = envelope({"a@example.com"});
    env.eight_bit = true;
    StringBody body("x\r\n");
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), nullptr, plain_options(server.port()));
        co_await session.connect();
        co_await session.send(env, 3, body);
    });
    ASSERT_FALSE(error);
    ASSERT_GE(server.lines.size(), 2u);
    EXPECT_EQ(server.lines[1], "MAIL FROM:<sender@example.com>");
}

TEST(UpstreamSession, MailRejectedResetsAndSessionStaysUsable) {
    asio::io_context io;
    fake::SmtpServer server(io);
    server.respond = [](const std::string& line) -> std::string {
        return line.starts_with("MAIL FROM:<bad@") ? "550 5.7.60 Client does not have permissions to send as this sender\r\n"
                                                   : "";
    };
    TransactionResult first, second;
    const Envelope bad_sender = envelope({"a@example.com"}, "bad@example.com"), one = envelope({"a@example.com"});
    bool usable_between = false;
    StringBody body("body\r\n");
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), nullptr, plain_options(server.port()));
        co_await session.connect();
        first = co_await session.send(bad_sender, 6, body);
        usable_between = session.usable();
        second = co_await session.send(one, 6, body);
        co_await session.quit();
    });
    ASSERT_FALSE(error);
    EXPECT_FALSE(first.data_sent);
    EXPECT_EQ(first.final_reply.code, 550);
    EXPECT_EQ(first.final_reply.enhanced(), "5.7.60");
    EXPECT_TRUE(first.accepted.empty());
    EXPECT_TRUE(usable_between);
    EXPECT_NE(std::find(server.lines.begin(), server.lines.end(), "RSET"), server.lines.end());
    EXPECT_TRUE(second.data_sent);
    EXPECT_EQ(second.final_reply.code, 250);
    EXPECT_EQ(server.data.size(), 1u);
}

TEST(UpstreamSession, AllRecipientsRefusedGivesLastRcptReplyAndNoData) {
    asio::io_context io;
    fake::SmtpServer server(io);
    int rcpt = 0;
    server.respond = [&](const std::string& line) -> std::string {
        if (!line.starts_with("RCPT")) return "";
        return ++rcpt == 1 ? "550 5.1.1 unknown\r\n" : "452 4.5.3 Too many recipients\r\n";
    };
    TransactionResult result;
    const Envelope two = envelope({"a@example.com", "b@example.com"});
    StringBody body("body\r\n");
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), nullptr, plain_options(server.port()));
        co_await session.connect();
        result = co_await session.send(two, 6, body);
    });
    ASSERT_FALSE(error);
    EXPECT_FALSE(result.data_sent);
    EXPECT_EQ(result.final_reply.code, 452);
    EXPECT_EQ(result.rejected.size(), 2u);
    EXPECT_EQ(server.lines.back(), "RSET");
    EXPECT_TRUE(server.data.empty());
}

TEST(UpstreamSession, DotStuffedBytesOnTheWireAreExact) {
    asio::io_context io;
    fake::SmtpServer server(io);
    // Small chunks from the reader, a missing final CRLF, and a large body whose 64 KiB reads end
    // right before a line-leading dot.
    std::string big;
    while (big.size() < 300000) big += std::string(65534 - big.size() % 65536, 'a') + "\r\n.dot\r\n";
    StringBody small(".leading\r\nmid.dle\r\n.\r\n..\r\nlast", 5);
    StringBody large(big);
    const Envelope one = envelope({"a@example.com"});
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), nullptr, plain_options(server.port()));
        co_await session.connect();
        co_await session.send(one, 0, small);
        co_await session.send(one, 0, large);
    });
    ASSERT_FALSE(error);
    ASSERT_EQ(server.data.size(), 2u);
    EXPECT_EQ(server.data[0], "..leading\r\nmid.dle\r\n..\r\n...\r\nlast\r\n.\r\n");
    std::string expected;
    for (std::size_t pos = 0; pos < big.size();) {
        std::size_t end = big.find("\r\n", pos) + 2;
        if (big[pos] == '.') expected += '.';
        expected.append(big, pos, end - pos);
        pos = end;
    }
    EXPECT_TRUE(server.data[1] == expected + ".\r\n");  // not EXPECT_EQ: 300 KB diffs are unreadable
}

TEST(UpstreamSession, AuthChallengesAreAnsweredPerMechanism) {
    asio::io_context io;
    fake::SmtpServer server(io);
    server.respond = [](const std::string& line) -> std::string {
        if (line.starts_with("AUTH XOAUTH2 ") || line.starts_with("AUTH OAUTHBEARER "))
            return "334 eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIn0=\r\n";
        if (line == "AUTH LOGIN") return "334 VXNlcm5hbWU6\r\n";
        if (line == "cmVsYXk=") return "334 UGFzc3dvcmQ6\r\n";
        if (line == "cGE6c3M=") return "235 2.7.0 Authentication successful\r\n";
        if (line.empty() || line == "AQ==") return "535 5.7.8 Username and Password not accepted\r\n";
        return "";
    };
    relay::smtp::Reply xoauth2, oauthbearer, login;
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), nullptr, plain_options(server.port()));
        co_await session.connect();
        xoauth2 = co_await session.authenticate("XOAUTH2", std::string("user=someone@example.com\x01"
                                                                       "auth=Bearer t0k3n.abc\x01\x01"));
        oauthbearer = co_await session.authenticate("oauthbearer", std::string("n,a=someone@example.com,\x01"
                                                                               "auth=Bearer t0k3n.abc\x01\x01"));
        login = co_await session.authenticate("LOGIN", std::string("relay\0pa:ss", 11));
    });
    ASSERT_FALSE(error);
    EXPECT_EQ(xoauth2.code, 535);
    EXPECT_EQ(oauthbearer.code, 535);
    EXPECT_EQ(login.code, 235);
    EXPECT_EQ(server.lines, (std::vector<std::string>{
        "EHLO relay.test",
        "AUTH XOAUTH2 dXNlcj1zb21lb25lQGV4YW1wbGUuY29tAWF1dGg9QmVhcmVyIHQwazNuLmFiYwEB", "",
        "AUTH OAUTHBEARER bixhPXNvbWVvbmVAZXhhbXBsZS5jb20sAWF1dGg9QmVhcmVyIHQwazNuLmFiYwEB", "AQ==",
        "AUTH LOGIN", "cmVsYXk=", "cGE6c3M="}));
}

TEST(UpstreamSession, SilentServerTimesOutAndSessionIsUnusable) {
    asio::io_context io;
    fake::SmtpServer server(io);
    server.silent = true;
    auto options = plain_options(server.port());
    options.command_timeout = std::chrono::seconds(1);
    bool usable = true;
    auto started = std::chrono::steady_clock::now();
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), nullptr, options);
        try {
            co_await session.connect();
        } catch (...) {
            usable = session.usable();
            throw;
        }
    });
    auto elapsed = std::chrono::steady_clock::now() - started;
    auto e = caught<UpstreamError>(error);
    EXPECT_EQ(e.stage(), Stage::greeting);
    EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
    EXPECT_TRUE(e.temporary());
    EXPECT_FALSE(usable);
    EXPECT_GE(elapsed, std::chrono::milliseconds(900));
    EXPECT_LT(elapsed, std::chrono::seconds(4));
}

TEST(UpstreamSession, NoReplyAfterDataTimesOutInDataStage) {
    asio::io_context io;
    fake::SmtpServer server(io);
    server.data_reply = "";
    const Envelope one = envelope({"a@example.com"});
    auto options = plain_options(server.port());
    options.data_timeout = std::chrono::seconds(1);
    StringBody body("hello\r\n");
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), nullptr, options);
        co_await session.connect();
        co_await session.send(one, 7, body);
    });
    EXPECT_EQ(caught<UpstreamError>(error).stage(), Stage::data);
    EXPECT_EQ(server.data.size(), 1u);
}

TEST(UpstreamSession, BodyReadFailureAbortsWithoutTerminator) {
    asio::io_context io;
    fake::SmtpServer server(io);
    StringBody body("hello\r\n");
    body.fail_ = true;
    const Envelope one = envelope({"a@example.com"});
    bool usable = true;
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), nullptr, plain_options(server.port()));
        co_await session.connect();
        try {
            co_await session.send(one, 7, body);
        } catch (...) {
            usable = session.usable();
            throw;
        }
    });
    EXPECT_THROW(std::rethrow_exception(error), std::system_error);
    EXPECT_FALSE(usable);
    EXPECT_TRUE(server.data.empty());
}

TEST(UpstreamSession, RejectingGreetingIsPermanentAndQuits) {
    asio::io_context io;
    fake::SmtpServer server(io);
    server.greeting = "554 5.7.1 No SMTP service here\r\n";
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), nullptr, plain_options(server.port()));
        co_await session.connect();
    });
    auto e = caught<UpstreamError>(error);
    EXPECT_EQ(e.stage(), Stage::greeting);
    ASSERT_TRUE(e.reply());
    EXPECT_EQ(e.reply()->code, 554);
    EXPECT_FALSE(e.temporary());
    EXPECT_EQ(server.lines, std::vector<std::string>{"QUIT"});
}

TEST(UpstreamSession, StarttlsRequiredButNotOffered) {
    asio::io_context io;
    fake::SmtpServer server(io);  // no TLS context: EHLO lacks STARTTLS
    auto options = plain_options(server.port());
    options.tls = relay::conf::UpstreamTls::starttls;
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), relay::make_upstream_tls_context({}), options);
        co_await session.connect();
    });
    auto e = caught<UpstreamError>(error);
    EXPECT_EQ(e.stage(), Stage::tls);
    EXPECT_NE(std::string(e.what()).find("does not offer STARTTLS"), std::string::npos);
}

// --- STARTTLS with certificate verification -------------------------------------------------

namespace {

class TempCaFile {
public:
    explicit TempCaFile(const std::string& pem) {
        static int counter = 0;
        path_ = std::filesystem::temp_directory_path() /
                ("upstream_test_ca_" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + ".pem");
        std::ofstream(path_) << pem;
    }
    ~TempCaFile() { std::filesystem::remove(path_); }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

std::string lower(std::string text) {  // OpenSSL versions differ in the case of their messages
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

struct TlsOutcome {
    std::exception_ptr error;
    std::vector<std::string> capabilities;
    std::vector<std::string> server_lines;
    bool server_tls = false;
};

TlsOutcome starttls(const fake::TestCert& served, const std::string& trusted_pem, const std::string& host,
                    std::string starttls_reply = "220 2.0.0 go ahead\r\n") {
    asio::io_context io;
    fake::SmtpServer server(io, fake::server_context(served));
    server.starttls_reply = std::move(starttls_reply);
    TempCaFile ca(trusted_pem);
    auto options = plain_options(server.port());
    options.server.host = host;
    options.tls = relay::conf::UpstreamTls::starttls;
    TlsOutcome outcome;
    StringBody body(".over tls\r\n");
    const Envelope one = envelope({"a@example.com"});
    outcome.error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), relay::make_upstream_tls_context(ca.path()), options);
        co_await session.connect();
        outcome.capabilities = session.capabilities().lines;
        auto reply = co_await session.authenticate("XOAUTH2", "user=a\x01" "auth=Bearer x\x01\x01");
        EXPECT_EQ(reply.code, 235);
        auto result = co_await session.send(one, 11, body);
        EXPECT_EQ(result.final_reply.code, 250);
        co_await session.quit();
    });
    outcome.server_lines = server.lines;
    outcome.server_tls = server.tls_done;
    return outcome;
}

}  // namespace

TEST(UpstreamSessionTls, VerifiedByNameAndByIpAddress) {
    auto cert = fake::make_self_signed("localhost", "DNS:localhost,IP:127.0.0.1");
    for (const char* host : {"localhost", "127.0.0.1"}) {
        auto outcome = starttls(cert, cert.cert_pem, host);
        ASSERT_FALSE(outcome.error) << host << ": " << message(outcome.error);
        EXPECT_TRUE(outcome.server_tls);
        EXPECT_EQ(outcome.capabilities.back(), "AUTH LOGIN XOAUTH2");  // the EHLO after TLS
        EXPECT_EQ(outcome.server_lines.back(), "QUIT");
    }
}

TEST(UpstreamSessionTls, UntrustedCertificateFails) {
    auto served = fake::make_self_signed("localhost", "DNS:localhost,IP:127.0.0.1");
    auto other = fake::make_self_signed("some other ca", "DNS:ca.example");
    auto outcome = starttls(served, other.cert_pem, "127.0.0.1");
    auto e = caught<UpstreamError>(outcome.error);
    EXPECT_EQ(e.stage(), Stage::tls);
    EXPECT_NE(std::string(e.what()).find("certificate verify failed: "), std::string::npos) << e.what();
    EXPECT_EQ(std::find(outcome.server_lines.begin(), outcome.server_lines.end(), "MAIL FROM:<sender@example.com>"),
              outcome.server_lines.end());
}

TEST(UpstreamSessionTls, HostNameAndIpMismatchFail) {
    auto cert = fake::make_self_signed("mail.example", "DNS:mail.example");
    auto by_name = starttls(cert, cert.cert_pem, "localhost");
    auto name_error = caught<UpstreamError>(by_name.error);
    EXPECT_EQ(name_error.stage(), Stage::tls);
    EXPECT_NE(lower(name_error.what()).find("certificate verify failed: hostname mismatch"), std::string::npos)
        << name_error.what();
    auto by_ip = starttls(cert, cert.cert_pem, "127.0.0.1");
    auto ip_error = caught<UpstreamError>(by_ip.error);
    EXPECT_EQ(ip_error.stage(), Stage::tls);
    EXPECT_NE(lower(ip_error.what()).find("certificate verify failed: ip address mismatch"), std::string::npos)
        << ip_error.what();
}

TEST(UpstreamSessionTls, PlaintextInjectedBeforeHandshakeIsDiscarded) {
    // CVE-2011-0411 pattern: a reply smuggled behind the 220 must not answer the EHLO sent over TLS.
    auto cert = fake::make_self_signed("localhost", "DNS:localhost,IP:127.0.0.1");
    auto outcome = starttls(cert, cert.cert_pem, "localhost", "220 2.0.0 go ahead\r\n250 injected\r\n");
    ASSERT_FALSE(outcome.error) << message(outcome.error);
    EXPECT_EQ(outcome.capabilities.back(), "AUTH LOGIN XOAUTH2");
}

TEST(UpstreamSessionTls, ImplicitTlsAndADeadlineOnATlsRead) {
    auto cert = fake::make_self_signed("localhost", "DNS:localhost,IP:127.0.0.1");
    TempCaFile ca(cert.cert_pem);
    asio::io_context io;
    fake::SmtpServer server(io, fake::server_context(cert));
    server.implicit_tls = true;
    server.data_reply = "";  // never answers the end of data: the TLS read must time out
    auto options = plain_options(server.port());
    options.tls = relay::conf::UpstreamTls::implicit;
    options.data_timeout = std::chrono::seconds(1);
    const Envelope one = envelope({"a@example.com"});
    StringBody body("hi\r\n");
    std::vector<std::string> capabilities;
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), relay::make_upstream_tls_context(ca.path()), options);
        co_await session.connect();
        capabilities = session.capabilities().lines;
        co_await session.send(one, 4, body);
    });
    EXPECT_EQ(caught<UpstreamError>(error).stage(), Stage::data) << message(error);
    EXPECT_EQ(capabilities.back(), "AUTH LOGIN XOAUTH2");
    ASSERT_EQ(server.data.size(), 1u);
    EXPECT_EQ(server.data[0], "hi\r\n.\r\n");
}

TEST(UpstreamSession, LineBreaksInAddressesAreRefusedBeforeAnyByteIsSent) {
    asio::io_context io;
    fake::SmtpServer server(io);
    const Envelope smuggling = envelope({"a@example.com>\r\nRCPT TO:<b@example.com"});
    StringBody body("x\r\n");
    auto error = run(io, [&]() -> asio::awaitable<void> {
        UpstreamSession session(io.get_executor(), nullptr, plain_options(server.port()));
        co_await session.connect();
        co_await session.send(smuggling, 3, body);
    });
    EXPECT_THROW(std::rethrow_exception(error), std::invalid_argument);
    EXPECT_EQ(server.lines, std::vector<std::string>{"EHLO relay.test"});
}
