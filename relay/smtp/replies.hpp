// The reply catalogue: every SMTP reply the relay sends to a client, named once (OpenSMTPD's
// esc_code idea). Each entry is one reply line without CRLF: the RFC 5321 code, the RFC 3463
// enhanced status code (RFC 2034 makes it mandatory for 2xx, 4xx and 5xx once ENHANCEDSTATUSCODES is
// advertised; the greeting and the EHLO/HELO answer go without, RFC 2034 3, and so do the
// intermediate 354 and 334), then the text. The state machine,
// intake and delivery refer to these names; a test can then check the whole catalogue at once
// (tests/unit/smtp/test_replies.cpp) instead of hunting literals over the tree.
//
// Texts follow Postfix where it has an equivalent ("Error: ..."), since admins grep for them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace relay::smtp::replies {

// Builds one reply line from its three parts: "550 5.7.1 text". For the parameterised entries below.
std::string line(int code, std::string_view enhanced, std::string_view text);

// ---- connection ---------------------------------------------------------------------------------
std::string greeting(std::string_view hostname);                   // 220, no enhanced code (RFC 2034 3)
std::string too_many_errors(std::string_view hostname);            // 421 4.7.0, then close
std::string timeout(std::string_view hostname);                    // 421 4.4.2
std::string shutting_down(std::string_view hostname);              // 421 4.3.2
std::string data_rate_too_low(std::string_view hostname);          // 421 4.4.2 (slowloris)
std::string too_many_connections(std::string_view hostname);       // 421 4.7.0 (max_clients)
std::string too_many_connections_from_address(std::string_view hostname);  // 421 4.7.0 (max_clients_per_ip)
std::string talked_first(std::string_view hostname);               // 554 5.5.0 before the greeting
inline constexpr std::string_view kBye = "221 2.0.0 Bye";
// A peer outside allow_networks, before the close (Postfix: "Client host rejected: Access denied").
inline constexpr std::string_view kClientNotAllowed = "554 5.7.1 Error: client host rejected: access denied";

// ---- command framing and dispatch ---------------------------------------------------------------
inline constexpr std::string_view kLineTooLong = "500 5.5.2 Error: line too long";
inline constexpr std::string_view kBadLineEnding = "500 5.5.2 Error: bad syntax; command lines must end with CRLF";
inline constexpr std::string_view kNulInCommand = "500 5.5.2 Error: NUL byte in command line";
// Postfix's text for the same case (smtpd_forbid_bare_newline), answered at the LF, not at a CRLF.
inline constexpr std::string_view kBareLfCommand = "500 5.5.2 Error: bare <LF> received; command lines must end with CRLF";
inline constexpr std::string_view kUnknownCommand = "500 5.5.2 Error: command not recognized";
inline constexpr std::string_view kPipeliningViolation = "554 5.5.0 Error: SMTP protocol synchronization";
inline constexpr std::string_view kNeedHelo = "503 5.5.1 Error: send HELO/EHLO first";
inline constexpr std::string_view kTransactionInProgress = "503 5.5.1 Error: MAIL transaction in progress";
inline constexpr std::string_view kNotImplemented = "502 5.5.1 Error: command not implemented";
inline constexpr std::string_view kOk = "250 2.0.0 Ok";     // RSET, NOOP

// ---- EHLO / HELO / VRFY / HELP ------------------------------------------------------------------
inline constexpr std::string_view kEhloSyntax = "501 5.5.4 Syntax: EHLO hostname";
inline constexpr std::string_view kHeloSyntax = "501 5.5.4 Syntax: HELO hostname";
// RFC 5321 4.1.1.1: "250-" on every line but the last, which uses "250 "; CRLF after each line.
std::string ehlo(const std::vector<std::string>& lines);
std::string helo(std::string_view hostname);                       // "250 hostname"
inline constexpr std::string_view kVrfySyntax = "501 5.5.4 Syntax: VRFY address";
inline constexpr std::string_view kVrfyCannot = "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery";
inline constexpr std::string_view kHelp = "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY AUTH STARTTLS";

// ---- MAIL / RCPT (paths: relay/smtp/command.cpp) ------------------------------------------------
inline constexpr std::string_view kSenderSyntax = "501 5.1.7 Bad sender address syntax";
inline constexpr std::string_view kRecipientSyntax = "501 5.1.3 Bad recipient address syntax";
// A client outside lenient_networks sent "MAIL FROM:a@b": say what is missing.
inline constexpr std::string_view kSenderNeedsBrackets =
    "501 5.1.7 Bad sender address syntax: the address must be in angle brackets, MAIL FROM:<user@example.com>";
inline constexpr std::string_view kRecipientNeedsBrackets =
    "501 5.1.3 Bad recipient address syntax: the address must be in angle brackets, RCPT TO:<user@example.com>";
inline constexpr std::string_view kParameterSyntax = "501 5.5.4 Bad parameter syntax";
inline constexpr std::string_view kMailSyntax = "501 5.5.4 Syntax: MAIL FROM:<address>";
inline constexpr std::string_view kRcptSyntax = "501 5.5.4 Syntax: RCPT TO:<address>";
inline constexpr std::string_view kAuthRequired = "530 5.7.0 Authentication required";
inline constexpr std::string_view kBadSizeSyntax = "501 5.5.4 Bad SIZE parameter syntax";
inline constexpr std::string_view kBadBodyValue = "501 5.5.4 Unsupported BODY parameter value";
inline constexpr std::string_view kUnsupportedParameter = "555 5.5.4 Unsupported parameter";
inline constexpr std::string_view kSenderRefused = "550 5.7.1 Error: sender refused";
inline constexpr std::string_view kSenderNotAllowedForUser = "553 5.7.1 Sender address not allowed for this user";
// refuse_unknown_senders: the account's mailbox may not send as this address (Exchange would answer
// 554 5.2.252 SendAsDenied after the whole message); said at once, nothing is queued.
inline constexpr std::string_view kSenderNotKnown =
    "553 5.7.1 Sender address not allowed: the relay's mailbox may send only as its own address "
    "or an address in its send_as";
inline constexpr std::string_view kSenderNotServed =
    "550 5.7.1 Sender address not served by this relay: log in, or use an address "
    "configured as an account's email or send_as";
inline constexpr std::string_view kSenderOk = "250 2.1.0 Ok";
inline constexpr std::string_view kNeedMail = "503 5.5.1 Error: need MAIL command";
// RFC 5321 4.5.3.1.8: the client sends the rest in another transaction.
inline constexpr std::string_view kTooManyRecipients = "452 4.5.3 Error: too many recipients";
inline constexpr std::string_view kRecipientOk = "250 2.1.5 Ok";

// ---- DATA ---------------------------------------------------------------------------------------
inline constexpr std::string_view kDataSyntax = "501 5.5.4 Syntax: DATA";
inline constexpr std::string_view kNeedRcpt = "503 5.5.1 Error: need RCPT command";
inline constexpr std::string_view kNoValidRecipients = "554 5.5.1 Error: no valid recipients";
inline constexpr std::string_view kStartData = "354 End data with <CR><LF>.<CR><LF>";
inline constexpr std::string_view kMessageTooBig = "552 5.3.4 Message size exceeds fixed maximum message size";
// The routed account carries less than the relay (Microsoft Graph's request limit): say how much.
std::string too_big_for_account(std::uint64_t limit);              // 552 5.3.4 with the limit
inline constexpr std::string_view kDataLineTooLong = "500 5.5.2 Message line too long (RFC 5321 allows 998 characters)";
inline constexpr std::string_view kBareNewline =
    "550 5.5.2 Bare CR or LF in message; lines must end with CRLF (RFC 5321 2.3.8)";
// Refused rather than removed: a NUL means binary data sent without MIME encoding; dropping the
// bytes would deliver a silently corrupted attachment as if it were fine (README "Hostile clients").
inline constexpr std::string_view kNulInData =
    "554 5.6.0 Error: message contains NUL bytes, which mail cannot carry (RFC 5322 3.5); MIME-encode binary data";
inline constexpr std::string_view kQueueWriteError = "451 4.3.0 Error: queue file write error";
std::string queued(std::string_view queue_id);                     // 250 2.0.0 Ok: queued as ID

// ---- STARTTLS (RFC 3207) ------------------------------------------------------------------------
inline constexpr std::string_view kStarttlsSyntax = "501 5.5.4 Syntax: STARTTLS";
inline constexpr std::string_view kTlsAlreadyActive = "503 5.5.1 Error: TLS already active";
inline constexpr std::string_view kReadyToStartTls = "220 2.0.0 Ready to start TLS";

// ---- AUTH (RFC 4954) ----------------------------------------------------------------------------
inline constexpr std::string_view kAuthNotEnabled = "503 5.5.1 Error: authentication not enabled";
inline constexpr std::string_view kAlreadyAuthenticated = "503 5.5.1 Error: already authenticated";
inline constexpr std::string_view kAuthSyntax = "501 5.5.4 Syntax: AUTH mechanism [initial-response]";
inline constexpr std::string_view kAuthUnknownMechanism = "504 5.5.4 Unrecognized authentication type";
inline constexpr std::string_view kEncryptionRequired = "538 5.7.11 Encryption required for requested authentication mechanism";
inline constexpr std::string_view kAuthPlainChallenge = "334 ";
inline constexpr std::string_view kAuthUsernameChallenge = "334 VXNlcm5hbWU6";   // base64 "Username:"
inline constexpr std::string_view kAuthPasswordChallenge = "334 UGFzc3dvcmQ6";   // base64 "Password:"
inline constexpr std::string_view kAuthCancelled = "501 5.0.0 Authentication cancelled";
inline constexpr std::string_view kInvalidBase64 = "501 5.5.2 Invalid base64 data";
inline constexpr std::string_view kAuthSucceeded = "235 2.7.0 Authentication successful";
inline constexpr std::string_view kAuthFailed = "535 5.7.8 Authentication credentials invalid";
inline constexpr std::string_view kAuthLocked = "454 4.7.0 Too many failed authentication attempts; try again later";
inline constexpr std::string_view kAuthBusy = "454 4.7.0 Too many authentication attempts in progress; try again later";

// ---- direct delivery (the upstream's verdict is the reply; these are ours when there is none) ---
inline constexpr std::string_view kAccountNotConfigured = "451 4.3.5 Error: the account for this sender is not configured";
inline constexpr std::string_view kAccountOnHold = "451 4.7.0 Error: delivery through this account is on hold; see the relay log";
inline constexpr std::string_view kUpstreamBusy = "451 4.4.5 Error: every upstream connection is busy; try again later";
inline constexpr std::string_view kUpstreamUnavailable = "451 4.4.1 Error: cannot deliver through the upstream now; try again later";
inline constexpr std::string_view kSpoolReadError = "451 4.3.0 Error: cannot read the message back from the spool";
inline constexpr std::string_view kUpstreamBroke = "451 4.4.2 Error: the upstream connection broke; try again later";
// An upstream reply without an enhanced code gets its class's generic one (RFC 3463 3.1: X.0.0).
std::string_view class_enhanced_code(int code);                    // "2.0.0", "4.0.0", "5.0.0"

// Every fixed entry above, for the catalogue's own test (codes and enhanced codes agree).
const std::vector<std::string_view>& all_fixed();

}  // namespace relay::smtp::replies
