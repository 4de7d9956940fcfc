// The policy keys: the [relay] limits for hostile clients (issue 6: defaults, bounds, cross-key rules),
// an account's delivery policy (issue 4) and whom it may send as (issue 11), each with its defaults
// and a bad value reported at its position.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "conf/config.hpp"
#include "config_test_support.hpp"

// The [relay] keys for hostile clients: defaults, bounds, cross-key rules (issue 6).
namespace hostile_limits {

using namespace relay;
using namespace std::chrono_literals;
using relay::conf::config_testing::kAccount;

std::string errors_of(const std::string& relay_table) {
    try {
        conf::parse_config("[relay]\n" + relay_table + kAccount, "t.toml");
    } catch (const conf::ConfigError& e) {
        std::string out;
        for (const auto& line : e.errors()) out += line + "\n";
        return out;
    }
    return {};
}

TEST(HostileConfig, DefaultsAreTheDocumentedOnes) {
    const conf::RelaySettings r = conf::parse_config("[relay]\n" + kAccount, "t.toml").relay;
    EXPECT_EQ(r.bare_newlines, "reject");
    EXPECT_EQ(r.max_command_line, 512u);
    EXPECT_EQ(r.max_line_length, 1000u);
    EXPECT_EQ(r.max_recipients, 1000u);
    EXPECT_EQ(r.max_errors, 20u);
    EXPECT_EQ(r.command_timeout, 300s);
    EXPECT_EQ(r.min_data_rate, 500u);
    EXPECT_EQ(r.min_data_rate_window, 30s);
    EXPECT_EQ(r.max_clients, 4096u);
    EXPECT_EQ(r.max_clients_per_ip, 1024u);
    EXPECT_EQ(r.auth_max_failures, 10u);
    EXPECT_TRUE(r.listen_tls.empty());
    EXPECT_TRUE(r.tls_cert.empty());
    EXPECT_EQ(r.min_tls_version, "1.2");
    EXPECT_FALSE(r.allow_plaintext_auth);
    // Postfix's $mynetworks idea: loopback and the private ranges are the trusted LAN.
    std::vector<std::string> lenient;
    for (const auto& net : r.lenient_networks) lenient.push_back(net.to_string());
    EXPECT_EQ(lenient, (std::vector<std::string>{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
                                                 "192.168.0.0/16", "fc00::/7"}));
}

TEST(HostileConfig, LenientNetworksAreParsedLikeAllowNetworks) {
    const conf::RelaySettings r =
        conf::parse_config("[relay]\nlenient_networks = [\"192.0.2.9\", \"10.1.2.3/16\"]\n" + kAccount, "t.toml").relay;
    ASSERT_EQ(r.lenient_networks.size(), 2u);
    EXPECT_EQ(r.lenient_networks[0].to_string(), "192.0.2.9/32");
    EXPECT_EQ(r.lenient_networks[1].to_string(), "10.1.0.0/16");
    EXPECT_TRUE(conf::parse_config("[relay]\nlenient_networks = []\n" + kAccount, "t.toml").relay.lenient_networks.empty());
    EXPECT_NE(errors_of("lenient_networks = [\"10.0.0.0/40\"]\n")
                  .find("t.toml:2:21: relay.lenient_networks: \"10.0.0.0/40\" is not valid"),
              std::string::npos);
}

TEST(HostileConfig, BadValuesAreReportedAtTheirPosition) {
    EXPECT_NE(errors_of("bare_newlines = \"fix\"\n").find("t.toml:2:17: relay.bare_newlines: expected"), std::string::npos);
    EXPECT_NE(errors_of("min_tls_version = \"1.0\"\n").find("allow_legacy_tls = true"), std::string::npos);
    EXPECT_EQ(errors_of("min_tls_version = \"1.0\"\nallow_legacy_tls = true\n"), "");
    EXPECT_NE(errors_of("min_tls_version = \"2\"\n").find("relay.min_tls_version"), std::string::npos);
    EXPECT_NE(errors_of("min_data_rate_window = \"60s\"\n").find("min_data_rate_window"), std::string::npos);
    EXPECT_NE(errors_of("max_command_line = 100\n").find("max_command_line"), std::string::npos);
    EXPECT_NE(errors_of("tls_cert = \"/etc/hostname\"\n").find("set both or neither"), std::string::npos);
}

}  // namespace hostile_limits

// The delivery policy keys of accounts (issue 4).
namespace delivery_policy {

using namespace relay;
using namespace std::chrono_literals;

using relay::conf::config_testing::kTwoAccounts;

TEST(Config, DeliveryPolicyKeysAndDefaults) {
    auto c = conf::parse_config(kTwoAccounts, "t.toml");
    const auto& office = c.accounts.at("office");
    EXPECT_EQ(office.rate_per_minute, 30u);
    EXPECT_EQ(office.max_recipients_per_message, 500u);
    EXPECT_FALSE(office.bounce);
    EXPECT_EQ(office.delivery, conf::DeliveryMode::queue);
    EXPECT_FALSE(office.min_backoff);
    const auto& sales = c.accounts.at("sales");
    EXPECT_EQ(sales.send_as.size(), 2u);
    EXPECT_EQ(sales.rate_per_minute, 0u);
    EXPECT_EQ(sales.max_recipients_per_message, 100u);
    EXPECT_EQ(sales.min_backoff, std::optional<std::chrono::seconds>(10s));
    EXPECT_EQ(sales.max_queue_lifetime, std::optional<std::chrono::seconds>(86400s));
    EXPECT_TRUE(sales.bounce);
    EXPECT_EQ(sales.delivery, conf::DeliveryMode::direct);
    EXPECT_EQ(c.users[0].allowed_senders, std::vector<std::string>{"scanner@contoso.com"});
}

TEST(Config, BadDeliveryPolicyValuesAreReportedWithPosition) {
    std::string text = kTwoAccounts;
    text.replace(text.find("delivery = \"direct\""), 19, "delivery = \"later\"");
    text.replace(text.find("\"invoices@contoso.com\""), 22, "\"not an address\"");
    try {
        conf::parse_config(text, "t.toml");
        FAIL() << "accepted";
    } catch (const conf::ConfigError& e) {
        ASSERT_EQ(e.errors().size(), 2u);
        EXPECT_NE(e.errors()[0].find("t.toml:26:12:"), std::string::npos) << e.errors()[0];
        EXPECT_NE(e.errors()[0].find("send_as"), std::string::npos);
        EXPECT_NE(e.errors()[1].find("expected one of queue, direct"), std::string::npos) << e.errors()[1];
    }
}

// Issue 11: who an account may send as. Defaults, a misspelt value with its position and the
// closest choice, and the combination that could never apply.
TEST(Config, SenderKeys) {
    auto c = conf::parse_config(kTwoAccounts, "t.toml");
    EXPECT_FALSE(c.accounts.at("office").refuse_unknown_senders);
    EXPECT_EQ(c.accounts.at("office").rewrite_sender, conf::RewriteSender::never);
    EXPECT_TRUE(conf::is_known_sender(c.accounts.at("sales"), "BILLING@contoso.com"));
    EXPECT_TRUE(conf::is_known_sender(c.accounts.at("sales"), "Sales@Contoso.com"));
    EXPECT_FALSE(conf::is_known_sender(c.accounts.at("sales"), "scanner@contoso.com"));
    EXPECT_FALSE(conf::is_known_sender(c.accounts.at("sales"), ""));

    std::string text = kTwoAccounts;
    text.replace(text.find("bounce = true"), 13, "rewrite_sender = \"unalowed\"");
    try {
        conf::parse_config(text, "t.toml");
        FAIL() << "accepted";
    } catch (const conf::ConfigError& e) {
        ASSERT_EQ(e.errors().size(), 1u);
        EXPECT_NE(e.errors()[0].find("t.toml:31:18: accounts.sales.rewrite_sender: expected one of never, "
                                     "unallowed, always (got \"unalowed\"); did you mean 'unallowed'?"),
                  std::string::npos) << e.errors()[0];
    }
    text = kTwoAccounts;
    text.replace(text.find("bounce = true"), 13, "rewrite_sender = \"unallowed\"\nrefuse_unknown_senders = true");
    try {
        conf::parse_config(text, "t.toml");
        FAIL() << "accepted";
    } catch (const conf::ConfigError& e) {
        ASSERT_EQ(e.errors().size(), 1u);
        EXPECT_NE(e.errors()[0].find("t.toml:31:18:"), std::string::npos) << e.errors()[0];
        EXPECT_NE(e.errors()[0].find("never applies with refuse_unknown_senders"), std::string::npos);
    }
    text = kTwoAccounts;
    text.replace(text.find("bounce = true"), 13, "rewrite_sender = \"always\"\nrefuse_unknown_senders = true");
    c = conf::parse_config(text, "t.toml");
    EXPECT_EQ(c.accounts.at("sales").rewrite_sender, conf::RewriteSender::always);
    EXPECT_TRUE(c.accounts.at("sales").refuse_unknown_senders);
}

}  // namespace delivery_policy
