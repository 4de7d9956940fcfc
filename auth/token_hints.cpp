// The token failure table; see token_hints.hpp. Decisions follow the OAuth `error` field (as
// Microsoft advises); AADSTS numbers only sharpen the wording (PROVIDERS.md).
#include "auth/token_hints.hpp"

#include <fmt/format.h>

namespace relay::auth {
namespace {

// "AADSTS700082" out of "AADSTS700082: The refresh token ...", for the cause line.
std::string aadsts_code(const std::string& description) {
    const auto at = description.find("AADSTS");
    if (at == std::string::npos) return {};
    auto end = at + 6;
    while (end < description.size() && description[end] >= '0' && description[end] <= '9') ++end;
    return description.substr(at, end - at);
}

}  // namespace

std::string authorize_command(const conf::Account& account) {
    std::string who = account.email.empty() ? std::string() : " and sign in as " + account.email;
    return fmt::format("run `smtp-oauth2-relay authorize --account {}`{} (or `token import`)", account.name, who);
}

TokenHint token_hint(const TokenError& e, const conf::Account& account) {
    const std::string& d = e.description();
    const std::string code = aadsts_code(d);
    if (e.http_status() == 0 && e.kind() == TokenFailure::temporary)
        return {fmt::format("the token endpoint {} cannot be reached: {}", account.token_url, d),
                "check the host's DNS, firewall or HTTPS proxy and that token_url (or tenant) is right; outbound "
                "HTTPS to the identity platform must be allowed; the relay keeps retrying"};
    if (code == "AADSTS90002" || code == "AADSTS900023" || e.oauth_error() == "invalid_tenant")
        return {fmt::format("wrong tenant: the identity platform does not know tenant \"{}\" ({})", account.tenant,
                            e.oauth_error()),
                "set tenant to your directory's primary domain (e.g. contoso.onmicrosoft.com) or its tenant id, as "
                "shown in Entra ID > Overview"};
    switch (e.kind()) {
    case TokenFailure::invalid_grant:
        return {"the refresh token is expired, revoked or was issued for another app (invalid_grant" +
                    (code.empty() ? std::string() : ", " + code) + "); a person must sign in again",
                authorize_command(account)};
    case TokenFailure::invalid_client:
        if (e.oauth_error() == "client_certificate_unusable")
            return {"the client certificate cannot be used: " + d,
                    fmt::format("fix client_certificate_file / client_key_file for account {} (PEM certificate and its "
                                "unencrypted RSA key)", account.name)};
        // AADSTS700027: assertion signature or certificate unknown; AADSTS700024: outside its time range.
        if (code == "AADSTS700027" || code == "AADSTS700024")
            return {"the client certificate is not registered on the app, has expired, or this machine's clock is "
                    "wrong (" + code + ")",
                    fmt::format("upload the certificate in Entra ID (App registrations > Certificates & secrets) or fix "
                                "client_certificate_file for account {}", account.name)};
        if (code == "AADSTS7000218")
            return {"the app is a confidential client but no client secret is configured (AADSTS7000218)",
                    "set client_secret (or client_secret_file) for account " + account.name +
                        ", or enable \"Allow public client flows\" in the app registration"};
        if (code == "AADSTS700016" || e.oauth_error() == "unauthorized_client")
            return {"the client id is not known in this tenant (" + (code.empty() ? e.oauth_error() : code) + ")",
                    fmt::format("check client_id (Application (client) ID in Entra ID > App registrations > Overview) "
                                "and tenant for account {}", account.name)};
        return {"the client secret is wrong or expired (invalid_client, AADSTS7000215) or the client id is wrong",
                "create a new client secret in Entra ID > App registrations > Certificates & secrets and put its "
                "Value (not its ID) into client_secret for account " + account.name};
    case TokenFailure::consent_required:
        return {"consent for the app's permission (SMTP.Send or Mail.Send) is missing (AADSTS65001)",
                "an admin grants consent in Entra ID > App registrations > API permissions (Grant admin consent), "
                "then " + authorize_command(account)};
    case TokenFailure::temporary:
        return {fmt::format("the token endpoint is temporarily unavailable (HTTP {}, {})", e.http_status(), e.oauth_error()),
                "nothing to do unless it lasts: the relay retries within seconds to a minute and delivers then"};
    case TokenFailure::other:
        break;
    }
    return {e.what(), fmt::format("check token_url, client_id and scope for account {}", account.name)};
}

}  // namespace relay::auth
