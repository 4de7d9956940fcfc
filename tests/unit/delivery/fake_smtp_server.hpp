// A scripted SMTP server for the upstream client tests: one connection on 127.0.0.1, default
// replies that a test overrides per command, optional STARTTLS with a certificate made on the fly
// (OpenSSL APIs, no files but the CA one), and a record of every line and DATA section received
// so tests can assert the exact bytes on the wire. Replies can be held back until a chosen line
// arrives, which makes the pipelining test deterministic: a client that waited for the MAIL reply
// before sending RCPT would never get it.
#pragma once

#include <utility>  // GCC 12 needs it before the Asio headers that pull in awaitable

#include <array>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace fake {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct TestCert {
    std::string cert_pem;
    std::string key_pem;
};

// A self-signed P-256 certificate with CN `common_name` and subjectAltName `san`
// (e.g. "DNS:localhost,IP:127.0.0.1"), valid from a minute ago for an hour.
inline TestCert make_self_signed(const std::string& common_name, const std::string& san) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    if (!key || !cert) throw std::runtime_error("OpenSSL key/cert allocation failed");
    X509_set_version(cert, 2);
    static long serial = 1000;
    ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    if (!ext) throw std::runtime_error("bad subjectAltName " + san);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    if (!X509_sign(cert, key, EVP_sha256())) throw std::runtime_error("X509_sign failed");

    auto to_pem = [](auto write) {
        BIO* bio = BIO_new(BIO_s_mem());
        write(bio);
        char* data = nullptr;
        long len = BIO_get_mem_data(bio, &data);
        std::string pem(data, static_cast<std::size_t>(len));
        BIO_free(bio);
        return pem;
    };
    TestCert out{to_pem([&](BIO* b) { PEM_write_bio_X509(b, cert); }),
                 to_pem([&](BIO* b) { PEM_write_bio_PrivateKey(b, key, nullptr, nullptr, 0, nullptr, nullptr); })};
    X509_free(cert);
    EVP_PKEY_free(key);
    return out;
}

inline std::shared_ptr<asio::ssl::context> server_context(const TestCert& cert) {
    auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    context->use_certificate_chain(asio::buffer(cert.cert_pem));
    context->use_private_key(asio::buffer(cert.key_pem), asio::ssl::context::pem);
    return context;
}

class SmtpServer {
public:
    explicit SmtpServer(asio::io_context& io, std::shared_ptr<asio::ssl::context> tls = nullptr)
        : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          tls_(tls ? tls : std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server)),
          offers_starttls_(static_cast<bool>(tls)) {
        asio::co_spawn(io, run(), [this](std::exception_ptr e) {
            if (e) try { std::rethrow_exception(e); } catch (const std::exception& x) { error = x.what(); }
        });
    }

    std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

    // Script. `respond` may return "" to fall back to the default reply for that line.
    std::string greeting = "220 fake.example ESMTP\r\n";
    std::string ehlo_reply = "250-fake.example\r\n250-PIPELINING\r\n250-SIZE 1000000\r\n250 8BITMIME\r\n";
    std::string ehlo_reply_after_tls = "250-fake.example\r\n250-PIPELINING\r\n250 AUTH LOGIN XOAUTH2\r\n";
    std::string starttls_reply = "220 2.0.0 go ahead\r\n";
    std::string data_reply = "250 2.0.0 Ok queued\r\n";  // "" = never answer the end of data
    std::function<std::string(const std::string&)> respond;
    std::function<bool(const std::string&)> flush_after = [](const std::string&) { return true; };
    bool silent = false;  // accept, then say nothing at all
    bool implicit_tls = false;  // handshake right after accept (port 465 style)

    // Record.
    std::vector<std::string> lines;   // command lines without CRLF
    std::vector<std::string> data;    // DATA sections as sent, terminator included
    bool tls_done = false;
    std::string error;

private:
    std::string default_reply(const std::string& line) const {
        std::string verb = line.substr(0, line.find(' '));
        for (char& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (verb == "EHLO") {
            if (tls_done) return ehlo_reply_after_tls;
            if (!offers_starttls_) return ehlo_reply;
            std::string reply = ehlo_reply;   // the first line is the server's name (RFC 5321 4.1.1.1)
            reply.insert(reply.find("\r\n") + 2, "250-STARTTLS\r\n");
            if (reply.starts_with("250 ")) reply[3] = '-';
            return reply;
        }
        if (verb == "HELO") return "250 fake.example\r\n";
        if (verb == "STARTTLS") return starttls_reply;
        if (verb == "MAIL") return "250 2.1.0 Ok\r\n";
        if (verb == "RCPT") return "250 2.1.5 Ok\r\n";
        if (verb == "DATA") return "354 End data with <CR><LF>.<CR><LF>\r\n";
        if (verb == "RSET") return "250 2.0.0 Ok\r\n";
        if (verb == "AUTH") return "235 2.7.0 Authentication successful\r\n";
        if (verb == "QUIT") return "221 2.0.0 Bye\r\n";
        return "500 5.5.2 Error: command not recognized\r\n";
    }

    asio::awaitable<void> run() {
        constexpr auto token = asio::as_tuple(asio::use_awaitable);
        auto [accept_ec, socket] = co_await acceptor_.async_accept(token);
        if (accept_ec) co_return;
        asio::ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
        if (implicit_tls) {  // RFC 8314 3.3: TLS first, then the greeting
            auto [hs_ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, token);
            if (hs_ec) co_return;
            tls_done = true;
        }
        auto write = [&](const std::string& bytes) {
            return tls_done ? asio::async_write(stream, asio::buffer(bytes), token)
                            : asio::async_write(stream.next_layer(), asio::buffer(bytes), token);
        };
        std::string in, pending, out;
        // Named buffers around co_await, no temporaries: GCC 12 miscompiles some of those.
        auto flush = [&] {
            out = std::exchange(pending, {});
            return write(out);
        };
        std::array<char, 8192> buffer;
        if (!silent) co_await write(greeting);
        bool in_data = false;
        while (true) {
            std::tuple<boost::system::error_code, std::size_t> got;
            if (tls_done)
                got = co_await stream.async_read_some(asio::buffer(buffer), token);
            else
                got = co_await stream.next_layer().async_read_some(asio::buffer(buffer), token);
            auto [ec, n] = got;
            if (ec) co_return;  // the client closed
            if (silent) continue;
            in.append(buffer.data(), n);
            while (true) {
                if (in_data) {
                    std::string probe = "\r\n" + in;
                    std::size_t end = probe.find("\r\n.\r\n");
                    if (end == std::string::npos) break;
                    data.push_back(in.substr(0, end + 3));
                    in.erase(0, end + 3);
                    in_data = false;
                    pending += data_reply;
                    if (!pending.empty()) co_await flush();
                    continue;
                }
                std::size_t crlf = in.find("\r\n");
                if (crlf == std::string::npos) break;
                std::string line = in.substr(0, crlf);
                in.erase(0, crlf + 2);
                lines.push_back(line);
                std::string reply = respond ? respond(line) : "";
                if (reply.empty()) reply = default_reply(line);
                pending += reply;
                if (line == "DATA" && reply.starts_with("354")) in_data = true;
                if (line == "STARTTLS" && reply.starts_with("220")) {
                    co_await flush();
                    in.clear();
                    auto [hs_ec] = co_await stream.async_handshake(asio::ssl::stream_base::server, token);
                    if (hs_ec) co_return;  // the client refused our certificate
                    tls_done = true;
                    continue;
                }
                if (line == "QUIT") {
                    co_await flush();
                    co_return;
                }
                if (flush_after(line)) co_await flush();
            }
        }
    }

    tcp::acceptor acceptor_;
    std::shared_ptr<asio::ssl::context> tls_;
    bool offers_starttls_;
};

}  // namespace fake
