// Lines longer than SMTP allows (RFC 5321 4.5.3.1.6: 998 octets before the CRLF), made deliverable
// without changing what the recipient reads. Exchange and most servers refuse such a message
// (Postfix folds it at 998 by inserting CRLF SPACE, which changes the text: a space in the middle of
// an HTML attribute or a URL). Re-encoding the affected MIME leaf parts as quoted-printable keeps
// every octet: a decoder gives back exactly the original line.
//
// Which parts: leaves whose Content-Transfer-Encoding is 7bit, 8bit, binary or absent and that have a
// line over 998 octets; every other part goes through unchanged, except a base64 or quoted-printable
// part written as unwrapped lines, which is decoded and encoded again (same encoding, same octets).
// A message without MIME headers becomes a text/plain part (charset utf-8 when its body is valid
// UTF-8; otherwise no charset is declared, since guessing one would be a lie, and `note` says so). Header lines over 998 octets are folded at whitespace (RFC 5322 2.2.3);
// one without whitespace within 998 octets is cut there with CRLF SPACE, as Postfix does (its
// unfolded value then has one space more; left whole, Exchange refuses the whole message).
//
// Parsing and encoding MIME is GMime's (the field's standard MIME library, used by Evolution, Geary
// and notmuch), not a parser of our own: multipart boundaries, nested parts and encodings are where
// home-grown MIME code goes wrong. GMime runs only for a message whose spool scan saw a long line
// (QueuedMessage::long_lines): every other message leaves byte for byte and never meets it.
//
// Pure (no I/O, no clock), but heavy for a large message: callers run it on the blocking pool.
#pragma once

#include <string>
#include <string_view>

namespace relay {

// True when a line of `text` (CRLF or LF line ends) has more than 998 octets before its line end.
bool has_long_line(std::string_view text);

// The header block folded at whitespace wherever a line exceeds 998 octets. Only the header (up to
// the first empty line) is touched; the rest of `message` follows unchanged.
std::string fold_long_header_lines(std::string_view message);

struct LongLineFix {
    std::string message;      // CRLF line ends throughout
    int parts_reencoded = 0;  // leaf parts now quoted-printable
    bool headers_folded = false;
    std::string note;         // for the log: what could not be done as wished; empty when nothing
};

// `message`: a whole RFC 5322 message with CRLF line ends.
LongLineFix fix_long_lines(std::string_view message);

}  // namespace relay
