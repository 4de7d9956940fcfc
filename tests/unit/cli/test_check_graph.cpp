// `check` and Microsoft Graph (issue 14): an SMTP account refused with 535 5.7.139 is told the exact
// config line and permission that deliver through Graph instead; a Graph account's failed probe
// names the missing grant (delegated Mail.Send, or the application permission and its access policy).
#include <gtest/gtest.h>

#include "relay/cli/check_diagnosis.hpp"

namespace {

using namespace relay;
using Stage = UpstreamError::Stage;

conf::Account account(conf::AuthMode mode = conf::AuthMode::delegated) {
    conf::Account a;
    a.name = "office";
    a.email = "scanner@contoso.com";
    a.client_id = "11111111-2222";
    a.auth = mode;
    a.graph_url = "https://graph.microsoft.com";
    return a;
}

void expect_has(const std::string& text, const std::string& part) {
    EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' not in: " << text;
}

TEST(CheckGraph, SmtpAuthDisabledProposesTransportGraph) {
    for (const char* scope : {"Tenant.", "Mailbox."}) {
        const smtp::Reply refused{535, {std::string("5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
                                                    "is disabled for the ") + scope}};
        const auto delegated = check::diagnose_upstream(Stage::auth, "", refused, account());
        expect_has(delegated.fix, "[accounts.office]");
        expect_has(delegated.fix, "transport = \"graph\"");
        expect_has(delegated.fix, "delegated Microsoft Graph permission Mail.Send");
        expect_has(delegated.fix, "smtp-oauth2-relay authorize --account office");
        const auto app = check::diagnose_upstream(Stage::auth, "", refused, account(conf::AuthMode::client_credentials));
        expect_has(app.fix, "application permission Mail.Send");
        expect_has(app.fix, "New-ApplicationAccessPolicy -AppId 11111111-2222");
    }
}

TEST(CheckGraph, ProbeFailuresNameTheGrant) {
    const auto audience = check::diagnose_graph(401, "InvalidAuthenticationToken", "Invalid audience.", account());
    expect_has(audience.cause, "401 InvalidAuthenticationToken: Invalid audience.");
    expect_has(audience.fix, "https://graph.microsoft.com/Mail.Send offline_access");
    const auto denied = check::diagnose_graph(403, "ErrorAccessDenied", "Access is denied.",
                                              account(conf::AuthMode::client_credentials));
    expect_has(denied.cause, "Mail.Send is not granted for scanner@contoso.com");
    expect_has(denied.fix, "New-ApplicationAccessPolicy");
    expect_has(check::diagnose_graph(0, "", "Connection refused", account()).cause, "cannot be reached");
    expect_has(check::diagnose_graph(404, "ErrorInvalidUser", "x", account()).fix, "correct email");
}

}  // namespace
