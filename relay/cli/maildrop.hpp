// The maildrop: where sendmail leaves a message when the relay cannot take it now (stopped,
// restarting) or when the caller may not read the config (an ordinary user's cron job; the config
// holds secrets and is 0640), as Postfix's postdrop does. spool_dir/maildrop/ is mode 1733, owned by
// the relay: anyone may create a file there, nobody but the relay may list it, so a user cannot find
// another's message (names are 128 random bits), and the sticky bit keeps users from removing or
// renaming others' files. A file holds the sendmail arguments and the message as given; the relay's
// Pickup submits it exactly as sendmail would have (same options, aliases and checks) and removes it
// once the relay has queued it. Nothing is lost while the relay is down.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "conf/config.hpp"

namespace relay::maildrop {

// The file's content: a version line, one "arg ..." line per argument (percent-encoded), an empty
// line, then the message bytes untouched.
std::string encode(const std::vector<std::string>& args, std::string_view message);
std::optional<std::pair<std::vector<std::string>, std::string>> decode(std::string_view content);

// spool_dir/maildrop. Without a readable config: $SMTP_OAUTH2_RELAY_SPOOL, else the package's spool.
std::filesystem::path directory(const std::filesystem::path& spool_dir);
std::filesystem::path default_spool_dir();

// Writes `content` as a new file in `dir` (a hidden temp name, then renamed), mode 0644 so the
// relay can read it; the directory's mode is what keeps it from other users. Returns an error
// message, empty on success.
std::string drop(const std::filesystem::path& dir, std::string_view content);

// Submits what waits in spool_dir/maildrop on a thread of its own (blocking file reads and a short
// SMTP client, never on the I/O thread), when a file appears (inotify) and every 10 s for files the
// relay could not take yet. Creates the directory (mode 1733) at start.
class Pickup {
public:
    explicit Pickup(std::shared_ptr<const conf::Config> config);
    ~Pickup();
    Pickup(const Pickup&) = delete;
    Pickup& operator=(const Pickup&) = delete;

    void start();          // throws std::system_error when the directory cannot be made
    // Asks the thread to stop after the file in hand, without waiting: safe on the I/O thread,
    // whose SMTP server may be answering that very file. stop() then joins (off the I/O thread).
    void request_stop();
    void stop();
    void update_config(std::shared_ptr<const conf::Config> config);

private:
    void run();
    void scan();
    std::shared_ptr<const conf::Config> config() const;

    mutable std::mutex mutex_;
    std::shared_ptr<const conf::Config> config_;
    std::filesystem::path dir_;
    int inotify_fd_ = -1;
    int wake_fd_ = -1;   // eventfd: stop()
    std::atomic<bool> stopping_{false};
    std::thread thread_;
};

}  // namespace relay::maildrop
