// The pure half of the sendmail entry: turning what a program pipes into /usr/sbin/sendmail into an
// SMTP transaction. Line ends become CRLF (RFC 5322 section 2.1); without -i a line holding only "."
// ends the input (traditional sendmail); -t takes recipients from To/Cc/Bcc and removes Bcc
// (RFC 5322 section 3.6.3); Bcc: and Resent-Bcc: are removed in every mode (as Postfix's cleanup does);
// a missing From: or Date: is added (a From: naming only a local name, "From: root", is replaced by the
// sender's address with that name shown); DATA is dot-stuffed (RFC 5321 4.5.2).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace relay::sendmail {

// What the invocation asks for: -bm (the default) submits; -bs speaks SMTP on stdin/stdout; -bp is
// mailq; -bi / -I is newaliases; -bv shows where each recipient goes (aliases resolved) and sends nothing.
enum class Mode { submit, smtp_on_stdin, list_queue, rebuild_aliases, verify };

struct Options {
    Mode mode = Mode::submit;
    bool recipients_from_headers = false;   // -t
    bool ignore_dots = false;               // -i / -oi
    std::string from;                       // -f / -r: envelope sender
    std::string full_name;                  // -F: display name for an added From:
    std::vector<std::string> recipients;    // the arguments
};

// Parses sendmail's argument conventions ("-fFROM" or "-f FROM", "-oi", "--", and grouped flags
// such as "-ti", as getopt(3) takes them). Every option Postfix's sendmail(1) accepts is accepted;
// those meaningless here (-B 8BITMIME, -N, -R, -V, -X, -L, -C, -h, -o..., -odi, -oem, -v, -U, -G,
// -n, -m, -q) are ignored, because programs such as Debian's cron (`-FCronDaemon -i -B8BITMIME -oem
// root`), bsd-mailx (`-i -t`) and PHP pass them out of habit. -f and -F are checked here: a control
// character in either would let the caller write header lines (-F) or SMTP commands (-f). Returns an
// error message on usage errors (exit EX_USAGE), else empty. `config` gets --config.
std::string parse_arguments(const std::vector<std::string>& args, Options& options, std::string& config);

struct Prepared {
    std::string message;                 // CRLF line ends, headers adjusted, not yet dot-stuffed
    std::vector<std::string> recipients; // arguments plus (with -t) header addresses, deduplicated
};

// `input` is stdin as read. `default_from` is used for an added From: header; `date` is an RFC 5322
// date for an added Date: header. With -t, recipients come from Resent-To/Cc/Bcc when the message
// has any (it is being resent), else from To/Cc/Bcc (RFC 5322 section 3.6.6).
Prepared prepare(std::string_view input, const Options& options, std::string_view default_from, std::string_view date);

// Addresses in one header value: "A <a@x>, \"Doe, J\" <j@x>, b@y, undisclosed:;" -> {a@x, j@x, b@y}.
std::vector<std::string> addresses_in(std::string_view header_value);

// The display name of an added From: header: a quoted-string (RFC 5322 3.2.4), or an RFC 2047
// encoded-word when the name is not ASCII. Control characters never reach it (parse_arguments).
std::string display_name(std::string_view name);

// RFC 5321 4.5.2: a line starting with "." gets another "."; ends with CRLF.CRLF.
std::string dot_stuff(std::string_view message);

}  // namespace relay::sendmail
