// The pure half of the sendmail entry: turning what a program pipes into /usr/sbin/sendmail into an
// SMTP transaction. Line ends become CRLF (RFC 5322 section 2.1); without -i a line holding only "."
// ends the input (traditional sendmail); -t takes recipients from To/Cc/Bcc and removes Bcc
// (RFC 5322 section 3.6.3); a missing From: or Date: is added; DATA is dot-stuffed (RFC 5321 4.5.2).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace relay::sendmail {

struct Options {
    bool recipients_from_headers = false;   // -t
    bool ignore_dots = false;               // -i / -oi
    std::string from;                       // -f / -r: envelope sender
    std::string full_name;                  // -F: display name for an added From:
    std::vector<std::string> recipients;    // the arguments
};

// Parses sendmail's argument conventions ("-fFROM" or "-f FROM", "-oi", "--"). Harmless options
// programs pass out of habit (-odi, -odb, -oem, -oee, -bm, -v, -U) are accepted and ignored.
// Returns an error message on usage errors (exit EX_USAGE), else empty. `config` gets --config.
std::string parse_arguments(const std::vector<std::string>& args, Options& options, std::string& config);

struct Prepared {
    std::string message;                 // CRLF line ends, headers adjusted, not yet dot-stuffed
    std::vector<std::string> recipients; // arguments plus (with -t) header addresses, deduplicated
};

// `input` is stdin as read. `default_from` is used for an added From: header; `date` is an RFC 5322
// date for an added Date: header.
Prepared prepare(std::string_view input, const Options& options, std::string_view default_from, std::string_view date);

// Addresses in one header value: "A <a@x>, \"Doe, J\" <j@x>, b@y, undisclosed:;" -> {a@x, j@x, b@y}.
std::vector<std::string> addresses_in(std::string_view header_value);

// RFC 5321 4.5.2: a line starting with "." gets another "."; ends with CRLF.CRLF.
std::string dot_stuff(std::string_view message);

}  // namespace relay::sendmail
