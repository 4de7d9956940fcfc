// Builds RFC 3464 delivery status notifications; see dsn.hpp.
#include "relay/delivery/dsn.hpp"

#include <cctype>
#include <ctime>
#include <stdexcept>

#include <openssl/rand.h>

#include <fmt/format.h>

namespace relay {
namespace {

// RFC 5322 3.3 date-time in UTC.
std::string rfc5322_date(std::chrono::system_clock::time_point t) {
    std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char buffer[64];
    std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    return buffer;
}

// Header field values must not contain line breaks; replies and addresses come from outside.
std::string one_line(std::string text) {
    for (char& c : text)
        if (c == '\r' || c == '\n') c = ' ';
    return text;
}

// 128 bits from the CSPRNG: no client can predict it from anything the relay told it.
std::string random_hex_token() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("RAND_bytes failed: no MIME boundary");
    std::string out;
    for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
    return out;
}

}  // namespace

bool may_bounce(const Envelope& original) { return !original.mail_from.empty() && !original.dsn; }

std::string status_of_reply(const std::string& reply_text) {
    // "550 5.1.1 text": the enhanced code is the second word when it looks like d.d.d (RFC 3463).
    auto sp = reply_text.find(' ');
    if (sp != std::string::npos) {
        std::string word = reply_text.substr(sp + 1, reply_text.find(' ', sp + 1) - sp - 1);
        int dots = 0;
        bool shape = word.size() >= 5 && (word[0] == '4' || word[0] == '5');
        for (char c : word) {
            if (c == '.') ++dots;
            else if (!std::isdigit(static_cast<unsigned char>(c))) shape = false;
        }
        if (shape && dots == 2) return word;
    }
    return !reply_text.empty() && reply_text[0] == '4' ? "4.0.0" : "5.0.0";
}

Dsn build_dsn(const DsnInput& in, const std::function<std::string()>& random_token) {
    const std::string sender = one_line(in.original.mail_from);
    std::string head;
    head += "From: Mail Delivery System <" + in.account_email + ">\r\n";
    head += "To: <" + sender + ">\r\n";
    head += "Subject: Undelivered Mail Returned to Sender\r\n";
    head += "Date: " + rfc5322_date(in.now) + "\r\n";
    head += fmt::format("Message-ID: <dsn.{}@{}>\r\n", in.original_id, in.reporting_host);
    head += "Auto-Submitted: auto-replied\r\n";   // RFC 3834: no auto-replies to this
    head += "MIME-Version: 1.0\r\n";

    std::string human = "Content-Type: text/plain; charset=us-ascii\r\n\r\n";
    human += fmt::format("Your message (queue id {}) could not be delivered to the following recipients.\r\n"
                         "The relay {} tried through the mailbox {}; the provider answered:\r\n\r\n",
                         in.original_id, in.reporting_host, in.account_email);
    for (const auto& f : in.failed)
        human += "  <" + one_line(f.address) + ">: " + one_line(f.diagnostic) + "\r\n";
    human += "\r\n";

    std::string status = "Content-Type: message/delivery-status\r\n\r\n";
    // Per-message fields (RFC 3464 2.2), then one block per recipient (2.3), blocks separated by a blank line.
    status += "Reporting-MTA: dns; " + in.reporting_host + "\r\n";
    status += "X-Queue-ID: " + in.original_id + "\r\n";
    status += "Arrival-Date: " + rfc5322_date(in.arrival) + "\r\n";
    for (const auto& f : in.failed) {
        status += "\r\n";
        status += "Final-Recipient: rfc822; " + one_line(f.address) + "\r\n";
        status += "Action: failed\r\n";
        status += "Status: " + f.status + "\r\n";
        status += "Diagnostic-Code: smtp; " + one_line(f.diagnostic) + "\r\n";
        status += "Last-Attempt-Date: " + rfc5322_date(in.now) + "\r\n";
    }
    status += "\r\n";

    std::string headers = "Content-Type: text/rfc822-headers\r\n\r\n";
    headers += in.original_header;
    if (!in.original_header.empty() && !in.original_header.ends_with("\r\n")) headers += "\r\n";

    // RFC 2046 5.1.1: the boundary must not occur in any encapsulated part. The header and the
    // diagnostics come from outside, so a token that does occur there is replaced by a fresh one.
    std::string boundary;
    for (int tries = 0;; ++tries) {
        boundary = "=_dsn_" + (random_token ? random_token() : random_hex_token());
        const bool clash = head.find(boundary) != std::string::npos || human.find(boundary) != std::string::npos ||
                           status.find(boundary) != std::string::npos || headers.find(boundary) != std::string::npos;
        if (!clash) break;
        if (tries >= 16) throw std::runtime_error("no MIME boundary absent from the delivery report");
    }

    std::string m = head;
    m += "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"" + boundary + "\"\r\n";
    m += "\r\n";
    m += "This is a MIME-encapsulated delivery status notification (RFC 3464).\r\n\r\n";
    m += "--" + boundary + "\r\n" + human;
    m += "--" + boundary + "\r\n" + status;
    m += "--" + boundary + "\r\n" + headers;
    m += "\r\n--" + boundary + "--\r\n";

    Dsn dsn;
    dsn.envelope.mail_from = in.account_email;
    dsn.envelope.rcpt_to = {in.original.mail_from};
    dsn.envelope.account = in.account;
    dsn.envelope.client_address = "127.0.0.1";
    dsn.envelope.helo = in.reporting_host;
    dsn.envelope.dsn = true;
    dsn.message = std::move(m);
    return dsn;
}

}  // namespace relay
