// UpstreamSession against a scripted SMTP server on 127.0.0.1 (fake_smtp_server.hpp): pipelining
// order, partial and total RCPT rejection, MAIL rejection with RSET, exact dot-stuffed bytes on the
// wire, AUTH challenge handling, deadlines, and refusals before any byte is sent. STARTTLS and
// implicit TLS: test_upstream_session_tls.cpp; the shared helpers: upstream_session_harness.hpp.
#include "upstream_session_harness.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "relay/delivery/upstream_session.hpp"

namespace asio = boost::asio;
using relay::Envelope;
using relay::TransactionResult;
using relay::UpstreamError;
using relay::UpstreamSession;
using Stage = relay::UpstreamError::Stage;
using namespace upstream_testing;

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
