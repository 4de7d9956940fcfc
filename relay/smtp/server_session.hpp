// The server side of one SMTP connection as a pure state machine (RFC 5321, 4954, 2920, 3463).
// Bytes from the client go in through feed(); reply bytes and the next thing the I/O layer must do
// come out. No sockets, no clocks, no files: the Asio layer only moves bytes, the spool receives the
// decoded body through MessageSink, and account/password decisions come from SessionHooks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "relay/smtp/data_decoder.hpp"
#include "relay/core/envelope.hpp"

namespace relay::smtp {

struct SessionPolicy {
    std::string hostname = "localhost";     // in the greeting and EHLO reply
    std::uint64_t max_message_size = 36700160;
    bool require_auth = false;              // every client must AUTH before MAIL
    bool auth_offered = true;               // false when no [[users]] exist
    bool starttls_offered = false;          // a TLS context exists for this listener
    bool tls_active = false;                // implicit-TLS listener: already encrypted
    bool plaintext_auth_allowed = true;     // AUTH without TLS (loopback or explicit opt-in)
    // The client is trusted to be sloppy, not hostile (the I/O layer decides: lenient_networks).
    // It gets: bare-LF command lines, MAIL/RCPT paths without angle brackets, bare CR/LF in the
    // body made CRLF, text lines up to kLenientMaxLineLength. Never: an end of data other than
    // CRLF "." CRLF, NUL bytes, or any change to what reaches the upstream beyond line ends.
    bool lenient = false;
    std::size_t max_command_line = 512;     // RFC 5321 4.5.3.1.4, including CRLF
    std::size_t max_auth_line = 12288;      // AUTH lines carry base64 and may be longer
    std::size_t max_recipients = 1000;
    std::size_t max_errors = 20;            // then 421 4.7.0 and close
    DataLimits data;                        // body framing; its max_message_size is replaced by the one above
};

// Decisions that need configuration or other state, injected so the machine stays pure.
class SessionHooks {
public:
    virtual ~SessionHooks() = default;

    struct AuthResult {
        bool ok = false;
        std::string account{};  // the user's upstream account when ok
        bool needs_slow_check = false;  // only authenticate_slow() can tell (a password hash KDF)
        std::string refusal{};  // not checked at all (lockout, too many checks running): this reply line
    };
    // Checks a local user's password (AUTH PLAIN/LOGIN), cheaply: on the I/O thread.
    virtual AuthResult authenticate(std::string_view user, std::string_view password) = 0;
    // The expensive check authenticate() asked for; runs on a worker thread, so it must only read
    // immutable state (the config snapshot) or lock what it shares.
    virtual AuthResult authenticate_slow(std::string_view user, std::string_view password) { return {}; }

    struct RouteResult {
        bool ok = false;
        std::string account;    // when ok
        std::string reply;      // full reply line without CRLF when !ok, e.g. "530 5.7.0 Authentication required"
        // The account's own size limit when it is below the relay's (a Microsoft Graph account
        // carries at most ~3 MiB); 0: the relay's. Checked at MAIL SIZE= and at end of data.
        std::uint64_t max_message_size = 0;
    };
    // Chooses the upstream account at MAIL FROM. `user` is empty for unauthenticated clients;
    // `user_account` is the account of the authenticated user.
    virtual RouteResult route(std::string_view user, std::string_view user_account,
                              std::string_view mail_from) = 0;

    // The SIZE to advertise in EHLO (RFC 1870) for a client with this (possibly empty) account:
    // the largest message any route open to it can carry; 0: the policy's max_message_size.
    virtual std::uint64_t size_limit(std::string_view user_account) { return 0; }

    // A noteworthy protocol event for the log (auth failure, protocol violation, ...).
    // `what` is a short event name, `detail` free text without secrets.
    virtual void note(std::string_view what, std::string_view detail) {}

    // One refused command, for the log (Postfix's "NOQUEUE: reject" line): every 4xx/5xx reply the
    // session gives a client except 452 for recipients beyond max_recipients (flow control the
    // client must handle, not a refusal). At most one call per reply, so max_errors bounds a
    // session's lines. Views are valid during the call only; never carries AUTH data.
    struct Refusal {
        std::string_view command{};    // "MAIL", "RCPT", "END-OF-DATA", "AUTH", ...; empty: a broken line
        std::string_view reply{};      // the reply line without CRLF
        std::string_view helo{};       // empty before EHLO/HELO
        std::optional<std::string_view> from{};   // the sender once known ("" is the null sender)
        std::string_view to{};         // the refused recipient, or the message's recipients at END-OF-DATA
        std::string_view argument{};   // a MAIL/RCPT argument that did not parse, else empty
    };
    virtual void refused(const Refusal& refusal) {}

    // Consulted when a client starts AUTH: a full reply line without CRLF (e.g. "454 4.7.0 ...")
    // refuses it, empty allows it. The I/O layer's brute-force lockout answers here.
    virtual std::string auth_refusal() { return {}; }
};

// Receives the decoded body of the current message (dot-unstuffed, CRLF line ends).
class MessageSink {
public:
    virtual ~MessageSink() = default;
    // DATA was accepted (354 sent); `envelope` is complete.
    virtual void message_begin(const Envelope& envelope) = 0;
    virtual void message_data(std::string_view bytes) = 0;
    // The message will not be committed (sticky DATA error, RSET during data is impossible,
    // connection lost): discard what was written.
    virtual void message_abort() = 0;
};

class ServerSession {
public:
    enum class Next {
        read_more,       // write `replies`, then read more bytes and feed them
        start_tls,       // write `replies` (the 220), discard unread input, handshake, call tls_started()
        commit_message,  // write `replies` (may be empty), make the message durable, call commit_finished()
        verify_credentials,  // write `replies`, run hooks.authenticate_slow(pending_credentials()) off the
                             // I/O thread, then feed its result to credentials_verified()
        close,           // write `replies`, then close the connection
    };
    struct Step {
        std::size_t consumed = 0;   // bytes of the input that were used; feed the rest again later
        std::string replies;        // reply bytes to send, in order, possibly several lines
        Next next = Next::read_more;
    };

    ServerSession(SessionPolicy policy, SessionHooks& hooks, MessageSink& sink, std::string client_address);
    ~ServerSession();
    ServerSession(ServerSession&&) noexcept;
    ServerSession& operator=(ServerSession&&) noexcept;

    // The 220 greeting.
    std::string greeting() const;

    // Processes as much of `input` as forms complete commands (or body bytes during DATA).
    // Stops early after a command that needs the I/O layer (STARTTLS, end of data, QUIT, fatal error).
    // Input that remains unconsumed is an incomplete line; feed it again with more bytes appended.
    Step feed(std::string_view input);

    // After Next::start_tls: the handshake succeeded; the session resets to the pre-EHLO state.
    void tls_started();

    // After Next::commit_message: the message is durable under `queue_id` (or failed with
    // `error_reply`, a full reply line without CRLF, e.g. "451 4.3.0 Error: queue file write error").
    // Returns the reply to send, CRLF included.
    std::string commit_finished(const std::optional<std::string>& queue_id,
                                std::string_view error_reply = {});

    // After Next::verify_credentials: the user and password to check (the password is wiped from
    // the session once credentials_verified() is called).
    std::pair<std::string, std::string> pending_credentials() const;
    // The slow check's verdict; returns the reply (235, or 535 and maybe a close after too many errors).
    Step credentials_verified(SessionHooks::AuthResult result);

    // Reply (CRLF included) for an idle/command timeout detected by the I/O layer: "421 4.4.2 ...".
    std::string timeout_reply() const;
    // Reply (CRLF included) when the server is shutting down: "421 4.3.2 ... shutting down".
    std::string shutdown_reply() const;

    bool in_data() const;           // body bytes are being received
    bool authenticated() const;
    std::size_t errors() const;     // client errors so far (toward max_errors); the I/O layer tarpits on it
    const Envelope& envelope() const;

private:
    struct State;
    std::unique_ptr<State> state_;  // pimpl keeps the header independent of the tables
};

}  // namespace relay::smtp
