// The trace header (RFC 5321 4.4) the relay prepends to each message it accepts, written at spool
// time as Postfix's cleanup does: the queue file then holds the message exactly as it will leave, and
// `queue show`, DSNs and both transports see the same bytes. Pure: no clock, no I/O.
//
//   Received: from printer.lan ([192.168.1.20])
//           by relay.contoso.com (smtp-oauth2-relay) with ESMTPA id 0000018C2F4A1B2C0001
//           for <it@contoso.com>; Mon, 30 Nov 2026 14:34:41 +0000
//
// "for" is written only when the message has exactly one recipient: with several, naming one would
// tell every recipient about another (a Bcc among them), and naming all would undo Bcc altogether.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "relay/core/envelope.hpp"

namespace relay {

// The HELO as it may appear in the header: printable ASCII only, without the characters that would
// change the field's structure ( ( ) ; \ [ ] ), at most 64 characters; "unknown" when nothing is left.
// An address literal ("[192.0.2.1]", "[IPv6:::1]") is kept as it is.
std::string sanitize_helo(std::string_view helo);

// Whether a client's message (its first bytes, `data`) begins with a header: true for a field name
// and ':' or for an empty line (the header's end); false for anything else, whose body starts at
// once: a field prepended to it needs an empty line after it, or the body's first line would be
// read as a broken header field (Postfix's cleanup adds that line too). nullopt: too few bytes to tell.
std::optional<bool> starts_with_header(std::string_view data);

// RFC 5322 3.3 date-time in UTC ("Mon, 30 Nov 2026 14:34:41 +0000"); no locale involved.
std::string rfc5322_date(std::chrono::system_clock::time_point when);

// The complete field, folded, ending with CRLF. `by_host` is [relay] hostname. An envelope without a
// protocol is a local submission (sendmail, before it speaks SMTP to the relay): `helo` then holds
// the submitting user's login name and the field reads "from local (user NAME) ... with local", as
// Exim writes it; `queue_id` may be empty (not known yet), and " id" is then left out.
std::string received_header(const Envelope& envelope, std::string_view by_host, std::string_view queue_id,
                            std::chrono::system_clock::time_point when);

}  // namespace relay
