// The configuration loader (config_loader.cpp), shared with the account checks it runs on every
// [accounts.NAME] table (account_checks.cpp). Internal to conf/: other modules use config.hpp.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "conf/config.hpp"
#include "conf/config_keys.hpp"
#include "conf/presets.hpp"
#include "conf/value_reader.hpp"

namespace relay::conf::detail {

class Loader {
public:
    Loader(std::string file, std::filesystem::path base_dir) : file_(file), values_(std::move(file), std::move(base_dir)) {}

    Config load(const toml::table& root);
    std::vector<std::string> errors() const { return values_.errors(); }

private:
    template <class Where>
    void fail(const Where& where, std::string message) { values_.fail(where, std::move(message)); }

    // The key's value when present, else the table itself (for "missing" and cross-key problems).
    static const toml::source_region& position_of(const toml::table& table, std::string_view key) {
        const toml::node* node = table.get(key);
        return node ? node->source() : table.source();
    }

    template <class T, std::size_t N>
    void read_table(const toml::table& table, const KeySpec<T> (&specs)[N], const std::string& label,
                    std::string_view shown_as, T& target);
    void read_accounts(const toml::table& root, Config& config);
    void read_users(const toml::table& root, Config& config);
    void read_aliases(const toml::table& root, Config& config);
    void check_account(const toml::table& table, const std::string& label, Account& account);
    void check_sign_in_endpoints(const toml::table& table, const std::string& label, Account& account,
                                 const Preset* preset);
    void check_account_auth(const toml::table& table, const std::string& label, Account& account);
    void check_graph(const toml::table& table, const std::string& label, Account& account);
    void check_relay(const toml::table& table, Config& config);
    void check_hostile_limits(const toml::table& table, RelaySettings& relay);
    void check_sizes(const toml::table& relay_table, Config& config);

    std::string file_;
    detail::ValueReader values_;
};

}  // namespace relay::conf::detail
