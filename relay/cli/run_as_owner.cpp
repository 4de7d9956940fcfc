// Admin commands under sudo (issue 12 item 1). An admin runs `sudo smtp-oauth2-relay queue delete ID`
// or `sudo smtp-oauth2-relay authorize`; files those commands create (request files, hold markers,
// token files) must be readable by the relay, which runs as the owner of spool_dir and state_dir. So
// a command run as root becomes that owner, as Postfix's postsuper and postqueue act as the mail
// owner, before it touches anything; a command run by another user that would leave a file the relay
// cannot read is refused before it acts, never "done" with exit 0.
#include <cerrno>
#include <cstring>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "relay/cli/cli.hpp"

namespace relay::cli {

namespace {
std::string user_name(uid_t uid) {
    if (const passwd* pw = ::getpwuid(uid)) return pw->pw_name;
    return "uid " + std::to_string(uid);
}
}  // namespace

std::string act_as_owner_of(const std::filesystem::path& dir, std::string_view what) {
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0) {
        // Not there yet (a first `authorize` before the package made state_dir): whoever runs this
        // creates it, and the relay started later by the same user reads it.
        return {};
    }
    const uid_t euid = ::geteuid();
    if (euid == st.st_uid) return {};
    if (euid != 0) {
        return fmt::format("{} must run as root (sudo) or as {}, the owner of {}: files made by {} would be unreadable "
                           "for the relay", what, user_name(st.st_uid), dir.string(), user_name(euid));
    }
    // Root: drop to the owner for good (supplementary groups first, then the group, then the user).
    const passwd* pw = ::getpwuid(st.st_uid);
    const gid_t gid = pw ? pw->pw_gid : st.st_gid;
    const int groups_rc = pw ? ::initgroups(pw->pw_name, gid) : ::setgroups(0, nullptr);
    if (groups_rc != 0 || ::setgid(gid) != 0 || ::setuid(st.st_uid) != 0 || ::geteuid() != st.st_uid)
        return fmt::format("{}: cannot switch to {}, the owner of {}: {}", what, user_name(st.st_uid), dir.string(),
                           std::strerror(errno));
    return {};
}

}  // namespace relay::cli
