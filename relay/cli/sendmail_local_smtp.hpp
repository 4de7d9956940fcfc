// `sendmail -bs` when the relay cannot be reached or the caller may not read the config (PHP's
// Symfony Mailer and Laravel run `sendmail -bs` as www-data, which may not read the 0640 config):
// the relay's own SMTP state machine (relay/smtp/server_session.hpp) answers on stdin/stdout, and
// each message it accepts goes into the maildrop as `-f FROM -i -- RCPT...` with its body, as
// Postfix's `sendmail -bs` hands messages to postdrop. The relay submits the file when it runs.
#pragma once

#include <cstdint>
#include <filesystem>

namespace relay::sendmail {

// Runs the session until QUIT or the end of stdin; returns the exit code (0, or 75 when stdout
// fails). A message the maildrop cannot take gets 451 4.3.0 in the session.
int smtp_on_stdin_to_maildrop(const std::filesystem::path& maildrop_dir, std::uint64_t max_message_size);

}  // namespace relay::sendmail
