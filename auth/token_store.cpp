// Token files: state_dir/tokens/<account>.json, a small JSON object with the refresh token, the
// cached access token and unix-second timestamps. The directory is 0700 and files 0600 because
// they hold bearer credentials; writes go through write_file_durably so a crash leaves either the
// old or the new file, never a torn one. Error messages name the file, never its contents.
#include "auth/token_store.hpp"

#include <cctype>
#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdexcept>
#include <system_error>

#include <boost/json.hpp>

#include "auth/token_endpoint.hpp"
#include "relay/core/durable_file.hpp"

namespace relay::auth {
namespace {

namespace json = boost::json;
using std::chrono::system_clock;

// Account names come from the config ([accounts.X]); they become file names, so anything that
// could walk out of the tokens directory or hide a file is refused.
void check_account_name(const std::string& account) {
    bool ok = !account.empty() && account.size() <= 128 && account.front() != '.';
    for (unsigned char c : account)
        if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.')) ok = false;
    if (!ok) throw std::invalid_argument("invalid account name for a token file: \"" + account + "\"");
}

std::int64_t to_unix(system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// 2096: far beyond any token, well within system_clock's nanosecond range (2262).
constexpr std::int64_t kLatestUnix = 4'000'000'000;

system_clock::time_point from_unix(std::int64_t s) { return system_clock::time_point(std::chrono::seconds(s)); }

std::runtime_error corrupt(const std::filesystem::path& file, std::string_view why) {
    return std::runtime_error("token file " + file.string() + " is unusable: " + std::string(why));
}

}  // namespace

TokenStore::TokenStore(std::filesystem::path state_dir) : dir_(std::move(state_dir) / "tokens") {}

std::filesystem::path TokenStore::path_for(const std::string& account) const {
    check_account_name(account);
    return dir_ / (account + ".json");
}

std::optional<StoredTokens> TokenStore::load(const std::string& account) const {
    std::filesystem::path file = path_for(account);
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw corrupt(file, std::generic_category().message(errno));
    }
    std::string text;
    char buffer[4096];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int err = errno;
            ::close(fd);
            throw corrupt(file, std::generic_category().message(err));
        }
        if (n == 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > 1 << 20) {
            ::close(fd);
            throw corrupt(file, "larger than 1 MiB");
        }
    }
    ::close(fd);

    boost::system::error_code ec;
    json::value parsed = json::parse(text, ec);
    if (ec || !parsed.is_object()) throw corrupt(file, "not a JSON object");
    const json::object& o = parsed.as_object();

    StoredTokens tokens;
    auto get_string = [&](std::string_view key, std::string& out) {
        if (const json::value* v = o.if_contains(key)) {
            if (!v->is_string()) throw corrupt(file, std::string(key) + " is not a string");
            out = std::string(v->as_string());
        }
    };
    bool nonsense = false;
    auto get_time = [&](std::string_view key, system_clock::time_point& out) {
        if (const json::value* v = o.if_contains(key)) {
            if (!v->is_int64() && !v->is_uint64()) throw corrupt(file, std::string(key) + " is not an integer");
            // A time the clock cannot hold (it would overflow into undefined behaviour) is dropped.
            const bool representable = v->is_int64() ? v->as_int64() >= 0 && v->as_int64() <= kLatestUnix
                                                     : v->as_uint64() <= static_cast<std::uint64_t>(kLatestUnix);
            if (representable) out = from_unix(v->to_number<std::int64_t>());
            else nonsense = true;
        }
    };
    get_string("refresh_token", tokens.refresh_token);
    get_string("access_token", tokens.access_token);
    get_time("access_expires_at", tokens.access_expires_at);
    get_time("access_obtained_at", tokens.access_obtained_at);
    get_time("last_refresh", tokens.last_refresh);
    // Issue 13, item 3: a stored expiry before the token was obtained, or further than any
    // lifetime the relay accepts, came from a broken endpoint (or an older relay that stored a
    // negative expiry and looped after each restart). The cached access token is dropped, so the
    // next delivery refreshes it, and the file is rewritten so the nonsense is gone for good.
    // (Files from before access_obtained_at was stored have only the expiry.)
    const auto lifetime = tokens.access_expires_at - tokens.access_obtained_at;
    if (tokens.access_obtained_at != system_clock::time_point{} &&
        (lifetime < system_clock::duration::zero() || lifetime > kMaxExpiresIn))
        nonsense = true;
    if (tokens.access_expires_at > system_clock::now() + kMaxExpiresIn) nonsense = true;
    if (nonsense) {
        tokens.access_token.clear();
        tokens.access_expires_at = {};
        tokens.access_obtained_at = {};
        tokens.repaired = true;
        try {
            save(account, tokens);
        } catch (const std::exception&) {
            // Best effort: the tokens in memory are repaired; the next successful refresh saves.
        }
    }
    return tokens;
}

void TokenStore::save(const std::string& account, const StoredTokens& tokens) const {
    std::filesystem::path file = path_for(account);
    ensure_directory(dir_, 0700);
    json::object o;
    o["refresh_token"] = tokens.refresh_token;
    o["access_token"] = tokens.access_token;
    o["access_expires_at"] = to_unix(tokens.access_expires_at);
    o["access_obtained_at"] = to_unix(tokens.access_obtained_at);
    o["last_refresh"] = to_unix(tokens.last_refresh);
    write_file_durably(file, json::serialize(o) + "\n", 0600);
}

std::optional<std::filesystem::file_time_type> TokenStore::stamp(const std::string& account) const {
    // The inode's change time, not its modification time: a chown or chmod that makes the file
    // readable for the relay (after `authorize` ran as root) changes only ctime, and must wake the
    // account as a new token does. ctime also moves on every write and rename into place.
    struct stat st {};
    if (::stat(path_for(account).c_str(), &st) != 0) return std::nullopt;
    const auto since_epoch = std::chrono::seconds(st.st_ctim.tv_sec) + std::chrono::nanoseconds(st.st_ctim.tv_nsec);
    return std::chrono::file_clock::from_sys(std::chrono::sys_time<std::chrono::nanoseconds>(since_epoch));
}

}  // namespace relay::auth
