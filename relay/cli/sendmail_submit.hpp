// sendmail's submission to the relay, shared by the `sendmail` command and the relay's maildrop
// pickup (maildrop.hpp): the message prepared (sendmail_message.hpp), local names resolved through
// [aliases], the alias_file and the default domain (conf/aliases.hpp), then one SMTP transaction with
// the relay's first listen address. A short blocking client: it runs once per message, in the
// sendmail process or on the pickup's own thread, never on the relay's I/O thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "conf/config.hpp"
#include "relay/cli/sendmail_message.hpp"

namespace relay::sendmail {

// sysexits.h, the codes sendmail(8) callers act on.
constexpr int EX_USAGE_ = 64, EX_DATAERR_ = 65, EX_NOINPUT_ = 66, EX_NOUSER_ = 67, EX_UNAVAILABLE_ = 69,
              EX_TEMPFAIL_ = 75, EX_PROTOCOL_ = 76, EX_CONFIG_ = 78;

struct SubmitResult {
    int exit_code = 0;            // 0: queued by the relay
    bool reached_relay = false;   // false: nobody answered (the maildrop can keep the message)
    std::string problem;          // for stderr or the log; empty on success
    std::vector<std::string> recipients;   // after alias resolution
};

// The relay's address as a client reaches it (a wildcard listen address over loopback).
conf::HostPort relay_address(const conf::Config& config);

// Bare names and local domains ("root", "root@localhost") to addresses, deduplicated.
std::vector<std::string> resolve_aliases(const conf::Config& config, const std::vector<std::string>& recipients);

// Prepares `input` with `options` and submits it. `user` is the submitting user's name, for the
// traditional user@hostname sender when the config has no default account.
SubmitResult submit_message(const conf::Config& config, Options options, std::string_view input, const std::string& user);

// -bs: bytes between stdin/stdout and the relay's SMTP service. Returns the exit code. When the
// relay cannot be reached and `reached` is given, it is set false and nothing is read or written,
// so the caller can answer from the maildrop instead (sendmail_local_smtp.hpp).
int smtp_on_stdin(const conf::HostPort& server, bool* reached = nullptr);

}  // namespace relay::sendmail
