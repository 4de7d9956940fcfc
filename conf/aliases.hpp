// Local recipients ("root", "www-data", "root@localhost") as a Debian host's programs address them:
// cron mails "root", logwatch and smartd mail "root", PHP scripts mail "www-data". Office 365 knows
// none of them, so they resolve, in this order, through the config's [aliases] table, then the
// system's aliases(5) file (/etc/aliases), then to "name@" the default account's domain, as Postfix
// resolves local names through alias_maps and then $myorigin. Pure: the caller reads the files.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace relay::conf {

// name (lower case) -> targets: addresses or further local names.
using AliasTable = std::map<std::string, std::vector<std::string>>;

// Parses aliases(5): "name: target, target", '#' comments, continuation lines starting with white
// space. Targets a relay cannot deliver to (|command, /file, :include:) are left out and named in
// `skipped` ("name: |/usr/bin/procmail"), so the caller can say why they are ignored.
AliasTable parse_alias_file(std::string_view text, std::vector<std::string>* skipped = nullptr);

struct AliasResolver {
    const AliasTable* config_aliases = nullptr;   // [aliases] in the config, consulted first
    const AliasTable* system_aliases = nullptr;   // /etc/aliases
    std::string default_domain;                   // the default account's mail domain
    std::vector<std::string> local_domains;       // "localhost", the relay's hostname: treated as bare names

    // Full addresses for `recipient`, deduplicated; an address with a non-local domain is kept as it
    // is. Alias loops and chains deeper than 16 end at the name itself (resolved to the default domain).
    std::vector<std::string> resolve(std::string_view recipient) const;
};

}  // namespace relay::conf
