// The rules of one [accounts.NAME] table that span several keys: what the provider preset and the
// national cloud fill in, the credentials each auth mode needs, the sign-in endpoints `authorize`
// uses, Graph's own constraints, and clear text only to a loopback upstream. Each problem is
// reported at the key it concerns (file:line:col), with the rest of the loader's (config_loader.cpp).
#include "conf/loader.hpp"

#include <tuple>

#include <fmt/format.h>

#include "conf/config_detail.hpp"
#include "conf/redirect_uri.hpp"

namespace relay::conf::detail {

void Loader::check_account(const toml::table& table, const std::string& label, Account& account) {
    if (table.contains("client_secret") && table.contains("client_secret_file"))
        fail(position_of(table, "client_secret_file"), label + ": set client_secret or client_secret_file, not both");
    if (!account.tenant.empty() && !detail::is_host_name(account.tenant))
        fail(position_of(table, "tenant"), fmt::format("{}.tenant: {} is not a tenant name or id", label, quote_value(account.tenant)));
    if (!account.email.empty() && account.email.find('@') == std::string::npos)
        fail(position_of(table, "email"), label + ".email: expected a mailbox address such as user@example.com");
    // Refused at MAIL FROM, an unknown sender never reaches delivery, so "unallowed" would never apply.
    if (account.refuse_unknown_senders && account.rewrite_sender == RewriteSender::unallowed)
        fail(position_of(table, "rewrite_sender"),
             label + ": rewrite_sender = \"unallowed\" never applies with refuse_unknown_senders = true "
                     "(unknown senders are refused at MAIL FROM); choose one");

    const Preset* preset = find_preset(account.provider);
    const bool has_preset = preset != nullptr;
    const auto missing = [&](std::string_view key) {
        fail(table.source(), fmt::format("{}: missing required key '{}' in [{}] (provider \"custom\" has no preset)",
                                         label, key, label));
    };
    const bool app = account.auth == AuthMode::client_credentials;
    const MicrosoftCloud* cloud = account.provider == Provider::microsoft ? &microsoft_cloud(account.cloud) : nullptr;
    // Basic or no upstream auth needs no token, so none of the OAuth endpoints or ids.
    const bool graph = account.transport == TransportKind::graph;
    const bool needs_token = graph || account.upstream_auth == UpstreamAuth::xoauth2 ||
                             account.upstream_auth == UpstreamAuth::oauthbearer;
    if (needs_token && !table.contains("client_id"))
        fail(table.source(), fmt::format("{}: missing required key 'client_id' in [{}]", label, label));
    // The shipped config's all-zero id would only fail later, at the provider, as AADSTS700016.
    if (needs_token && !account.client_id.empty() &&
        account.client_id.find_first_not_of("0-") == std::string::npos)
        fail(position_of(table, "client_id"),
             fmt::format("{}.client_id: {} is the example's placeholder; use the Application (client) ID of "
                         "your app registration (Entra ID > App registrations > Overview)", label, account.client_id));
    if (table.contains("token_url")) {
        if (!account.token_url.empty() && !is_acceptable_token_url(account.token_url))
            fail(position_of(table, "token_url"),
                 label + ".token_url: must be an https:// URL (http:// only for a loopback host)");
    } else if (!needs_token) {
        // nothing to fill: this account never asks for a token
    } else if (!has_preset) {
        missing("token_url");
    } else if (account.provider == Provider::microsoft && !table.contains("tenant")) {
        fail(table.source(), fmt::format("{}: missing required key 'tenant' in [{}] (the Microsoft token URL "
                                         "needs it, e.g. \"contoso.onmicrosoft.com\"; or set token_url)", label, label));
    } else {
        account.token_url = preset_url(preset->token_url, account);
    }
    check_sign_in_endpoints(table, label, account, preset);
    if (!table.contains("scope") && needs_token) {
        if (cloud && graph) account.scope = app ? cloud->graph_app_scope : cloud->graph_delegated_scope;
        else if (graph) missing("scope");
        else if (cloud) account.scope = app ? cloud->app_scope : cloud->delegated_scope;
        else if (has_preset && !app) account.scope = preset->scope;
        else if (!has_preset) missing("scope");
    }
    if (!table.contains("upstream")) {
        if (cloud) account.upstream = *parse_host_port(cloud->upstream);
        else if (has_preset) account.upstream = *parse_host_port(preset->upstream);
        else if (!graph) missing("upstream");
    }
    if (table.contains("cloud") && account.provider != Provider::microsoft)
        fail(position_of(table, "cloud"), label + ".cloud: only provider \"microsoft\" has national clouds");
    check_account_auth(table, label, account);
    check_graph(table, label, account);
    // Without TLS the access token and the mail cross the network in clear text (RFC 7628 section 5).
    if (account.upstream_tls == UpstreamTls::none && !account.upstream.host.empty() &&
        !detail::is_loopback_host(account.upstream.host))
        fail(position_of(table, "upstream_tls"),
             fmt::format("{}.upstream_tls: \"none\" would send the access token and mail unencrypted; it is allowed "
                         "only for a loopback upstream (127.0.0.0/8, ::1, localhost), not {}",
                         label, account.upstream.host));
}

// redirect_uri, authorize_url, devicecode_url: what `authorize` needs. A missing endpoint is not an
// error here (the relay itself never uses them); `authorize` says what to set.
void Loader::check_sign_in_endpoints(const toml::table& table, const std::string& label, Account& account,
                                     const Preset* preset) {
    if (!parse_loopback_redirect(account.redirect_uri))
        fail(position_of(table, "redirect_uri"),
             fmt::format("{}.redirect_uri: {} must be an http:// URL on a loopback host (localhost, 127.0.0.1 or "
                         "[::1]) with an optional port and path, e.g. \"http://localhost\"",
                         label, quote_value(account.redirect_uri)));
    const bool tenant_known = account.provider != Provider::microsoft || table.contains("tenant");
    for (auto [key, member, pattern] : {std::tuple{"authorize_url", &Account::authorize_url,
                                                   preset ? preset->authorize_url : std::string_view{}},
                                        std::tuple{"devicecode_url", &Account::devicecode_url,
                                                   preset ? preset->devicecode_url : std::string_view{}}}) {
        if (table.contains(key)) {
            if (!is_acceptable_token_url(account.*member))
                fail(position_of(table, key),
                     fmt::format("{}.{}: must be an https:// URL (http:// only for a loopback host)", label, key));
        } else if (!pattern.empty() && tenant_known) {
            account.*member = preset_url(pattern, account);
        }
    }
}

// The credentials each auth mode needs: exactly one client credential for app-only accounts, a
// password for basic upstream auth, and nothing that would be silently ignored.
void Loader::check_account_auth(const toml::table& table, const std::string& label, Account& account) {
    const bool app = account.auth == AuthMode::client_credentials;
    const bool has_secret = table.contains("client_secret") || table.contains("client_secret_file");
    const bool has_cert = table.contains("client_certificate_file"), has_key = table.contains("client_key_file");
    if (has_cert != has_key)
        fail(position_of(table, has_cert ? "client_certificate_file" : "client_key_file"),
             label + ": client_certificate_file and client_key_file go together (the certificate and its private key)");
    if ((has_cert || has_key) && !app)
        fail(position_of(table, has_cert ? "client_certificate_file" : "client_key_file"),
             label + ": a client certificate is used only with auth = \"client_credentials\"");
    if (app && has_secret && (has_cert || has_key))
        fail(position_of(table, has_cert ? "client_certificate_file" : "client_key_file"),
             label + ": set client_secret or a client certificate, not both");
    if (app && account.provider == Provider::google)
        fail(position_of(table, "auth"), label + ".auth: Google offers no client credentials grant for Gmail; "
                                                 "use auth = \"delegated\"");
    else if (app && !has_secret && !has_cert && !has_key && account.upstream_auth != UpstreamAuth::none)
        fail(position_of(table, "auth"), label + ": auth = \"client_credentials\" needs client_secret (or "
                                                 "client_secret_file) or client_certificate_file + client_key_file");

    const bool basic = account.upstream_auth == UpstreamAuth::plain || account.upstream_auth == UpstreamAuth::login;
    const bool has_password = table.contains("upstream_password") || table.contains("upstream_password_file");
    if (table.contains("upstream_password") && table.contains("upstream_password_file"))
        fail(position_of(table, "upstream_password_file"), label + ": set upstream_password or upstream_password_file, not both");
    if (basic && !has_password)
        fail(position_of(table, "upstream_auth"), fmt::format("{}: upstream_auth = \"{}\" needs upstream_password or "
                                                              "upstream_password_file", label, to_string(account.upstream_auth)));
    if (!basic && (has_password || table.contains("upstream_user"))) {
        const char* key = table.contains("upstream_user")       ? "upstream_user"
                          : table.contains("upstream_password") ? "upstream_password"
                                                                : "upstream_password_file";
        fail(position_of(table, key),
             label + ": upstream_user and upstream_password are used only with upstream_auth \"plain\" or \"login\"");
    }
    if (account.upstream_user.empty()) account.upstream_user = account.email;
}

// transport = "graph": Graph needs a Microsoft token and an https endpoint; SMTP-only settings would
// be silently ignored, so they are errors.
void Loader::check_graph(const toml::table& table, const std::string& label, Account& account) {
    const bool graph = account.transport == TransportKind::graph;
    if (!graph) {
        if (table.contains("graph_url"))
            fail(position_of(table, "graph_url"), label + ".graph_url: used only with transport = \"graph\"");
        return;
    }
    if (account.provider == Provider::google)
        fail(position_of(table, "transport"), label + ".transport: \"graph\" is Microsoft Graph; Google accounts use SMTP");
    for (const char* key : {"upstream_auth", "upstream_user", "upstream_password", "upstream_password_file"})
        if (table.contains(key))
            fail(position_of(table, key), fmt::format("{}.{}: not used with transport = \"graph\" (Graph takes "
                                                      "the OAuth token as a bearer token)", label, key));
    // Graph's sendMail takes saveToSentItems only in its JSON form; the MIME form the relay must use
    // (the client's bytes, signatures intact) always keeps a copy (learn.microsoft.com user-sendmail).
    if (!account.save_to_sent_items)
        fail(position_of(table, "save_to_sent_items"),
             label + ".save_to_sent_items: Graph's MIME sendMail always saves a copy in Sent Items; false cannot "
                     "be honoured (delete the key, or use transport = \"smtp\")");
    if (table.contains("graph_url")) {
        if (!is_acceptable_token_url(account.graph_url))
            fail(position_of(table, "graph_url"),
                 label + ".graph_url: must be an https:// URL (http:// only for a loopback host)");
        while (account.graph_url.ends_with('/')) account.graph_url.pop_back();
    } else if (account.provider == Provider::microsoft) {
        account.graph_url = std::string(microsoft_cloud(account.cloud).graph_url);
    } else {
        fail(table.source(), fmt::format("{}: missing required key 'graph_url' in [{}] (provider \"custom\" has "
                                         "no preset)", label, label));
    }
}

}  // namespace relay::conf::detail
