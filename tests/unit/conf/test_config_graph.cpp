// transport = "graph" (issue 14): each Microsoft cloud fills its own Graph host and the Graph scopes
// (delegated Mail.Send + offline_access, app-only the Graph resource's .default), since a Graph
// token's audience differs from SMTP's; graph_url can be overridden like token_url; SMTP-only and
// Google settings are refused instead of silently ignored; Graph accounts carry at most 3 MiB less
// 64 KiB (the 4 MB request limit on base64 MIME).
#include <gtest/gtest.h>

#include "conf/config.hpp"
#include "config_test_support.hpp"

namespace {

using namespace relay::conf;
using relay::conf::config_testing::errors_of;

const std::string kGraph = "[accounts.a]\ntenant = \"t1\"\nclient_id = \"c\"\nemail = \"a@b.c\"\n"
                           "client_secret = \"s\"\ntransport = \"graph\"\n";

Account only_account(const std::string& text) { return parse_config(text, "t.toml").accounts.begin()->second; }

bool mentions(const std::vector<std::string>& errors, const std::string& text) {
    for (const auto& e : errors)
        if (e.find(text) != std::string::npos) return true;
    return false;
}

TEST(ConfigGraph, DefaultsAreSmtpAndGraphSettingsHaveDefaults) {
    const Account smtp = only_account(config_testing::kAccount);
    EXPECT_EQ(smtp.transport, TransportKind::smtp);
    EXPECT_EQ(smtp.scope, "https://outlook.office.com/SMTP.Send offline_access");
    EXPECT_TRUE(smtp.graph_url.empty());

    const Account graph = only_account(kGraph);
    EXPECT_EQ(graph.transport, TransportKind::graph);
    EXPECT_TRUE(graph.save_to_sent_items);
    EXPECT_EQ(graph.graph_concurrent_requests, 4u);
}

TEST(ConfigGraph, CloudsFillGraphHostAndScopesPerAuthMode) {
    struct Case {
        const char* cloud;
        const char* graph_url;
        const char* delegated;
        const char* app;
    };
    const Case cases[] = {
        {"global", "https://graph.microsoft.com", "https://graph.microsoft.com/Mail.Send offline_access",
         "https://graph.microsoft.com/.default"},
        {"usgov", "https://graph.microsoft.us", "https://graph.microsoft.us/Mail.Send offline_access",
         "https://graph.microsoft.us/.default"},
        {"china", "https://microsoftgraph.chinacloudapi.cn",
         "https://microsoftgraph.chinacloudapi.cn/Mail.Send offline_access",
         "https://microsoftgraph.chinacloudapi.cn/.default"},
    };
    for (const auto& c : cases) {
        const std::string base = kGraph + "cloud = \"" + c.cloud + "\"\n";
        const Account delegated = only_account(base);
        EXPECT_EQ(delegated.graph_url, c.graph_url) << c.cloud;
        EXPECT_EQ(delegated.scope, c.delegated) << c.cloud;
        const Account app = only_account(base + "auth = \"client_credentials\"\n");
        EXPECT_EQ(app.graph_url, c.graph_url) << c.cloud;
        EXPECT_EQ(app.scope, c.app) << c.cloud;
    }
}

TEST(ConfigGraph, OverridesAndTheirChecks) {
    const Account a = only_account(kGraph + "graph_url = \"http://127.0.0.1:8080/\"\nsave_to_sent_items = true\n"
                                            "graph_concurrent_requests = 2\nscope = \"x/.default\"\n");
    EXPECT_EQ(a.graph_url, "http://127.0.0.1:8080");  // trailing slash dropped: paths are appended
    EXPECT_TRUE(a.save_to_sent_items);
    // MIME sendMail always saves a copy: false would be silently ignored, so it is refused.
    EXPECT_TRUE(mentions(errors_of(kGraph + "save_to_sent_items = false\n"), "always saves a copy in Sent Items"));
    EXPECT_EQ(a.graph_concurrent_requests, 2u);
    EXPECT_EQ(a.scope, "x/.default");

    EXPECT_TRUE(mentions(errors_of(kGraph + "graph_url = \"http://graph.example.com\"\n"), "graph_url: must be an https://"));
    EXPECT_TRUE(mentions(errors_of(kGraph + "graph_concurrent_requests = 5\n"), "graph_concurrent_requests"));
    EXPECT_TRUE(mentions(errors_of(kGraph + "transport = \"grahp\"\n"), "transport"));
    EXPECT_TRUE(mentions(errors_of(config_testing::kAccount + "graph_url = \"https://graph.microsoft.com\"\n"),
                         "used only with transport = \"graph\""));
    EXPECT_TRUE(mentions(errors_of(kGraph + "upstream_auth = \"plain\"\nupstream_password = \"p\"\n"),
                         "not used with transport = \"graph\""));
    EXPECT_TRUE(mentions(errors_of("[accounts.g]\nprovider = \"google\"\nclient_id = \"c\"\nemail = \"a@gmail.com\"\n"
                                   "transport = \"graph\"\n"),
                         "Google accounts use SMTP"));
    // custom: no preset, so graph_url and scope must be given; no SMTP upstream is needed.
    const std::string custom = "[accounts.c]\nprovider = \"custom\"\nclient_id = \"c\"\nemail = \"a@b.c\"\n"
                               "token_url = \"https://login.example/token\"\ntransport = \"graph\"\n";
    EXPECT_TRUE(mentions(errors_of(custom), "missing required key 'graph_url'"));
    EXPECT_TRUE(mentions(errors_of(custom), "missing required key 'scope'"));
    EXPECT_TRUE(errors_of(custom + "graph_url = \"https://graph.example\"\nscope = \"https://graph.example/.default\"\n").empty());
}

TEST(ConfigGraph, GraphAccountsCarryLessThanTheRequestLimit) {
    Config config = parse_config("[relay]\nmax_message_size = 36700160\n" + kGraph, "t.toml");
    const Account& a = config.accounts.begin()->second;
    EXPECT_EQ(message_size_limit(config.relay, a), kGraphMaxMessageSize);
    // base64 of the largest message plus its added Bcc line still fits in 4 MiB.
    EXPECT_LE((kGraphMaxMessageSize + 64 * 1024 + 2) / 3 * 4, 4u * 1024 * 1024);
    config.relay.max_message_size = 100000;
    EXPECT_EQ(message_size_limit(config.relay, a), 100000u);
    const Config smtp = parse_config(config_testing::kAccount, "t.toml");
    EXPECT_EQ(message_size_limit(smtp.relay, smtp.accounts.begin()->second), smtp.relay.max_message_size);
    EXPECT_NE(print_config(config).find("transport = \"graph\""), std::string::npos);
}

}  // namespace
