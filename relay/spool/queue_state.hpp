// What the relay knows about a queued message besides the message itself, kept next to it so it
// survives restarts and `queue list` can show it: spool_dir/queue/<id>.state (attempts, next try,
// last upstream reply, recipients still to do after a partial delivery), written by the relay only,
// and spool_dir/queue/<id>.hold, a marker created and removed by `queue hold/release` only.
// A .state file is replaced atomically (rename) but not fsync'ed: losing it in a crash only costs
// retry timing (and at worst one more delivery to recipients already served), never a message.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace relay {

struct MessageState {
    unsigned attempts = 0;
    std::chrono::system_clock::time_point next_try{};   // epoch: as soon as possible
    std::string last_reply;
    std::vector<std::string> rcpt_left;                // empty: every envelope recipient
};

std::filesystem::path state_path(const std::filesystem::path& queue_file);
std::filesystem::path hold_path(const std::filesystem::path& queue_file);

// True for queue/ entries that are not messages (sidecars, temp files): ids are plain hex.
bool is_sidecar_name(const std::string& file_name);

std::string format_state(const MessageState& state);
MessageState parse_state(const std::string& text);   // unknown or broken lines are skipped

std::optional<MessageState> read_state(const std::filesystem::path& queue_file);
// Writes queue/<id>.state (temp file + rename). Throws std::system_error on failure.
void write_state(const std::filesystem::path& queue_file, const MessageState& state);
// Removes .state and .hold, ignoring absence.
void remove_sidecars(const std::filesystem::path& queue_file);

}  // namespace relay
