// Account routing by authenticated user and by sender address (relay/intake/routing).
#include <gtest/gtest.h>

#include "conf/config.hpp"
#include "../conf/config_test_support.hpp"
#include "relay/intake/routing.hpp"

namespace {

using namespace relay;

using conf::config_testing::kTwoAccounts;

TEST(Routing, UserSenderAccountDefaultRefusal) {
    auto c = conf::parse_config(kTwoAccounts, "t.toml");
    auto r = route_message(c, "scanner", "office", "Scanner@Contoso.com");
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.account, "office");
    r = route_message(c, "scanner", "office", "other@contoso.com");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.reply.substr(0, 9), "553 5.7.1");
    r = route_message(c, "any", "sales", "whoever@example.com");   // no allowed_senders: any sender
    EXPECT_EQ(r.account, "sales");
    r = route_message(c, "", "", "sales@contoso.com");
    EXPECT_EQ(r.account, "sales");
    r = route_message(c, "", "", "billing@contoso.com");
    EXPECT_EQ(r.account, "sales");
    r = route_message(c, "", "", "stranger@example.com");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.reply.substr(0, 9), "550 5.7.1");
    c.relay.default_account = "office";
    r = route_message(c, "", "", "stranger@example.com");
    EXPECT_EQ(r.account, "office");
}

// refuse_unknown_senders (issue 11): once the account is chosen, a sender its mailbox cannot send as
// (not its email, not in send_as) gets 553 5.7.1 at MAIL FROM, whichever way the account was chosen.
TEST(Routing, RefuseUnknownSendersAtMailFrom) {
    auto c = conf::parse_config(kTwoAccounts, "t.toml");
    c.relay.default_account = "office";
    c.accounts.at("office").refuse_unknown_senders = true;
    c.accounts.at("sales").refuse_unknown_senders = true;
    for (const char* stranger : {"stranger@example.com", "root@printer.lan", ""}) {
        auto r = route_message(c, "", "", stranger);      // by default_account
        EXPECT_FALSE(r.ok) << stranger;
        EXPECT_EQ(r.reply.substr(0, 9), "553 5.7.1") << stranger;
        r = route_message(c, "any", "sales", stranger);    // a logged-in user's account
        EXPECT_FALSE(r.ok) << stranger;
        EXPECT_EQ(r.reply.substr(0, 9), "553 5.7.1") << stranger;
    }
    EXPECT_EQ(route_message(c, "", "", "SCANNER@contoso.com").account, "office");
    EXPECT_EQ(route_message(c, "", "", "Invoices@Contoso.com").account, "sales");      // send_as
    EXPECT_EQ(route_message(c, "any", "sales", "billing@contoso.com").account, "sales");
    c.accounts.at("office").refuse_unknown_senders = false;   // per account
    EXPECT_EQ(route_message(c, "", "", "stranger@example.com").account, "office");
}

}  // namespace
