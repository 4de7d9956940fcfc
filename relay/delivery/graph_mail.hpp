// Microsoft Graph sendMail, the pure part (issue 14): which recipients Graph will deliver to and how
// to make them exactly the envelope's, the request to send, and what Graph's answer means for the
// relay. No I/O, so each rule has a table-driven test; GraphTransport moves the bytes.
//
// Graph has no envelope: a MIME sendMail goes to the addresses in the message's To, Cc and Bcc
// fields (Exchange maps them to MAPI recipients and ignores Resent-*), and Exchange never hands a
// Bcc field to the recipients. So the relay rewrites the header only as far as needed for the
// recipients to be exactly the envelope's, each once: Bcc and Resent-Bcc fields are removed (they
// may name people outside this envelope), To/Cc addresses outside the envelope are taken out of
// their field (its original text kept as X-Original-To / X-Original-Cc for readers), and envelope
// recipients named nowhere are added to one new Bcc field. A message whose header already matches
// the envelope is sent byte for byte.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "relay/smtp/reply.hpp"

namespace relay::graph {

// One mailbox of an address list: its text as written (display name and all) and its addr-spec.
struct Mailbox {
    std::string text;
    std::string address;
};

// RFC 5322 3.4 address-list (groups, quoted display names, comments, folded lines), forgiving:
// an entry without '@' is skipped rather than failing the message.
std::vector<Mailbox> parse_address_list(std::string_view value);

struct Reconciled {
    std::string header;                      // the header block to send, ending with the empty line
    std::size_t body_offset = 0;             // where the unchanged rest of the message starts
    std::vector<std::string> recipients;     // who Graph will deliver to (To, Cc, Bcc), each once
    bool changed = false;                    // false: the message goes byte for byte
};

// `message` starts with the header (at least up to its empty line; the body is never read).
// `envelope` are the recipients this request must reach.
Reconciled reconcile_recipients(std::string_view message, const std::vector<std::string>& envelope);

// POST {graph_url}/v1.0/users/{mailbox}/sendMail
std::string send_mail_url(std::string_view graph_url, std::string_view mailbox);

// What the relay does after one sendMail answer.
enum class Verdict {
    accepted,        // 202: delivered to every recipient of the request
    refresh_token,   // 401: the token was refused; refresh once and retry
    back_off,        // 429/503/504: the mailbox is throttled; nothing before retry_after
    retry,           // other transient trouble: defer the message
    hold,            // a person must act (403 ErrorAccessDenied: permission, access policy; 404
                     // mailbox): hold the account
    fail,            // this message can never go (400 content, 413 size, 403 ErrorSendAsDenied for
                     // its sender): fail it with Graph's reason
};

struct Answer {
    Verdict verdict = Verdict::retry;
    smtp::Reply reply;                       // the SMTP equivalent, for logs, failed/ reasons and direct mode
    std::chrono::seconds retry_after{0};     // back_off: how long to leave the mailbox alone
    std::optional<std::string> hold_action;  // hold: what the admin must do
};

// Graph's JSON error: {"error":{"code":"...","message":"..."}}. Control characters are removed and
// the text is cut at 300 bytes, since it ends up in SMTP replies and log lines.
struct GraphError {
    std::string code;
    std::string message;
};
GraphError parse_error(std::string_view body);

// Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date; bounded to [1 s, 1 h]; `fallback`
// when absent or unreadable. `now` (Unix seconds) is needed for the date form.
std::chrono::seconds parse_retry_after(std::string_view value, std::chrono::seconds fallback, long long now);

// Classifies one answer; `retry_after` is the header's value ("" when absent).
Answer classify(long http_status, std::string_view body, std::string_view retry_after, long long now);

// A request that never got an HTTP answer (DNS, connect, TLS, timeout): retry the message.
Answer transport_failure(std::string_view what);

}  // namespace relay::graph
