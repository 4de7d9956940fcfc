// The one table of token failure hints (issue 12, item 5): each OAuth error / AADSTS case gives the
// cause and fix that `check`, `authorize`, `token import` and the log all show.
#include <gtest/gtest.h>

#include "auth/token_hints.hpp"

using namespace relay::auth;

namespace {

relay::conf::Account account() {
    relay::conf::Account a;
    a.name = "office";
    a.tenant = "contoso.onmicrosoft.com";
    a.email = "scanner@contoso.com";
    a.token_url = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
    return a;
}

TokenHint hint(long status, const std::string& error, const std::string& description) {
    try {
        parse_token_response(status, R"({"error":")" + error + R"(","error_description":")" + description + R"("})",
                             Clock::now());
    } catch (const TokenError& e) {
        return token_hint(e, account());
    }
    ADD_FAILURE() << "no TokenError";
    return {};
}

void expect_has(const std::string& text, const std::string& part) {
    EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' not in: " << text;
}

}  // namespace

TEST(TokenHints, EachKnownFailureHasItsCauseAndFix) {
    struct Row {
        long status;
        std::string error, description, cause, fix;
    };
    const Row rows[] = {
        {400, "invalid_grant", "AADSTS700082: expired due to inactivity.", "AADSTS700082",
         "smtp-oauth2-relay authorize --account office` and sign in as scanner@contoso.com"},
        {400, "invalid_grant", "AADSTS50173: revoked.", "expired, revoked", "authorize --account office"},
        {401, "invalid_client", "AADSTS7000215: Invalid client secret provided.", "client secret is wrong or expired",
         "Certificates & secrets"},
        {401, "invalid_client", "AADSTS7000218: must contain client_secret.", "no client secret is configured",
         "Allow public client flows"},
        // The case the log used to get wrong: an unknown client id is not a new-secret problem.
        {400, "unauthorized_client", "AADSTS700016: Application not found.", "client id is not known", "client_id"},
        {401, "invalid_client", "AADSTS700016: Application not found.", "AADSTS700016", "client_id"},
        {401, "invalid_client", "AADSTS700027: signature invalid.", "client certificate", "Certificates & secrets"},
        {400, "invalid_grant", "AADSTS65001: not consented.", "consent", "Grant admin consent"},
        {400, "invalid_request", "AADSTS90002: Tenant not found.", "wrong tenant", "tenant id"},
        {503, "temporarily_unavailable", "AADSTS90033: transient.", "temporarily unavailable", "retries"},
        {400, "invalid_request", "AADSTS900144: missing grant_type.", "invalid_request", "token_url, client_id and scope"},
    };
    for (const auto& row : rows) {
        SCOPED_TRACE(row.description);
        const TokenHint h = hint(row.status, row.error, row.description);
        expect_has(h.cause, row.cause);
        expect_has(h.fix, row.fix);
        EXPECT_EQ(h.cause.find('\n'), std::string::npos);
        EXPECT_EQ(h.fix.find('\n'), std::string::npos);
    }
}

TEST(TokenHints, UnreachableEndpointNamesTheNetwork) {
    TokenError e(TokenFailure::temporary, "transport_error", "Could not resolve host", 0);
    const TokenHint h = token_hint(e, account());
    expect_has(h.cause, "cannot be reached: Could not resolve host");
    expect_has(h.fix, "keeps retrying");
}

TEST(TokenHints, CertificateProblemsAreNamed) {
    TokenError e(TokenFailure::invalid_client, "client_certificate_unusable", "no such file", 0);
    expect_has(token_hint(e, account()).fix, "client_certificate_file");
}
