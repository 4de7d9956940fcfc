// rewrite_sender (issue 11 item 3): which sender a message carries upstream. Exchange refuses a
// mailbox's mail from any sender it may not send as (554 5.2.252 SendAsDenied), and it checks the
// From: header as well as the envelope (PROVIDERS.md), so both are rewritten to the account's email,
// as Postfix's smtp_generic_maps is used for: cron's root@host, the null sender <>, a device with a
// fixed wrong From. The original From: is kept in a Reply-To: when the message has none, so a reply
// still reaches whoever wrote it; a Sender: the mailbox may not use is dropped with the old From:.
//
// Done at delivery on a copy, never in the spool: the stored message stays what the client sent
// (a config change applies to queued mail too), and only the header block is rebuilt; the body
// streams untouched, the same for the SMTP and Graph transports. Pure: text in, text out.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "conf/config.hpp"

namespace relay {

// The envelope sender sent upstream for `mail_from` ("" = null sender) under the account's policy.
std::string upstream_sender(const conf::Account& account, std::string_view mail_from);

// True when the header may need rewriting, i.e. it is worth reading.
inline bool rewrites_header(const conf::Account& account) { return account.rewrite_sender != conf::RewriteSender::never; }

struct HeaderRewrite {
    std::string header;             // replaces the first `replaced` bytes of the stored message
    std::size_t replaced = 0;
    std::string original_from;      // the From: value before (unfolded), "" when there was none
};

// `start` is the beginning of the stored message (CRLF lines), at least its whole header unless
// the message is larger than what was read; `complete`: `start` is the whole message. nullopt when
// nothing changes or the header's end was not within `start` (too large a header is left alone).
std::optional<HeaderRewrite> rewrite_from_header(const conf::Account& account, std::string_view start, bool complete);

// The first address of the From: field, lower case; "" when there is none or the header's end is
// not within `start`. The sender Exchange checks besides the envelope (and the only one Graph has).
std::string header_from_address(std::string_view start, bool complete);

}  // namespace relay
