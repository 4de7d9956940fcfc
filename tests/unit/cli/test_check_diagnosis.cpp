// `check` diagnoses: every failure PROVIDERS.md lists maps to a cause and a fix an admin can act on
// (token endpoint errors as the identity platform sends them, and upstream SMTP replies).
#include <gtest/gtest.h>

#include "relay/cli/check_diagnosis.hpp"

using namespace relay;
using Stage = UpstreamError::Stage;

namespace {

conf::Account account() {
    conf::Account a;
    a.name = "office";
    a.tenant = "contoso.onmicrosoft.com";
    a.email = "scanner@contoso.com";
    a.token_url = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
    a.upstream = {"smtp.office365.com", 587};
    return a;
}

check::Diagnosis token(long status, const std::string& error, const std::string& description) {
    try {
        auth::parse_token_response(status, R"({"error":")" + error + R"(","error_description":")" + description + R"("})",
                                   auth::Clock::now());
    } catch (const auth::TokenError& e) {
        return check::diagnose_token(e, account());
    }
    ADD_FAILURE() << "no TokenError";
    return {};
}

check::Diagnosis reply(Stage stage, int code, const std::string& text, const std::string& sender = {}) {
    return check::diagnose_upstream(stage, "", smtp::Reply{code, {text}}, account(), sender);
}

void expect_has(const std::string& text, const std::string& part) {
    EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' not in: " << text;
}

}  // namespace

TEST(CheckDiagnosis, TokenEndpointFailures) {
    auto grant = token(400, "invalid_grant", "AADSTS700082: The refresh token has expired due to inactivity.");
    expect_has(grant.cause, "expired, revoked");
    expect_has(grant.cause, "AADSTS700082");
    expect_has(grant.fix, "smtp-oauth2-relay authorize --account office");

    auto secret = token(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
    expect_has(secret.cause, "client secret is wrong or expired");
    expect_has(secret.fix, "Certificates & secrets");

    auto public_client = token(401, "invalid_client", "AADSTS7000218: The request body must contain client_secret.");
    expect_has(public_client.cause, "no client secret is configured");

    auto unknown_app = token(400, "unauthorized_client", "AADSTS700016: Application with identifier 'x' was not found.");
    expect_has(unknown_app.fix, "client_id");

    auto consent = token(400, "invalid_grant", "AADSTS65001: The user or administrator has not consented.");
    expect_has(consent.cause, "consent");
    expect_has(consent.fix, "Grant admin consent");

    auto tenant = token(400, "invalid_request", "AADSTS90002: Tenant 'contoso.onmicrosoft.com' not found.");
    expect_has(tenant.cause, "wrong tenant");
    expect_has(tenant.fix, "tenant id");

    auto down = token(503, "temporarily_unavailable", "AADSTS90033: A transient error has occurred.");
    expect_has(down.cause, "temporarily unavailable");

    auto unreachable = check::diagnose_token(
        auth::TokenError(auth::TokenFailure::temporary, "transport_error", "Could not resolve host", 0), account());
    expect_has(unreachable.cause, "cannot be reached: Could not resolve host");
}

TEST(CheckDiagnosis, UpstreamFailures) {
    auto tenant = reply(Stage::auth, 535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.");
    expect_has(tenant.cause, "disabled for the tenant");
    expect_has(tenant.fix, "Set-TransportConfig -SmtpClientAuthenticationDisabled $false");
    auto mailbox = reply(Stage::auth, 535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.");
    expect_has(mailbox.fix, "Set-CASMailbox -Identity scanner@contoso.com -SmtpClientAuthenticationDisabled $false");

    auto bad_token = reply(Stage::auth, 535, "5.7.3 Authentication unsuccessful");
    expect_has(bad_token.cause, "refused the access token");
    expect_has(bad_token.fix, "SMTP.Send");

    auto send_as = reply(Stage::mail, 550, "5.7.60 SMTP; Client does not have permissions to send as this sender",
                         "boss@contoso.com");
    expect_has(send_as.cause, "may not send as boss@contoso.com");
    expect_has(send_as.fix, "Add-RecipientPermission");
    auto send_as_denied = reply(Stage::data, 554, "5.2.252 SendAsDenied; scanner@contoso.com not allowed to send as x");
    expect_has(send_as_denied.cause, "may not send as");

    auto basic = reply(Stage::auth, 550, "5.7.30 Basic authentication is not supported for Client Submission");
    expect_has(basic.cause, "basic authentication");

    auto refused = check::diagnose_upstream(Stage::connect, "connect to smtp.office365.com:587: Connection refused",
                                            std::nullopt, account());
    expect_has(refused.cause, "connection refused by smtp.office365.com:587");
    auto tls = check::diagnose_upstream(Stage::tls, "certificate verify failed (unable to get local issuer certificate)",
                                        std::nullopt, account());
    expect_has(tls.cause, "TLS verification of smtp.office365.com:587 failed");
    expect_has(tls.fix, "upstream_ca_file");
}
