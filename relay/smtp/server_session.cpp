// The server side of one SMTP connection (RFC 5321) as a pure state machine, in the manner of
// Postfix smtpd and OpenSMTPD: one table of verbs with flags, an explicit session stage, one
// transaction struct, DATA errors sticky until the end of data. Extensions: PIPELINING with the
// RFC 2920 3.1 "last in group" rule enforced, SIZE (RFC 1870), 8BITMIME (RFC 6152), AUTH PLAIN/LOGIN
// (RFC 4954, 4616), STARTTLS (RFC 3207), ENHANCEDSTATUSCODES (RFC 2034, 3463): every 2xx/4xx/5xx
// reply except the greeting and EHLO/HELO carries an enhanced code (relay/smtp/replies.hpp).
// This file: the verb table, command framing and the public face; the handlers are in
// session_commands.cpp and session_auth.cpp, the shared state in session_state.hpp.
#include "relay/smtp/server_session.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

#include <openssl/crypto.h>

#include "relay/smtp/command.hpp"
#include "relay/smtp/replies.hpp"
#include "relay/smtp/session_state.hpp"

namespace relay::smtp {

const ServerSession::State::Verb* ServerSession::State::find_verb(std::string_view name) {
    static constexpr std::array<Verb, 13> verbs{{
        {"EHLO", &State::ehlo, last_in_group},
        {"HELO", &State::helo_command, last_in_group},
        {"MAIL", &State::mail, needs_helo | no_transaction},
        {"RCPT", &State::rcpt, needs_helo},
        {"DATA", &State::data, needs_helo | last_in_group},
        {"RSET", &State::rset, 0},
        {"NOOP", &State::noop, last_in_group},
        {"QUIT", &State::quit, last_in_group},
        {"VRFY", &State::vrfy, 0},
        {"EXPN", &State::expn, 0},
        {"HELP", &State::help, 0},
        {"AUTH", &State::auth, needs_helo | no_transaction | last_in_group},
        {"STARTTLS", &State::starttls, last_in_group},
    }};
    for (const Verb& verb : verbs)
        if (verb.name == name) return &verb;
    return nullptr;
}

void ServerSession::State::command_line(std::string_view line) {
    // A CR inside a line means the client ends lines with something other than CRLF (RFC 5321
    // 2.3.8); a NUL is never valid. (run() already ended the line at its first LF.)
    if (line.find('\0') != std::string_view::npos) {
        reply(replies::kNulInCommand);
        return;
    }
    if (line.find_first_of("\r\n") != std::string_view::npos) {
        reply(replies::kBadLineEnding);
        return;
    }
    const Command command = parse_command(line);
    current.verb = command.verb.substr(0, 16);   // junk verbs are logged; 16 bytes say enough
    const Verb* verb = find_verb(command.verb);
    if (verb == nullptr) {
        reply(replies::kUnknownCommand);
        return;
    }
    // A trusted client's whole session in one write (`printf 'HELO x\r\nMAIL FROM:...' | nc`, a
    // script that never reads replies) is served in order, as Debian 12's Postfix (3.7: no
    // smtpd_forbid_unauth_pipelining) serves it. Not AUTH (it may wait for the password check), and
    // not a DATA that is refused: the text after it would be run as commands (below).
    const bool pipelined_ok = policy.lenient && verb->name != "AUTH";
    if ((verb->flags & last_in_group) && more_follows && verb->name != "QUIT" && verb->name != "STARTTLS" &&
        !pipelined_ok)
        return pipelining_violation(command.verb);
    if ((verb->flags & needs_helo) && stage == Stage::need_helo) {
        // Postfix's default (smtpd_helo_required = no) takes MAIL without a greeting, and old devices
        // and scripts skip it: a trusted client is served (HELO "unknown" in Received), others get 503.
        // After STARTTLS the client must greet again (RFC 3207 4.2), trusted or not.
        if (!policy.lenient || verb->name != "MAIL" || tls_active) {
            reply(replies::kNeedHelo);
            return;
        }
        stage = Stage::ready;
    }
    if ((verb->flags & no_transaction) && tx.open) {
        reply(replies::kTransactionInProgress);
        return;
    }
    const bool body_follows = verb->name == "DATA" && more_follows;
    (this->*verb->handler)(command.argument);
    if (body_follows && stage != Stage::data && !closed) pipelining_violation(command.verb);
}

void ServerSession::State::pipelining_violation(std::string_view verb) {
    hooks.note("pipelining_violation", "client=" + client_address + " command=" + std::string(verb));
    step->replies.append(replies::kPipeliningViolation).append("\r\n");
    refused(replies::kPipeliningViolation);
    close();
}

void ServerSession::State::run(std::string_view input) {
    std::size_t& pos = step->consumed;
    while (!closed && step->next == Next::read_more && pos < input.size()) {
        if (stage == Stage::data) {
            pos += body(input.substr(pos));
            continue;
        }
        if (stage == Stage::awaiting_commit || stage == Stage::awaiting_credentials) break;
        const std::string_view rest = input.substr(pos);
        if (!in_auth_exchange()) current = CommandContext{};   // an AUTH exchange stays "AUTH"
        const std::size_t lf = rest.find('\n');
        if (lf == std::string_view::npos) {
            if (skipping_long_line || rest.size() >= line_limit(rest)) {
                skipping_long_line = true;
                pos += rest.size() - (rest.back() == '\r' ? 1 : 0);   // that CR may pair with the next LF
            }
            break;
        }
        const bool crlf = lf > 0 && rest[lf - 1] == '\r';
        const std::size_t eol = crlf ? lf - 1 : lf;   // the line without its ending
        pos += lf + 1;
        if (skipping_long_line || eol + 2 > line_limit(rest)) {
            skipping_long_line = false;
            if (in_auth_exchange()) stage = Stage::ready;
            reply(replies::kLineTooLong);
            continue;
        }
        if (!crlf && !policy.lenient) {
            // Answered at once (a client that ends lines with LF would otherwise wait for the command
            // timeout), never executed, and the line goes on to the next CRLF: bytes after a bare LF
            // are not a fresh command for a client that is not trusted, that way lies smuggling.
            after_bare_lf = true;
            if (in_auth_exchange()) stage = Stage::ready;
            else current.verb = parse_command(rest.substr(0, std::min<std::size_t>(eol, 32))).verb.substr(0, 16);
            reply(replies::kBareLfCommand);
            continue;
        }
        if (after_bare_lf) {   // the rest of a line a bare LF broke (a strict client)
            after_bare_lf = false;
            if (in_auth_exchange()) stage = Stage::ready;
            reply(replies::kBadLineEnding);
            continue;
        }
        more_follows = pos < input.size();
        if (in_auth_exchange())
            auth_line(rest.substr(0, eol));
        else
            command_line(rest.substr(0, eol));
    }
}

ServerSession::ServerSession(SessionPolicy policy, SessionHooks& hooks, MessageSink& sink, std::string client_address)
    : state_(std::make_unique<State>(std::move(policy), hooks, sink, std::move(client_address))) {}
ServerSession::~ServerSession() = default;
ServerSession::ServerSession(ServerSession&&) noexcept = default;
ServerSession& ServerSession::operator=(ServerSession&&) noexcept = default;

std::string ServerSession::greeting() const {
    // RFC 2034 3: no enhanced code in the greeting.
    return replies::greeting(state_->policy.hostname) + "\r\n";
}

ServerSession::Step ServerSession::feed(std::string_view input) {
    State& s = *state_;
    if (s.stage == Stage::awaiting_commit) throw std::logic_error("ServerSession::feed while a message commit is pending");
    if (s.stage == Stage::awaiting_credentials) throw std::logic_error("ServerSession::feed while credentials are being checked");
    Step step;
    if (s.closed) {
        step.next = Next::close;
        return step;
    }
    s.step = &step;
    s.run(input);
    s.step = nullptr;
    return step;
}

void ServerSession::tls_started() {
    State& s = *state_;
    // RFC 3207 4.2: forget everything learned from the client before the handshake.
    s.tls_active = true;
    s.stage = Stage::need_helo;
    s.helo.clear();
    s.authenticated = false;
    s.user.clear();
    s.user_account.clear();
    s.login_user.value.clear();
    s.reset_transaction();
    s.skipping_long_line = false;
    s.after_bare_lf = false;
}

std::string ServerSession::commit_finished(const std::optional<std::string>& queue_id, std::string_view error_reply) {
    State& s = *state_;
    if (s.stage != Stage::awaiting_commit) throw std::logic_error("ServerSession::commit_finished without a message");
    s.reset_transaction();
    s.stage = Stage::ready;
    // Not counted as a client error: the failure is ours.
    if (queue_id) return replies::queued(*queue_id) + "\r\n";
    return std::string(error_reply.empty() ? replies::kQueueWriteError : error_reply) + "\r\n";
}

std::pair<std::string, std::string> ServerSession::pending_credentials() const {
    return {state_->pending_user, state_->pending_password.value};
}

ServerSession::Step ServerSession::credentials_verified(SessionHooks::AuthResult result) {
    State& s = *state_;
    if (s.stage != Stage::awaiting_credentials) throw std::logic_error("ServerSession::credentials_verified without AUTH");
    Step step;
    s.step = &step;
    s.stage = Stage::ready;
    std::string name = std::move(s.pending_user);
    s.pending_user.clear();
    OPENSSL_cleanse(s.pending_password.value.data(), s.pending_password.value.size());
    s.pending_password.value.clear();
    s.credentials_checked(name, std::move(result));
    s.step = nullptr;
    return step;
}

std::string ServerSession::timeout_reply() const {
    return replies::timeout(state_->policy.hostname) + "\r\n";
}

std::string ServerSession::shutdown_reply() const {
    return replies::shutting_down(state_->policy.hostname) + "\r\n";
}

bool ServerSession::in_data() const { return state_->stage == Stage::data; }
bool ServerSession::authenticated() const { return state_->authenticated; }
std::size_t ServerSession::errors() const { return state_->errors; }
const Envelope& ServerSession::envelope() const { return state_->tx.envelope; }

}  // namespace relay::smtp
