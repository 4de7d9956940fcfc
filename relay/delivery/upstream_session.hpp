// One SMTP client connection to the upstream provider: connect, EHLO, STARTTLS with verified chain
// and hostname, EHLO again, AUTH, then any number of MAIL/RCPT/DATA transactions on the same
// authenticated session. Protocol bytes go through the pure ReplyParser and DotStuffer; this file
// only moves them over Asio. Every network step has a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "conf/config.hpp"
#include "relay/core/body_reader.hpp"
#include "relay/core/envelope.hpp"
#include "relay/smtp/reply.hpp"

namespace relay {

struct UpstreamOptions {
    conf::HostPort server;
    conf::UpstreamTls tls = conf::UpstreamTls::starttls;
    std::string helo_name = "localhost";
    std::chrono::seconds connect_timeout{30};
    std::chrono::seconds command_timeout{120};   // per reply
    std::chrono::seconds data_timeout{600};      // final reply after the body
};

// Trust store for one account: system CAs plus `extra_ca_file` (may be empty); TLS 1.2 or newer;
// peer verification on. Throws std::runtime_error naming the file when it cannot be loaded.
std::shared_ptr<boost::asio::ssl::context> make_upstream_tls_context(const std::filesystem::path& extra_ca_file);

// A failure before or outside a transaction's final reply.
class UpstreamError : public std::runtime_error {
public:
    enum class Stage { connect, tls, greeting, ehlo, auth, mail, rcpt, data, io };
    UpstreamError(Stage stage, std::string message, std::optional<smtp::Reply> reply = std::nullopt);
    Stage stage() const { return stage_; }
    const std::optional<smtp::Reply>& reply() const { return reply_; }
    // True unless the upstream gave a 5xx reply: network trouble and 4xx are worth retrying.
    bool temporary() const;

private:
    Stage stage_;
    std::optional<smtp::Reply> reply_;
};

struct TransactionResult {
    smtp::Reply final_reply;    // the reply after end of data, or the failing MAIL reply / last RCPT reply
    std::vector<std::string> accepted;                          // recipients the upstream took
    std::vector<std::pair<std::string, smtp::Reply>> rejected;  // recipients refused at RCPT
    bool data_sent = false;     // false when MAIL failed or every RCPT was refused
};

class UpstreamSession {
public:
    UpstreamSession(boost::asio::any_io_executor executor,
                    std::shared_ptr<boost::asio::ssl::context> tls_context, UpstreamOptions options);
    ~UpstreamSession();

    // TCP connect, greeting, EHLO, STARTTLS + verification + EHLO (or implicit TLS). Throws UpstreamError.
    boost::asio::awaitable<void> connect();

    // AUTH with `mechanism` ("XOAUTH2", "OAUTHBEARER", "PLAIN", "LOGIN") and the raw client response
    // (not base64), sent as an initial response. For LOGIN, `response` is "user\0password".
    // Handles a 334 error challenge (Google/RFC 7628) by answering as the mechanism requires.
    // Returns the final reply (235 on success); throws UpstreamError only for I/O failures.
    boost::asio::awaitable<smtp::Reply> authenticate(std::string mechanism, std::string response);

    // One mail transaction: MAIL FROM, RCPT TO for each recipient, DATA, the dot-stuffed body and
    // the final reply. Uses PIPELINING for MAIL/RCPT when offered. SIZE= is sent when offered.
    // On a negative MAIL/RCPT outcome the transaction is reset with RSET and the session stays usable.
    // Throws UpstreamError for I/O failures (the session is then unusable).
    boost::asio::awaitable<TransactionResult> send(const Envelope& envelope, std::uint64_t size,
                                                   BodyReader& body);

    // QUIT and close, ignoring errors.
    boost::asio::awaitable<void> quit();

    // Connected and not broken by an I/O error or timeout.
    bool usable() const;
    // EHLO keywords after TLS (e.g. "AUTH LOGIN XOAUTH2"), for `check` diagnostics.
    const smtp::Reply& capabilities() const;
    // The negotiated protocol ("TLSv1.3"), or "" when the session runs without TLS; for `check`.
    std::string tls_version() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace relay
