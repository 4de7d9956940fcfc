// Provider presets and Microsoft's national clouds; see presets.hpp.
#include "conf/presets.hpp"

#include <iterator>

#include "conf/config_detail.hpp"

namespace relay::conf::detail {
namespace {

const Preset presets[] = {
    {Provider::microsoft, "https://{login}/{tenant}/oauth2/v2.0/token",
     "https://outlook.office.com/SMTP.Send offline_access", "smtp.office365.com:587",
     "https://{login}/{tenant}/oauth2/v2.0/authorize", "https://{login}/{tenant}/oauth2/v2.0/devicecode"},
    // Google refuses the device flow for https://mail.google.com/, so it has no devicecode_url.
    {Provider::google, "https://oauth2.googleapis.com/token", "https://mail.google.com/", "smtp.gmail.com:587",
     "https://accounts.google.com/o/oauth2/auth"},
};

const MicrosoftCloud microsoft_clouds[] = {
    {Cloud::global, "login.microsoftonline.com", "https://outlook.office.com/SMTP.Send offline_access",
     "https://outlook.office365.com/.default", "smtp.office365.com:587", "https://graph.microsoft.com",
     "https://graph.microsoft.com/Mail.Send offline_access", "https://graph.microsoft.com/.default"},
    {Cloud::usgov, "login.microsoftonline.us", "https://outlook.office365.us/SMTP.Send offline_access",
     "https://outlook.office365.us/.default", "smtp.office365.us:587", "https://graph.microsoft.us",
     "https://graph.microsoft.us/Mail.Send offline_access", "https://graph.microsoft.us/.default"},
    {Cloud::china, "login.partner.microsoftonline.cn", "https://partner.outlook.cn/SMTP.Send offline_access",
     "https://partner.outlook.cn/.default", "smtp.partner.outlook.cn:587", "https://microsoftgraph.chinacloudapi.cn",
     "https://microsoftgraph.chinacloudapi.cn/Mail.Send offline_access",
     "https://microsoftgraph.chinacloudapi.cn/.default"},
};

}  // namespace

const MicrosoftCloud& microsoft_cloud(Cloud cloud) {
    for (const auto& c : microsoft_clouds)
        if (c.cloud == cloud) return c;
    return microsoft_clouds[0];
}

const Preset* find_preset(Provider provider) {
    for (const auto& p : presets)
        if (p.provider == provider) return &p;
    return nullptr;
}

std::string login_host(const Account& account) {
    return std::string(microsoft_cloud(account.cloud).login_host);
}

std::string preset_url(std::string_view pattern, const Account& account) {
    std::string url(pattern);
    if (auto at = url.find("{login}"); at != std::string::npos) url.replace(at, 7, login_host(account));
    if (auto at = url.find("{tenant}"); at != std::string::npos) url.replace(at, 8, account.tenant);
    return url;
}

bool is_acceptable_token_url(std::string_view url) {
    if (url.starts_with("https://")) return url.size() > 8;
    if (!url.starts_with("http://")) return false;
    std::string_view authority = url.substr(7);
    authority = authority.substr(0, authority.find_first_of("/?#"));
    if (authority.find('@') != std::string_view::npos) return false;
    std::string_view host = authority;
    if (host.starts_with('[')) host = host.substr(1, host.find(']') - 1);
    else host = host.substr(0, host.find(':'));
    return is_loopback_host(host);
}

}  // namespace relay::conf::detail
