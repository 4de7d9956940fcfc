// The server side of one SMTP connection (RFC 5321) as a pure state machine, in the manner of
// Postfix smtpd and OpenSMTPD: one table of verbs with flags, an explicit session stage, one
// transaction struct, DATA errors sticky until the end of data. Extensions: PIPELINING with the
// RFC 2920 3.1 "last in group" rule enforced, SIZE (RFC 1870), 8BITMIME (RFC 6152), AUTH PLAIN/LOGIN
// (RFC 4954, 4616), STARTTLS (RFC 3207), ENHANCEDSTATUSCODES (RFC 2034, 3463): every 2xx/4xx/5xx
// reply except the greeting and EHLO/HELO carries an enhanced code.
#include "relay/smtp/server_session.hpp"

#include "relay/core/base64.hpp"

#include <array>
#include <stdexcept>

#include <openssl/crypto.h>

#include "relay/smtp/command.hpp"

namespace relay::smtp {
namespace {

enum class Stage {
    need_helo,            // after connect and after STARTTLS (RFC 3207 4.2)
    ready,                // EHLO/HELO seen; a transaction may or may not be open
    auth_plain,           // sent "334 ", waiting for the PLAIN response
    auth_login_user,      // sent "334 VXNlcm5hbWU6" (Username:)
    auth_login_password,  // sent "334 UGFzc3dvcmQ6" (Password:)
    data,                 // receiving the body
    awaiting_commit,      // body complete; the I/O layer is making it durable
    awaiting_credentials, // AUTH needs the slow password check; the I/O layer runs it off-thread
};

constexpr std::string_view kLineTooLong = "500 5.5.2 Error: line too long";
constexpr std::string_view kQueueWriteError = "451 4.3.0 Error: queue file write error";

char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool equals_nocase(std::string_view a, std::string_view b) {
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

}  // namespace

struct ServerSession::State {
    SessionPolicy policy;
    SessionHooks& hooks;
    MessageSink& sink;
    std::string client_address;

    Stage stage = Stage::need_helo;
    bool tls_active = false;
    std::string helo;
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

    std::size_t errors = 0;
    bool closed = false;
    bool skipping_long_line = false;
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
        if ((line[0] == '4' || line[0] == '5') && ++errors >= policy.max_errors && !closed) {
            hooks.note("too_many_errors", "client=" + client_address);
            step->replies.append("421 4.7.0 " + policy.hostname + " Error: too many errors\r\n");
            close();
        }
    }
    void close() {
        closed = true;
        step->next = Next::close;
    }
    void reset_transaction() { tx = Transaction{}; }

    // The routed account carries less than the relay (Microsoft Graph's request limit): say how much.
    static std::string too_big_for_account(std::uint64_t limit) {
        return "552 5.3.4 Message size exceeds the limit of " + std::to_string(limit) +
               " bytes of this sender's account (Microsoft Graph)";
    }

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
    static const Verb* find_verb(std::string_view name) {
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

    void command_line(std::string_view line) {
        // A CR or LF inside a line means the client ends lines with something other than CRLF
        // (RFC 5321 2.3.8); a NUL is never valid. Neither is split into commands: that way lies smuggling.
        if (line.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
            reply("500 5.5.2 Error: bad syntax; command lines must end with CRLF");
            return;
        }
        const Command command = parse_command(line);
        const Verb* verb = find_verb(command.verb);
        if (verb == nullptr) {
            reply("500 5.5.2 Error: command not recognized");
            return;
        }
        if ((verb->flags & last_in_group) && more_follows && verb->name != "QUIT" && verb->name != "STARTTLS") {
            hooks.note("pipelining_violation", "client=" + client_address + " command=" + command.verb);
            step->replies.append("554 5.5.0 Error: SMTP protocol synchronization\r\n");
            close();
            return;
        }
        if ((verb->flags & needs_helo) && stage == Stage::need_helo) {
            reply("503 5.5.1 Error: send HELO/EHLO first");
            return;
        }
        if ((verb->flags & no_transaction) && tx.open) {
            reply("503 5.5.1 Error: MAIL transaction in progress");
            return;
        }
        (this->*verb->handler)(command.argument);
    }

    // ---- handlers -------------------------------------------------------------------------
    void greet(std::string_view argument) {
        helo.assign(argument);
        reset_transaction();   // RFC 5321 4.1.4: EHLO/HELO act like RSET
        stage = Stage::ready;
    }

    void ehlo(std::string_view argument) {
        if (argument.empty()) return reply("501 5.5.4 Syntax: EHLO hostname");
        greet(argument);
        // RFC 5321 4.1.1.1: "250-" on every line but the last, which uses "250 ".
        std::array<std::string, 8> lines;
        std::size_t count = 0;
        lines[count++] = policy.hostname;
        lines[count++] = "PIPELINING";
        const std::uint64_t advertised = hooks.size_limit(user_account);
        lines[count++] = "SIZE " + std::to_string(advertised ? std::min(advertised, max_size()) : max_size());
        lines[count++] = "8BITMIME";
        lines[count++] = "ENHANCEDSTATUSCODES";
        if (policy.auth_offered && auth_allowed_here()) lines[count++] = "AUTH PLAIN LOGIN";
        if (policy.starttls_offered && !tls_active) lines[count++] = "STARTTLS";
        for (std::size_t i = 0; i < count; ++i)
            step->replies.append(i + 1 < count ? "250-" : "250 ").append(lines[i]).append("\r\n");
    }

    void helo_command(std::string_view argument) {
        if (argument.empty()) return reply("501 5.5.4 Syntax: HELO hostname");
        greet(argument);
        step->replies += "250 " + policy.hostname + "\r\n";
    }

    void mail(std::string_view argument) {
        if (policy.require_auth && !authenticated) return reply("530 5.7.0 Authentication required");
        PathError error;
        std::optional<PathArgument> path = parse_mail_from(argument, error);
        if (!path) return reply(error.reply);
        bool eight_bit = false;
        std::uint64_t declared_size = 0;
        for (const auto& [key, value] : path->params) {
            if (key == "SIZE") {   // RFC 1870: refuse early what would be refused after the body
                if (value.empty() || value.size() > 19 || value.find_first_not_of("0123456789") != std::string::npos)
                    return reply("501 5.5.4 Bad SIZE parameter syntax");
                declared_size = std::stoull(value);
                if (declared_size > max_size())
                    return reply("552 5.3.4 Message size exceeds fixed maximum message size");
            } else if (key == "BODY") {   // RFC 6152
                if (equals_nocase(value, "8BITMIME"))
                    eight_bit = true;
                else if (equals_nocase(value, "7BIT"))
                    eight_bit = false;
                else
                    return reply("501 5.5.4 Unsupported BODY parameter value");
            } else if (key == "AUTH") {
                // RFC 4954 5: the original submitter, meaningful only between trusted relays; ignored.
            } else {
                return reply("555 5.5.4 Unsupported parameter");
            }
        }
        const SessionHooks::RouteResult route = hooks.route(user, user_account, path->address);
        if (!route.ok) return reply(route.reply.empty() ? "550 5.7.1 Error: sender refused" : route.reply);
        const bool own_limit = route.max_message_size != 0 && route.max_message_size < max_size();
        if (own_limit && declared_size > route.max_message_size) return reply(too_big_for_account(route.max_message_size));
        tx.max_size = own_limit ? route.max_message_size : 0;
        tx.open = true;
        tx.envelope.mail_from = std::move(path->address);
        tx.envelope.account = route.account;
        tx.envelope.user = user;
        tx.envelope.client_address = client_address;
        tx.envelope.helo = helo;
        tx.envelope.eight_bit = eight_bit;
        reply("250 2.1.0 Ok");
    }

    void rcpt(std::string_view argument) {
        if (!tx.open) return reply("503 5.5.1 Error: need MAIL command");
        tx.rcpt_attempted = true;
        PathError error;
        std::optional<PathArgument> path = parse_rcpt_to(argument, error);
        if (!path) return reply(error.reply);
        if (!path->params.empty()) return reply("555 5.5.4 Unsupported parameter");
        // RFC 5321 4.5.3.1.8: a client must accept 452 here and send the rest in another transaction,
        // so this is not counted as a client error (Postfix's smtpd_recipient_overshoot_limit idea):
        // a well-behaved client with 2,000 recipients must not run into max_errors.
        if (tx.envelope.rcpt_to.size() >= policy.max_recipients) {
            step->replies.append("452 4.5.3 Error: too many recipients\r\n");
            return;
        }
        tx.envelope.rcpt_to.push_back(std::move(path->address));
        reply("250 2.1.5 Ok");
    }

    void data(std::string_view argument) {
        if (!argument.empty()) return reply("501 5.5.4 Syntax: DATA");
        if (!tx.open) return reply("503 5.5.1 Error: need RCPT command");
        if (tx.envelope.rcpt_to.empty())
            return reply(tx.rcpt_attempted ? "554 5.5.1 Error: no valid recipients" : "503 5.5.1 Error: need RCPT command");
        try {
            sink.message_begin(tx.envelope);
        } catch (const std::exception& e) {
            hooks.note("sink_error", e.what());
            reset_transaction();
            step->replies.append(kQueueWriteError).append("\r\n");
            return;
        }
        DataLimits limits = policy.data;
        limits.max_message_size = tx.max_size ? tx.max_size : max_size();
        tx.decoder.emplace(limits);
        stage = Stage::data;
        reply("354 End data with <CR><LF>.<CR><LF>");
    }

    void rset(std::string_view) {
        reset_transaction();
        reply("250 2.0.0 Ok");
    }
    void noop(std::string_view) { reply("250 2.0.0 Ok"); }
    void quit(std::string_view) {
        reply("221 2.0.0 Bye");
        close();
    }
    void vrfy(std::string_view argument) {
        if (argument.empty()) return reply("501 5.5.4 Syntax: VRFY address");
        reply("252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
    }
    void expn(std::string_view) { reply("502 5.5.1 Error: command not implemented"); }
    void help(std::string_view) { reply("214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY AUTH STARTTLS"); }

    void starttls(std::string_view argument) {
        if (!argument.empty()) return reply("501 5.5.4 Syntax: STARTTLS");
        if (tls_active) return reply("503 5.5.1 Error: TLS already active");
        if (!policy.starttls_offered) return reply("502 5.5.1 Error: command not implemented");
        // RFC 3207 5 and CVE-2011-0411: bytes pipelined after STARTTLS arrived in plaintext and must not
        // be executed after the handshake; the I/O layer drops them with the rest of the read buffer.
        if (more_follows) hooks.note("starttls_injection", "client=" + client_address);
        reply("220 2.0.0 Ready to start TLS");
        step->next = Next::start_tls;
    }

    // ---- AUTH (RFC 4954) ------------------------------------------------------------------
    void auth(std::string_view argument) {
        if (!policy.auth_offered) return reply("503 5.5.1 Error: authentication not enabled");
        if (authenticated) return reply("503 5.5.1 Error: already authenticated");
        const std::size_t space = argument.find(' ');
        const std::string_view mechanism = argument.substr(0, space);
        const std::string_view initial = space == std::string_view::npos ? std::string_view{} : argument.substr(space + 1);
        if (mechanism.empty() || initial.find(' ') != std::string_view::npos)
            return reply("501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        const bool plain = equals_nocase(mechanism, "PLAIN");
        if (!plain && !equals_nocase(mechanism, "LOGIN")) return reply("504 5.5.4 Unrecognized authentication type");
        if (!auth_allowed_here())
            return reply("538 5.7.11 Encryption required for requested authentication mechanism");
        if (std::string refusal = hooks.auth_refusal(); !refusal.empty()) return reply(refusal);
        if (initial.empty()) {
            stage = plain ? Stage::auth_plain : Stage::auth_login_user;
            return reply(plain ? "334 " : "334 VXNlcm5hbWU6");
        }
        // RFC 4954 4: "=" is an empty initial response.
        auth_response(initial == "=" ? std::string_view{} : initial, plain ? Stage::auth_plain : Stage::auth_login_user);
    }

    void auth_line(std::string_view line) {
        const Stage at = stage;
        stage = Stage::ready;
        if (line == "*") return reply("501 5.0.0 Authentication cancelled");
        auth_response(line, at);
    }

    void auth_response(std::string_view base64, Stage at) {
        stage = Stage::ready;
        std::optional<std::string> decoded = core::base64_decode(base64);
        if (!decoded) return reply("501 5.5.2 Invalid base64 data");
        WipedString response{std::move(*decoded)};
        if (at == Stage::auth_login_user) {
            login_user.value = std::move(response.value);
            stage = Stage::auth_login_password;
            return reply("334 UGFzc3dvcmQ6");
        }
        if (at == Stage::auth_login_password) {
            const std::string name = std::move(login_user.value);
            login_user.value.clear();
            return check_credentials(name, response.value);
        }
        // RFC 4616 2: message = [authzid] NUL authcid NUL passwd; we act only as authcid.
        const std::string_view message = response.value;
        const std::size_t first = message.find('\0');
        const std::size_t second = first == std::string_view::npos ? first : message.find('\0', first + 1);
        if (second == std::string_view::npos || message.find('\0', second + 1) != std::string_view::npos)
            return check_failed("");
        const std::string_view authzid = message.substr(0, first);
        const std::string_view authcid = message.substr(first + 1, second - first - 1);
        if (!authzid.empty() && authzid != authcid) return check_failed(authcid);
        check_credentials(authcid, message.substr(second + 1));
    }

    void check_credentials(std::string_view name, std::string_view password) {
        if (name.empty()) return check_failed(name);
        SessionHooks::AuthResult result = hooks.authenticate(name, password);
        if (result.needs_slow_check) {
            // A KDF run takes a fraction of a second: the I/O layer does it on a worker thread.
            pending_user.assign(name);
            pending_password.value.assign(password);
            stage = Stage::awaiting_credentials;
            step->next = Next::verify_credentials;
            return;
        }
        credentials_checked(name, std::move(result));
    }

    void credentials_checked(std::string_view name, SessionHooks::AuthResult result) {
        if (!result.ok) return check_failed(name);
        authenticated = true;
        user.assign(name);
        user_account = std::move(result.account);
        reply("235 2.7.0 Authentication successful");
    }

    void check_failed(std::string_view name) {
        hooks.note("auth_failed", "user=" + std::string(name.substr(0, 256)));
        reply("535 5.7.8 Authentication credentials invalid");
    }

    bool in_auth_exchange() const {
        return stage == Stage::auth_plain || stage == Stage::auth_login_user || stage == Stage::auth_login_password;
    }

    // ---- DATA -----------------------------------------------------------------------------
    struct SinkWriter final : DataOutput {
        State& state;
        explicit SinkWriter(State& s) : state(s) {}
        void write(std::string_view bytes) override {
            if (state.tx.sink_failed) return;
            try {
                state.sink.message_data(bytes);
            } catch (const std::exception& e) {
                // Keep reading to the end of data so the session stays in step, then answer 451.
                state.tx.sink_failed = true;
                state.hooks.note("sink_error", e.what());
            }
        }
    };

    std::size_t body(std::string_view input) {
        SinkWriter writer(*this);
        const std::size_t used = tx.decoder->feed(input, writer);
        if (!tx.decoder->finished()) return used;
        const DataError error = tx.decoder->error();
        if (error == DataError::none && !tx.sink_failed) {
            stage = Stage::awaiting_commit;
            step->next = Next::commit_message;
            return used;
        }
        // OpenSMTPD style: the error stuck to the transaction is answered once, here.
        sink.message_abort();
        const std::uint64_t account_limit = tx.max_size;
        reset_transaction();
        stage = Stage::ready;
        if (error == DataError::bare_newline) hooks.note("bare_newline_in_data", "client=" + client_address);
        if (error == DataError::too_big && account_limit)
            reply(too_big_for_account(account_limit));
        else if (error != DataError::none)
            reply(DataDecoder::reply_for(error));
        else
            step->replies.append(kQueueWriteError).append("\r\n");
        return used;
    }

    // ---- framing of command lines ---------------------------------------------------------
    // Command lines end only with CRLF (RFC 5321 2.3.8). Over-long lines are consumed and answered
    // once at their end, so a client cannot make the I/O layer buffer without bound.
    std::size_t line_limit(std::string_view pending) const {
        if (in_auth_exchange()) return policy.max_auth_line;
        if (pending.size() >= 5 && equals_nocase(pending.substr(0, 5), "AUTH ")) return policy.max_auth_line;
        return policy.max_command_line;
    }

    void run(std::string_view input) {
        std::size_t& pos = step->consumed;
        while (!closed && step->next == Next::read_more && pos < input.size()) {
            if (stage == Stage::data) {
                pos += body(input.substr(pos));
                continue;
            }
            if (stage == Stage::awaiting_commit || stage == Stage::awaiting_credentials) break;
            const std::string_view rest = input.substr(pos);
            const std::size_t eol = rest.find("\r\n");
            if (eol == std::string_view::npos) {
                if (skipping_long_line || rest.size() >= line_limit(rest)) {
                    skipping_long_line = true;
                    pos += rest.size() - (rest.back() == '\r' ? 1 : 0);   // that CR may pair with the next LF
                }
                break;
            }
            pos += eol + 2;
            if (skipping_long_line || eol + 2 > line_limit(rest)) {
                skipping_long_line = false;
                if (in_auth_exchange()) stage = Stage::ready;
                reply(kLineTooLong);
                continue;
            }
            more_follows = pos < input.size();
            if (in_auth_exchange())
                auth_line(rest.substr(0, eol));
            else
                command_line(rest.substr(0, eol));
        }
    }
};

ServerSession::ServerSession(SessionPolicy policy, SessionHooks& hooks, MessageSink& sink, std::string client_address)
    : state_(std::make_unique<State>(std::move(policy), hooks, sink, std::move(client_address))) {}
ServerSession::~ServerSession() = default;
ServerSession::ServerSession(ServerSession&&) noexcept = default;
ServerSession& ServerSession::operator=(ServerSession&&) noexcept = default;

std::string ServerSession::greeting() const {
    // RFC 2034 3: no enhanced code in the greeting.
    return "220 " + state_->policy.hostname + " ESMTP smtp-oauth2-relay ready\r\n";
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
}

std::string ServerSession::commit_finished(const std::optional<std::string>& queue_id, std::string_view error_reply) {
    State& s = *state_;
    if (s.stage != Stage::awaiting_commit) throw std::logic_error("ServerSession::commit_finished without a message");
    s.reset_transaction();
    s.stage = Stage::ready;
    // Not counted as a client error: the failure is ours.
    if (queue_id) return "250 2.0.0 Ok: queued as " + *queue_id + "\r\n";
    return std::string(error_reply.empty() ? kQueueWriteError : error_reply) + "\r\n";
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
    return "421 4.4.2 " + state_->policy.hostname + " Error: timeout exceeded\r\n";
}

std::string ServerSession::shutdown_reply() const {
    return "421 4.3.2 " + state_->policy.hostname + " Service shutting down\r\n";
}

bool ServerSession::in_data() const { return state_->stage == Stage::data; }
bool ServerSession::authenticated() const { return state_->authenticated; }
std::size_t ServerSession::errors() const { return state_->errors; }
const Envelope& ServerSession::envelope() const { return state_->tx.envelope; }

}  // namespace relay::smtp
