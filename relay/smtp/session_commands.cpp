// The command handlers of smtp::ServerSession (EHLO to STARTTLS, RFC 5321 4.1.1) and the DATA body
// with its sticky errors. See session_state.hpp.
#include "relay/smtp/session_state.hpp"

#include <algorithm>
#include <exception>
#include <vector>

#include "relay/smtp/command.hpp"
#include "relay/smtp/replies.hpp"

namespace relay::smtp {

void ServerSession::State::greet(std::string_view argument) {
    helo.assign(argument);
    reset_transaction();   // RFC 5321 4.1.4: EHLO/HELO act like RSET
    stage = Stage::ready;
}

void ServerSession::State::ehlo(std::string_view argument) {
    if (argument.empty()) return reply(replies::kEhloSyntax);
    greet(argument);
    const std::uint64_t advertised = hooks.size_limit(user_account);
    const std::uint64_t size = advertised ? std::min(advertised, max_size()) : max_size();
    std::vector<std::string> lines{policy.hostname, "PIPELINING", "SIZE " + std::to_string(size),
                                   "8BITMIME", "ENHANCEDSTATUSCODES"};
    if (policy.auth_offered && auth_allowed_here()) lines.emplace_back("AUTH PLAIN LOGIN");
    if (policy.starttls_offered && !tls_active) lines.emplace_back("STARTTLS");
    step->replies.append(replies::ehlo(lines));
}

void ServerSession::State::helo_command(std::string_view argument) {
    if (argument.empty()) return reply(replies::kHeloSyntax);
    greet(argument);
    step->replies.append(replies::helo(policy.hostname)).append("\r\n");
}

void ServerSession::State::mail(std::string_view argument) {
    PathError error;
    if (policy.require_auth && !authenticated) {
        // The refusal line names the sender when there is one (Postfix's from=<...>).
        if (auto path = parse_mail_from(argument, error, policy.lenient)) current.from = std::move(path->address);
        return reply(replies::kAuthRequired);
    }
    std::optional<PathArgument> path = parse_mail_from(argument, error, policy.lenient);
    if (!path) {
        current.argument = argument.substr(0, 256);
        return reply(error.reply);
    }
    current.from = path->address;
    bool eight_bit = false;
    std::uint64_t declared_size = 0;
    for (const auto& [key, value] : path->params) {
        if (key == "SIZE") {   // RFC 1870: refuse early what would be refused after the body
            if (value.empty() || value.size() > 19 || value.find_first_not_of("0123456789") != std::string::npos)
                return reply(replies::kBadSizeSyntax);
            declared_size = std::stoull(value);
            if (declared_size > max_size())
                return reply(replies::kMessageTooBig);
        } else if (key == "BODY") {   // RFC 6152
            if (equals_nocase(value, "8BITMIME"))
                eight_bit = true;
            else if (equals_nocase(value, "7BIT"))
                eight_bit = false;
            else
                return reply(replies::kBadBodyValue);
        } else if (key == "AUTH") {
            // RFC 4954 5: the original submitter, meaningful only between trusted relays; ignored.
        } else {
            return reply(replies::kUnsupportedParameter);
        }
    }
    const SessionHooks::RouteResult route = hooks.route(user, user_account, path->address);
    if (!route.ok) return reply(route.reply.empty() ? replies::kSenderRefused : std::string_view(route.reply));
    const bool own_limit = route.max_message_size != 0 && route.max_message_size < max_size();
    if (own_limit && declared_size > route.max_message_size)
        return reply(replies::too_big_for_account(route.max_message_size));
    tx.max_size = own_limit ? route.max_message_size : 0;
    tx.open = true;
    tx.envelope.mail_from = std::move(path->address);
    tx.envelope.account = route.account;
    tx.envelope.user = user;
    tx.envelope.client_address = client_address;
    tx.envelope.helo = helo;
    tx.envelope.eight_bit = eight_bit;
    reply(replies::kSenderOk);
}

void ServerSession::State::rcpt(std::string_view argument) {
    PathError error;
    if (!tx.open) {
        if (auto path = parse_rcpt_to(argument, error, policy.lenient)) current.to = std::move(path->address);
        return reply(replies::kNeedMail);
    }
    tx.rcpt_attempted = true;
    std::optional<PathArgument> path = parse_rcpt_to(argument, error, policy.lenient);
    if (!path) {
        current.argument = argument.substr(0, 256);
        return reply(error.reply);
    }
    current.to = path->address;
    if (!path->params.empty()) return reply(replies::kUnsupportedParameter);
    // RFC 5321 4.5.3.1.8: a client must accept 452 here and send the rest in another transaction,
    // so this is not counted as a client error (Postfix's smtpd_recipient_overshoot_limit idea):
    // a well-behaved client with 2,000 recipients must not run into max_errors.
    if (tx.envelope.rcpt_to.size() >= policy.max_recipients) {
        step->replies.append(replies::kTooManyRecipients).append("\r\n");
        return;
    }
    tx.envelope.rcpt_to.push_back(std::move(path->address));
    reply(replies::kRecipientOk);
}

void ServerSession::State::data(std::string_view argument) {
    if (!argument.empty()) return reply(replies::kDataSyntax);
    if (!tx.open) return reply(replies::kNeedRcpt);
    if (tx.envelope.rcpt_to.empty())
        return reply(tx.rcpt_attempted ? replies::kNoValidRecipients : replies::kNeedRcpt);
    try {
        sink.message_begin(tx.envelope);
    } catch (const std::exception& e) {
        hooks.note("sink_error", e.what());
        reset_transaction();
        step->replies.append(replies::kQueueWriteError).append("\r\n");
        return;
    }
    DataLimits limits = policy.data;
    limits.max_message_size = tx.max_size ? tx.max_size : max_size();
    if (policy.lenient) {
        // A trusted LAN device's Unix line ends and unwrapped lines are its habit, not an attack;
        // the decoder still ends data only at CRLF "." CRLF, so smuggling stays impossible.
        limits.normalize_bare_newlines = true;
        limits.max_line_length = std::max(limits.max_line_length, kLenientMaxLineLength);
    }
    tx.decoder.emplace(limits);
    stage = Stage::data;
    reply(replies::kStartData);
}

void ServerSession::State::rset(std::string_view) {
    reset_transaction();
    reply(replies::kOk);
}

void ServerSession::State::noop(std::string_view) { reply(replies::kOk); }

void ServerSession::State::quit(std::string_view) {
    reply(replies::kBye);
    close();
}

void ServerSession::State::vrfy(std::string_view argument) {
    if (argument.empty()) return reply(replies::kVrfySyntax);
    reply(replies::kVrfyCannot);
}

void ServerSession::State::expn(std::string_view) { reply(replies::kNotImplemented); }

void ServerSession::State::help(std::string_view) { reply(replies::kHelp); }

void ServerSession::State::starttls(std::string_view argument) {
    if (!argument.empty()) return reply(replies::kStarttlsSyntax);
    if (tls_active) return reply(replies::kTlsAlreadyActive);
    if (!policy.starttls_offered) return reply(replies::kNotImplemented);
    // RFC 3207 5 and CVE-2011-0411: bytes pipelined after STARTTLS arrived in plaintext and must not
    // be executed after the handshake; the I/O layer drops them with the rest of the read buffer.
    if (more_follows) hooks.note("starttls_injection", "client=" + client_address);
    reply(replies::kReadyToStartTls);
    step->next = Next::start_tls;
}

// ---- DATA -----------------------------------------------------------------------------
namespace {

// The recipients for a refusal line: the first ten, then how many more (one line stays short).
std::string join_recipients(const std::vector<std::string>& rcpt_to) {
    std::string out;
    for (std::size_t i = 0; i < rcpt_to.size() && i < 10; ++i) out.append(i ? "," : "").append(rcpt_to[i]);
    if (rcpt_to.size() > 10) out += ",+" + std::to_string(rcpt_to.size() - 10);
    return out;
}

}  // namespace

struct ServerSession::State::SinkWriter final : DataOutput {
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

std::size_t ServerSession::State::body(std::string_view input) {
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
    current.verb = "END-OF-DATA";
    current.from = tx.envelope.mail_from;
    current.to = join_recipients(tx.envelope.rcpt_to);
    const std::uint64_t account_limit = tx.max_size;
    reset_transaction();
    stage = Stage::ready;
    if (error == DataError::bare_newline) hooks.note("bare_newline_in_data", "client=" + client_address);
    if (error == DataError::too_big && account_limit)
        reply(replies::too_big_for_account(account_limit));
    else if (error != DataError::none)
        reply(DataDecoder::reply_for(error));
    else
        step->replies.append(replies::kQueueWriteError).append("\r\n");
    return used;
}

}  // namespace relay::smtp
