// SMTP command-line parsing (RFC 5321 4.1): verb and argument, MAIL/RCPT paths and ESMTP
// parameters. Pure functions; the session's dispatch table decides what each verb does.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace relay::smtp {

struct Command {
    std::string verb;       // upper-cased: "EHLO", "MAIL", ...
    std::string argument;   // the rest of the line after one space, CRLF removed
};

// Splits one command line (with or without the trailing CRLF).
Command parse_command(std::string_view line);

struct PathArgument {
    std::string address;    // without angle brackets; empty for <>
    std::vector<std::pair<std::string, std::string>> params;  // ESMTP params, keyword upper-cased
};

struct PathError {
    std::string reply;      // full reply line, e.g. "501 5.1.7 Bad sender address syntax"
};

// "FROM:<a@b> SIZE=123 BODY=8BITMIME" (the argument of MAIL); accepts "FROM: <a@b>" too.
// `unbracketed`: also "FROM:a@b" and "FROM: a@b SIZE=123" (Postfix's default, for lenient
// clients): the address is one Mailbox ending at the first space; what follows must be parameters.
std::optional<PathArgument> parse_mail_from(std::string_view argument, PathError& error, bool unbracketed = false);
// "TO:<a@b>" (the argument of RCPT); a null path is an error; source routes are dropped.
std::optional<PathArgument> parse_rcpt_to(std::string_view argument, PathError& error, bool unbracketed = false);

}  // namespace relay::smtp
