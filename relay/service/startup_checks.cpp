// Ownership and mode checks of the relay's directories at start. See startup_checks.hpp.
#include "relay/service/startup_checks.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "relay/core/log.hpp"

namespace relay {
namespace {

namespace fs = std::filesystem;

[[noreturn]] void untrusted(const fs::path& path, const std::string& why, const std::string& fix) {
    throw std::runtime_error(fmt::format("refusing to start: {} {}; {}", path.string(), why, fix));
}

std::string owner_fix(const fs::path& path, bool directory) {
    return fmt::format("if it is the relay's, run: chown {}{}:{} {}", directory ? "-R " : "", ::geteuid(), ::getegid(),
                       path.string());
}

// One entry (already lstat'ed): owned by us (or by root, who needs no planting), closed to others
// (fixed when not). `search_ok`: others may traverse but not list or write (the spool directory,
// so that sendmail run by any user reaches spool_dir/maildrop, as tmpfiles.d makes it 0711).
// A root-owned entry is trusted but not ours to change: e.g. a token file `authorize` wrote as
// root, which the relay reports as unreadable with the chown to run (and wakes up on the chown).
void check_entry(const fs::path& path, const struct stat& st, bool directory, std::vector<std::string>& fixed,
                 bool search_ok = false) {
    if (st.st_uid != ::geteuid() && st.st_uid != 0)
        untrusted(path, fmt::format("is owned by uid {}, not by the relay's user (uid {})", st.st_uid, ::geteuid()),
                  owner_fix(path, directory) + ", else remove it");
    if (st.st_uid != ::geteuid()) return;
    const mode_t allowed = search_ok ? 011 : 0;
    const mode_t open_bits = st.st_mode & 077 & ~allowed;
    if (open_bits == 0) return;
    const mode_t wanted = st.st_mode & (07700 | allowed);
    if (::chmod(path.c_str(), wanted) != 0)
        untrusted(path, fmt::format("has mode {:04o} and cannot be fixed ({})", st.st_mode & 07777, std::strerror(errno)),
                  fmt::format("run: chmod {:04o} {}", wanted, path.string()));
    fixed.push_back(path.string());
    log::warning("permissions_fixed", {{"path", path.string()},
                                       {"from", fmt::format("{:04o}", st.st_mode & 07777)},
                                       {"to", fmt::format("{:04o}", wanted)},
                                       {"detail", "other users could read or change the relay's files"}});
}

void check_directory(const fs::path& dir, bool follow, std::vector<std::string>& fixed, bool with_files,
                     bool search_ok = false) {
    struct stat st {};
    if ((follow ? ::stat(dir.c_str(), &st) : ::lstat(dir.c_str(), &st)) != 0) {
        if (errno == ENOENT) return;
        untrusted(dir, std::string("cannot be examined: ") + std::strerror(errno), "check the path");
    }
    if (!S_ISDIR(st.st_mode)) untrusted(dir, "is not a directory", "remove it or point the config elsewhere");
    check_entry(dir, st, true, fixed, search_ok);
    if (!with_files) return;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        const fs::path& path = entry.path();
        struct stat fst {};
        if (::lstat(path.c_str(), &fst) != 0) continue;   // gone meanwhile
        if (S_ISLNK(fst.st_mode)) {
            // The relay never makes symlinks; one here was planted to redirect a write or a read.
            if (::unlink(path.c_str()) != 0)
                untrusted(path, "is a symlink the relay did not make and cannot remove", "remove it");
            fixed.push_back(path.string());
            log::warning("symlink_removed", {{"path", path.string()}, {"detail", "the relay never makes symlinks here"}});
            continue;
        }
        if (S_ISDIR(fst.st_mode)) continue;   // a subdirectory is checked on its own when it is one of ours
        if (!S_ISREG(fst.st_mode)) untrusted(path, "is not a regular file", "remove it");
        check_entry(path, fst, false, fixed);
    }
}

}  // namespace

std::vector<std::string> check_private_tree(const fs::path& root, const std::vector<std::string>& subdirs,
                                            const std::vector<std::string>& subdirs_without_files) {
    std::vector<std::string> fixed;
    check_directory(root, /*follow=*/true, fixed, /*with_files=*/false, /*search_ok=*/true);
    for (const auto& sub : subdirs) check_directory(root / sub, /*follow=*/false, fixed, /*with_files=*/true);
    for (const auto& sub : subdirs_without_files) check_directory(root / sub, /*follow=*/false, fixed, /*with_files=*/false);
    return fixed;
}

bool config_exposes_secrets(const fs::path& config_file) {
    struct stat st {};
    if (::stat(config_file.c_str(), &st) != 0 || (st.st_mode & S_IROTH) == 0) return false;
    std::ifstream in(config_file);
    static const std::regex secret_key(R"(^\s*(client_secret|password|upstream_password)\s*=)");
    for (std::string line; std::getline(in, line);)
        if (std::regex_search(line, secret_key)) return true;
    return false;
}

}  // namespace relay
