// An account that carries less than the relay (a Microsoft Graph account, issue 14) is refused early
// and clearly: its limit in EHLO's SIZE, 552 5.3.4 naming the limit at MAIL FROM SIZE= and again at
// the end of DATA, while other accounts keep the relay's max_message_size. Also the routing side:
// which limit each route gets, and what EHLO offers a client that has not logged in.
#include <gtest/gtest.h>

#include "conf/config.hpp"
#include "relay/intake/routing.hpp"
#include "relay/smtp/server_session.hpp"

namespace {

using namespace relay;

struct Hooks : smtp::SessionHooks {
    AuthResult authenticate(std::string_view, std::string_view) override { return {}; }
    RouteResult route(std::string_view, std::string_view, std::string_view from) override {
        if (from == "big@x.test") return {true, "smtp", ""};
        return {true, "graph", "", 2000};
    }
    std::uint64_t size_limit(std::string_view) override { return advertised; }
    std::uint64_t advertised = 0;
};

struct Sink : smtp::MessageSink {
    void message_begin(const Envelope&) override {}
    void message_data(std::string_view) override {}
    void message_abort() override { ++aborts; }
    int aborts = 0;
};

std::string feed(smtp::ServerSession& s, const std::string& bytes) { return s.feed(bytes).replies; }

TEST(GraphSize, SessionUsesTheRoutedAccountsLimit) {
    Hooks hooks;
    Sink sink;
    smtp::SessionPolicy policy;
    policy.hostname = "mx.test";
    policy.max_message_size = 10000;
    hooks.advertised = 2000;
    smtp::ServerSession s(policy, hooks, sink, "127.0.0.1");
    EXPECT_NE(feed(s, "EHLO c\r\n").find("250-SIZE 2000\r\n"), std::string::npos);
    EXPECT_EQ(feed(s, "MAIL FROM:<p@x.test> SIZE=2001\r\n"),
              "552 5.3.4 Message size exceeds the limit of 2000 bytes of this sender's account (Microsoft Graph)\r\n");
    EXPECT_EQ(feed(s, "MAIL FROM:<p@x.test> SIZE=2000\r\n"), "250 2.1.0 Ok\r\n");
    feed(s, "RCPT TO:<a@x.test>\r\n");
    feed(s, "DATA\r\n");
    std::string body;
    for (int i = 0; i < 30; ++i) body += std::string(98, 'x') + "\r\n";
    EXPECT_EQ(feed(s, body + ".\r\n"),
              "552 5.3.4 Message size exceeds the limit of 2000 bytes of this sender's account (Microsoft Graph)\r\n");
    EXPECT_EQ(sink.aborts, 1);
    // Another account of the same relay: the relay's own limit applies.
    EXPECT_EQ(feed(s, "MAIL FROM:<big@x.test> SIZE=9000\r\n"), "250 2.1.0 Ok\r\n");
}

TEST(GraphSize, RoutesCarryTheirAccountsLimit) {
    const conf::Config config = conf::parse_config(R"(
[relay]
max_message_size = 10000000
default_account = "graph"
[accounts.graph]
tenant = "t"
client_id = "c"
email = "scanner@contoso.com"
transport = "graph"
[accounts.smtp]
tenant = "t"
client_id = "c"
email = "erp@contoso.com"
)", "t.toml");
    EXPECT_EQ(route_message(config, "", "", "anyone@contoso.com").max_message_size, conf::kGraphMaxMessageSize);
    EXPECT_EQ(route_message(config, "", "", "erp@contoso.com").max_message_size, 10000000u);
    EXPECT_EQ(advertised_size(config, "graph"), conf::kGraphMaxMessageSize);
    EXPECT_EQ(advertised_size(config, ""), 10000000u);  // not logged in: the largest route
}

}  // namespace
