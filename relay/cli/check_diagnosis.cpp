// Cause and fix for each failure `check` knows (see check_diagnosis.hpp and PROVIDERS.md).
#include "relay/cli/check_diagnosis.hpp"

#include <fmt/format.h>

#include "auth/token_hints.hpp"

namespace relay::check {
namespace {

bool contains(const std::string& text, std::string_view what) { return text.find(what) != std::string::npos; }

std::string authorize_command(const conf::Account& account) { return auth::authorize_command(account); }

// The Entra ID grant Graph needs: delegated Mail.Send, or the application permission limited to
// the relay's mailboxes (an application access policy; RBAC for Applications works too).
std::string graph_permission(const conf::Account& account) {
    if (account.auth == conf::AuthMode::client_credentials)
        return fmt::format("give the app registration the Microsoft Graph application permission Mail.Send with "
                           "admin consent, and limit it to this mailbox in Exchange Online PowerShell: "
                           "New-ApplicationAccessPolicy -AppId {} -PolicyScopeGroupId <mail-enabled group with {}> "
                           "-AccessRight RestrictAccess -Description \"smtp-oauth2-relay\"", account.client_id, account.email);
    return "give the app registration the delegated Microsoft Graph permission Mail.Send (and offline_access), then "
           "sign in again: `smtp-oauth2-relay authorize --account " + account.name + "`";
}

// 5.7.139 with SMTP AUTH that must stay off: the way out through Graph, with the exact lines.
std::string graph_proposal(const conf::Account& account) {
    return fmt::format("\n              or keep SMTP AUTH off and deliver through Microsoft Graph instead: add to "
                       "[accounts.{}] the line\n                  transport = \"graph\"\n              and {}",
                       account.name, graph_permission(account));
}

}  // namespace

Diagnosis diagnose_graph(long status, const std::string& code, const std::string& message, const conf::Account& account) {
    const std::string what = fmt::format("Graph answered {}{}{}", status, code.empty() ? "" : " " + code,
                                         message.empty() ? "" : ": " + message);
    if (status == 0)
        return {"Microsoft Graph cannot be reached at " + account.graph_url + ": " + message,
                "check the network path (HTTPS to " + account.graph_url + ") and graph_url of account " + account.name};
    if (status == 401)
        return {what + " (the token is not for Microsoft Graph, or was refused)",
                fmt::format("the account's scope must be Graph's ({}); remove a `scope` override, then {}",
                            account.auth == conf::AuthMode::client_credentials ? "https://graph.microsoft.com/.default"
                                                                               : "https://graph.microsoft.com/Mail.Send offline_access",
                            account.auth == conf::AuthMode::client_credentials ? "run check again"
                                                                               : authorize_command(account))};
    if (status == 403)
        return {what + " (Mail.Send is not granted for " + account.email + ")", graph_permission(account)};
    if (status == 404)
        return {what + " (Graph knows no mailbox " + account.email + ")", "correct email of account " + account.name};
    if (status == 429 || status == 503 || status == 504)
        return {what + " (throttled or busy)", "wait and run check again"};
    return {what, "see Microsoft Graph's message above"};
}

// The one table of token failures lives in auth/token_hints.cpp, shared with the log and token import.
Diagnosis diagnose_token(const auth::TokenError& e, const conf::Account& account) {
    auto hint = auth::token_hint(e, account);
    return {std::move(hint.cause), std::move(hint.fix)};
}

Diagnosis diagnose_upstream(UpstreamError::Stage stage, const std::string& message,
                            const std::optional<smtp::Reply>& reply, const conf::Account& account,
                            const std::string& sender) {
    using Stage = UpstreamError::Stage;
    const std::string where = account.upstream.to_string();
    if (!reply) {
        if (stage == Stage::connect) {
            if (contains(message, "refused"))
                return {fmt::format("connection refused by {}: nothing listens there", where),
                        "check upstream (host:port) for account " + account.name +
                            "; Office 365 is smtp.office365.com:587; a firewall may reject outbound port 587"};
            return {fmt::format("cannot connect to {}: {}", where, message),
                    "check DNS and that outbound TCP to " + where + " is allowed (many networks block port 587/465)"};
        }
        if (stage == Stage::tls)
            return {fmt::format("TLS verification of {} failed: {}", where, message),
                    "the server's certificate is not trusted or not for this host name: check the upstream host name, "
                    "the system CA bundle (ca-certificates) or upstream_ca_file; a TLS-inspecting firewall must let "
                    "port 587 through untouched"};
        return {fmt::format("the connection to {} failed: {}", where, message),
                "check the network path to the upstream and try again"};
    }
    const std::string text = reply->text();
    const std::string enhanced = reply->enhanced();
    if (enhanced == "5.7.139" || contains(text, "SmtpClientAuthentication is disabled")) {
        if (contains(text, "Mailbox"))
            return {"SMTP AUTH is disabled for the mailbox " + account.email + " (535 5.7.139)",
                    fmt::format("an Exchange admin runs in Exchange Online PowerShell: Set-CASMailbox -Identity {} "
                                "-SmtpClientAuthenticationDisabled $false", account.email) + graph_proposal(account)};
        return {"SMTP AUTH is disabled for the tenant (535 5.7.139)",
                fmt::format("an Exchange admin runs in Exchange Online PowerShell: Set-TransportConfig "
                            "-SmtpClientAuthenticationDisabled $false (or, for this mailbox only: Set-CASMailbox "
                            "-Identity {} -SmtpClientAuthenticationDisabled $false)", account.email) +
                    graph_proposal(account)};
    }
    if (enhanced == "5.7.60" || enhanced == "5.2.252" || contains(text, "SendAsDenied") ||
        contains(text, "permission to send as") || contains(text, "permissions to send as"))
        return {fmt::format("the mailbox {} may not send as {} ({})", account.email,
                            sender.empty() ? "this sender" : sender, enhanced.empty() ? "SendAsDenied" : enhanced),
                fmt::format("send with MAIL FROM {}, or have an Exchange admin grant SendAs: Add-RecipientPermission "
                            "-Identity <sender mailbox> -Trustee {} -AccessRights SendAs", account.email, account.email)};
    if (enhanced == "5.7.30")
        return {"basic authentication is not accepted for SMTP submission (5.7.30)",
                "use upstream_auth = \"xoauth2\" with an authorized account"};
    if (stage == Stage::auth && reply->code == 535)
        return {fmt::format("{} refused the access token for {} ({})", where, account.email, text),
                "the person who signed in must be " + account.email + " (or have SendAs on it) and the app needs the "
                "delegated SMTP.Send permission; " + authorize_command(account)};
    if (stage == Stage::auth)
        return {fmt::format("AUTH failed at {}: {}", where, text),
                "check upstream_auth for account " + account.name + " and that the server offers that mechanism"};
    return {fmt::format("{} answered {}", where, text),
            reply->transient() ? "a temporary refusal: try again later" : "see the reply text; the relay would bounce such mail"};
}

}  // namespace relay::check
