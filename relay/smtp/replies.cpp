// The reply catalogue's parameterised entries; see replies.hpp.
#include "relay/smtp/replies.hpp"

namespace relay::smtp::replies {

std::string line(int code, std::string_view enhanced, std::string_view text) {
    std::string out = std::to_string(code);
    out += ' ';
    out += enhanced;
    out += ' ';
    out += text;
    return out;
}

namespace {
// "421 4.7.0 host Error: ...": Postfix names the host in the replies that end a connection.
std::string with_host(int code, std::string_view enhanced, std::string_view hostname, std::string_view text) {
    std::string body(hostname);
    body += ' ';
    body += text;
    return line(code, enhanced, body);
}
}  // namespace

std::string greeting(std::string_view hostname) {
    return "220 " + std::string(hostname) + " ESMTP smtp-oauth2-relay ready";
}
std::string too_many_errors(std::string_view hostname) {
    return with_host(421, "4.7.0", hostname, "Error: too many errors");
}
std::string timeout(std::string_view hostname) { return with_host(421, "4.4.2", hostname, "Error: timeout exceeded"); }
std::string shutting_down(std::string_view hostname) {
    return with_host(421, "4.3.2", hostname, "Service shutting down");
}
std::string data_rate_too_low(std::string_view hostname) {
    return with_host(421, "4.4.2", hostname, "Error: data rate too low");
}
std::string too_many_connections(std::string_view hostname) {
    return with_host(421, "4.7.0", hostname, "Error: too many connections");
}
std::string too_many_connections_from_address(std::string_view hostname) {
    return with_host(421, "4.7.0", hostname, "Error: too many connections from your address");
}
std::string talked_first(std::string_view hostname) {
    return with_host(554, "5.5.0", hostname, "Error: SMTP protocol synchronization");
}

std::string ehlo(const std::vector<std::string>& lines) {
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i)
        out.append(i + 1 < lines.size() ? "250-" : "250 ").append(lines[i]).append("\r\n");
    return out;
}
std::string helo(std::string_view hostname) { return "250 " + std::string(hostname); }

std::string too_big_for_account(std::uint64_t limit) {
    return "552 5.3.4 Message size exceeds the limit of " + std::to_string(limit) +
           " bytes of this sender's account (Microsoft Graph)";
}

std::string queued(std::string_view queue_id) { return line(250, "2.0.0", "Ok: queued as " + std::string(queue_id)); }

std::string_view class_enhanced_code(int code) {
    if (code >= 200 && code < 400) return "2.0.0";
    if (code >= 400 && code < 500) return "4.0.0";
    return "5.0.0";
}

const std::vector<std::string_view>& all_fixed() {
    static const std::vector<std::string_view> all{
        kBye, kLineTooLong, kBadLineEnding, kUnknownCommand, kPipeliningViolation, kNeedHelo,
        kTransactionInProgress, kNotImplemented, kOk, kEhloSyntax, kHeloSyntax, kVrfySyntax, kVrfyCannot,
        kHelp, kSenderSyntax, kRecipientSyntax, kParameterSyntax, kMailSyntax, kRcptSyntax, kAuthRequired,
        kBadSizeSyntax, kBadBodyValue, kUnsupportedParameter, kSenderRefused, kSenderNotAllowedForUser,
        kSenderNotServed, kSenderOk, kNeedMail, kTooManyRecipients, kRecipientOk, kDataSyntax, kNeedRcpt,
        kNoValidRecipients, kStartData, kMessageTooBig, kDataLineTooLong, kBareNewline, kQueueWriteError,
        kStarttlsSyntax, kTlsAlreadyActive, kReadyToStartTls, kAuthNotEnabled, kAlreadyAuthenticated,
        kAuthSyntax, kAuthUnknownMechanism, kEncryptionRequired, kAuthCancelled, kInvalidBase64,
        kAuthSucceeded, kAuthFailed, kAuthLocked, kAccountNotConfigured, kAccountOnHold, kUpstreamBusy,
        kUpstreamUnavailable, kSpoolReadError, kUpstreamBroke, kBareLfCommand, kSenderNeedsBrackets,
        kRecipientNeedsBrackets, kNulInData, kClientNotAllowed,
    };
    return all;
}

}  // namespace relay::smtp::replies
