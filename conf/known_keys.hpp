// Every key the loader knows, table by table, straight from its key tables (config_keys.hpp): the list
// the generated man page and the example config are checked against, so no key goes undocumented.
#pragma once

#include <string>
#include <vector>

namespace relay::conf {

struct KnownKey {
    std::string table;          // "relay", "users", "accounts", "aliases"
    std::string name;           // "listen"
    std::string default_toml;   // as written in the file; empty: no default
};

std::vector<KnownKey> known_keys();

}  // namespace relay::conf
