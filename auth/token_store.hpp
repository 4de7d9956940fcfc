// Owns the token files under state_dir/tokens/: one JSON file per account holding the refresh
// token and the cached access token. Files are mode 0600 and replaced atomically and durably
// (relay/durable_file.hpp). Blocking file I/O: call from a worker thread in the daemon.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace relay::auth {

struct StoredTokens {
    std::string refresh_token;
    std::string access_token;
    std::chrono::system_clock::time_point access_expires_at{};
    std::chrono::system_clock::time_point access_obtained_at{};
    std::chrono::system_clock::time_point last_refresh{};   // last successful refresh
    bool repaired = false;   // load() found a nonsense expiry, dropped the access token and rewrote the file
};

class TokenStore {
public:
    explicit TokenStore(std::filesystem::path state_dir);

    // nullopt when the account has no file yet. Throws std::runtime_error naming the file when it
    // exists but cannot be read or parsed (the message never contains token text). A stored expiry
    // that makes no sense is repaired (see StoredTokens::repaired).
    std::optional<StoredTokens> load(const std::string& account) const;
    void save(const std::string& account, const StoredTokens& tokens) const;

    std::filesystem::path path_for(const std::string& account) const;
    // Modification stamp of the account's file (nullopt when absent), to notice external updates
    // such as `token import` while the relay runs.
    std::optional<std::filesystem::file_time_type> stamp(const std::string& account) const;

private:
    std::filesystem::path dir_;
};

}  // namespace relay::auth
