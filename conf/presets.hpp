// Provider presets: what an account gets when it names a provider (token, sign-in and SMTP
// endpoints, scopes), and Microsoft's national clouds (PROVIDERS.md). Internal to conf/.
#pragma once

#include <string>
#include <string_view>

#include "conf/config.hpp"

namespace relay::conf::detail {

struct Preset {
    Provider provider;
    std::string_view token_url;  // "{login}" is replaced by login_host(), "{tenant}" by the account's tenant
    std::string_view scope;
    std::string_view upstream;
    std::string_view authorize_url = {};
    std::string_view devicecode_url = {};  // empty: the provider offers no device flow for mail scopes
};

// The preset of a provider; nullptr for "custom".
const Preset* find_preset(Provider provider);

// Microsoft's national clouds: same paths, other login and SMTP hosts, and the cloud's own
// Exchange resource in the scopes.
struct MicrosoftCloud {
    Cloud cloud;
    std::string_view login_host;       // the {login} host in the preset URLs
    std::string_view delegated_scope;
    std::string_view app_scope;        // client_credentials: the resource's .default (SMTP.SendAsApp)
    std::string_view upstream;
    // transport = "graph": the cloud's Graph host; its token audience differs from SMTP's, so the
    // scopes differ too (delegated Mail.Send, app-only the Graph resource's .default).
    std::string_view graph_url;
    std::string_view graph_delegated_scope;
    std::string_view graph_app_scope;
};

const MicrosoftCloud& microsoft_cloud(Cloud cloud);

// The Microsoft identity platform host of the account's cloud: the one place that picks it.
std::string login_host(const Account& account);

// A preset URL for this account: "{login}" and "{tenant}" filled in.
std::string preset_url(std::string_view pattern, const Account& account);

// http:// is acceptable for an endpoint only when the request cannot leave the machine.
bool is_acceptable_token_url(std::string_view url);

}  // namespace relay::conf::detail
