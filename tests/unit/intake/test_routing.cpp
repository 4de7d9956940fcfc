// Account routing by authenticated user and by sender address (relay/intake/routing).
#include <gtest/gtest.h>

#include "conf/config.hpp"
#include "relay/intake/routing.hpp"

namespace {

using namespace relay;

const std::string kTwoAccounts = R"(
[relay]
spool_dir = "/tmp/x"
state_dir = "/tmp/y"

[[users]]
name = "scanner"
password = "p"
account = "office"
allowed_senders = ["scanner@contoso.com"]

[[users]]
name = "any"
password = "p"
account = "sales"

[accounts.office]
tenant = "contoso"
client_id = "cid"
email = "scanner@contoso.com"

[accounts.sales]
tenant = "contoso"
client_id = "cid"
email = "sales@contoso.com"
send_as = ["invoices@contoso.com", "Billing@Contoso.com"]
rate_per_minute = 0
max_recipients_per_message = 100
min_backoff = "10s"
max_queue_lifetime = "1d"
bounce = true
delivery = "direct"
)";

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

}  // namespace
