// UpstreamSession's STARTTLS and implicit TLS against the scripted server (fake_smtp_server.hpp) with
// certificates made on the fly: verified by name and by IP address, an untrusted CA, name and IP
// mismatches, plaintext injected before the handshake, and a deadline on a TLS read.
#include "upstream_session_harness.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "relay/delivery/upstream_session.hpp"

namespace asio = boost::asio;
using relay::Envelope;
using relay::UpstreamError;
using relay::UpstreamSession;
using Stage = relay::UpstreamError::Stage;
using namespace upstream_testing;

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
