// The state behind smtp::ServerSession, shared by the files that implement it: server_session.cpp
// (the verb table, command framing, the public face), session_commands.cpp (the command handlers and
// the DATA body) and session_auth.cpp (AUTH, RFC 4954). Internal to relay/smtp: nothing else
// includes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <openssl/crypto.h>

#include "relay/smtp/replies.hpp"
#include "relay/smtp/server_session.hpp"

namespace relay::smtp {

enum class Stage : int {
    need_helo,            // after connect and after STARTTLS (RFC 3207 4.2)
    ready,                // EHLO/HELO seen; a transaction may or may not be open
    auth_plain,           // sent replies::kAuthPlainChallenge, waiting for the PLAIN response
    auth_login_user,      // sent replies::kAuthUsernameChallenge (Username:)
    auth_login_password,  // sent replies::kAuthPasswordChallenge (Password:)
    data,                 // receiving the body
    awaiting_commit,      // body complete; the I/O layer is making it durable
    awaiting_credentials, // AUTH needs the slow password check; the I/O layer runs it off-thread
};

inline char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

inline bool equals_nocase(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (upper(a[i]) != upper(b[i])) return false;
    return true;
}

// Secrets are wiped before their memory is released (OPENSSL_cleanse is not optimised away).
struct WipedString {
    std::string value;
    ~WipedString() {
        if (!value.empty()) OPENSSL_cleanse(value.data(), value.size());
    }
};

struct ServerSession::State {
    SessionPolicy policy;
    SessionHooks& hooks;
    MessageSink& sink;
    std::string client_address;

    Stage stage = Stage::need_helo;
    bool tls_active = false;
    std::string helo;
    bool esmtp = false;              // EHLO (not HELO) began the session: the Received header says so
    bool authenticated = false;
    std::string user;
    std::string user_account;
    WipedString login_user;          // AUTH LOGIN: the name, between the two 334s
    std::string pending_user;        // AUTH waiting for the slow check (Stage::awaiting_credentials)
    WipedString pending_password;

    struct Transaction {
        bool open = false;           // MAIL accepted
        bool rcpt_attempted = false;
        Envelope envelope;
        std::optional<DataDecoder> decoder;
        bool sink_failed = false;    // MessageSink threw; answered with 451 at end of data
        std::uint64_t max_size = 0;  // the routed account's limit when below max_size(); 0: none
    } tx;

    // What the refusal log line says about the command being answered (SessionHooks::refused).
    struct CommandContext {
        std::string verb;                    // upper-cased, at most 16 bytes; "END-OF-DATA" after the body
        std::optional<std::string> from;     // a sender this command named (MAIL), before tx has it
        std::string to;                      // RCPT's recipient; the recipients at END-OF-DATA
        std::string argument;                // a MAIL/RCPT argument that did not parse (at most 256 bytes)
    } current;

    std::size_t errors = 0;
    bool closed = false;
    bool skipping_long_line = false;
    bool after_bare_lf = false;      // a strict client's line was cut by a bare LF; its rest is refused too
    bool more_follows = false;       // bytes follow the command line being handled
    Step* step = nullptr;            // the feed() in progress

    State(SessionPolicy p, SessionHooks& h, MessageSink& s, std::string address)
        : policy(std::move(p)), hooks(h), sink(s), client_address(std::move(address)),
          tls_active(policy.tls_active) {}

    // The one size limit: advertised in EHLO (RFC 1870), checked at MAIL SIZE= and enforced on the body.
    std::uint64_t max_size() const { return policy.max_message_size; }
    bool auth_allowed_here() const { return tls_active || policy.plaintext_auth_allowed; }

    // Appends one reply line. Client-caused 4xx/5xx replies count toward max_errors (Postfix's
    // hard error limit), which ends the session with 421 4.7.0.
    void reply(std::string_view line) {
        step->replies.append(line);
        step->replies.append("\r\n");
        if (line[0] != '4' && line[0] != '5') return;
        refused(line);
        if (++errors >= policy.max_errors && !closed) {
            hooks.note("too_many_errors", "client=" + client_address);
            const std::string last = replies::too_many_errors(policy.hostname);
            step->replies.append(last).append("\r\n");
            refused(last);
            close();
        }
    }
    // Tells the hooks about a 4xx/5xx reply (see SessionHooks::Refusal); reply() calls it.
    void refused(std::string_view line) {
        std::optional<std::string_view> from = current.from;
        if (!from && tx.open) from = tx.envelope.mail_from;
        hooks.refused({current.verb, line, helo, from, current.to, current.argument});
    }
    void close() {
        closed = true;
        step->next = Next::close;
    }
    void reset_transaction() { tx = Transaction{}; }

    // ---- the verb table -------------------------------------------------------------------
    enum Flag : unsigned {
        needs_helo = 1,         // 503 before EHLO/HELO
        no_transaction = 2,     // 503 while a MAIL transaction is open
        last_in_group = 4,      // RFC 2920 3.1: nothing may follow it in the same read
    };
    struct Verb {
        std::string_view name;
        void (State::*handler)(std::string_view argument);
        unsigned flags;
    };
    static const Verb* find_verb(std::string_view name);

    void command_line(std::string_view line);
    void pipelining_violation(std::string_view verb);   // 554 5.5.0, logged, and the connection closed

    // ---- handlers -------------------------------------------------------------------------
    void greet(std::string_view argument);
    void ehlo(std::string_view argument);
    void helo_command(std::string_view argument);
    void mail(std::string_view argument);
    void rcpt(std::string_view argument);
    void data(std::string_view argument);
    void rset(std::string_view);
    void noop(std::string_view);
    void quit(std::string_view);
    void vrfy(std::string_view argument);
    void expn(std::string_view);
    void help(std::string_view);
    void starttls(std::string_view argument);

    // ---- AUTH (RFC 4954) ------------------------------------------------------------------
    void auth(std::string_view argument);
    void auth_line(std::string_view line);
    void auth_response(std::string_view base64, Stage at);
    void check_credentials(std::string_view name, std::string_view password);
    void credentials_checked(std::string_view name, SessionHooks::AuthResult result);
    void check_failed(std::string_view name);

    bool in_auth_exchange() const {
        return stage == Stage::auth_plain || stage == Stage::auth_login_user || stage == Stage::auth_login_password;
    }

    // ---- DATA -----------------------------------------------------------------------------
    struct SinkWriter;   // the DATA body into the MessageSink (session_commands.cpp)

    std::size_t body(std::string_view input);

    // ---- framing of command lines ---------------------------------------------------------
    // Command lines end with CRLF (RFC 5321 2.3.8); a bare LF ends one only for a lenient client
    // and is refused at once for others. Over-long lines are consumed and answered once at their
    // end, so a client cannot make the I/O layer buffer without bound.
    std::size_t line_limit(std::string_view pending) const {
        if (in_auth_exchange()) return policy.max_auth_line;
        if (pending.size() >= 5 && equals_nocase(pending.substr(0, 5), "AUTH ")) return policy.max_auth_line;
        return policy.max_command_line;
    }

    void run(std::string_view input);
};

}  // namespace relay::smtp
