// Issue 6 limits: the [relay] keys for hostile clients (defaults, bounds, cross-key rules) and
// ClientLimits' per-address connection caps (the AUTH lockout is in test_auth_attempts.cpp).
#include <gtest/gtest.h>

#include "conf/config.hpp"
#include "config_test_support.hpp"
#include "relay/intake/client_limits.hpp"

namespace {

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

TEST(ClientLimits, PerAddressAndTotalCaps) {
    ClientLimits limits({.max_clients = 3, .max_clients_per_ip = 2});
    EXPECT_EQ(limits.admit("10.0.0.1"), ClientLimits::Admission::ok);
    EXPECT_EQ(limits.admit("10.0.0.1"), ClientLimits::Admission::ok);
    EXPECT_EQ(limits.admit("10.0.0.1"), ClientLimits::Admission::too_many_from_address);
    EXPECT_EQ(limits.admit("10.0.0.2"), ClientLimits::Admission::ok);
    EXPECT_EQ(limits.admit("10.0.0.3"), ClientLimits::Admission::too_many_clients);
    limits.release("10.0.0.1");
    EXPECT_EQ(limits.clients(), 2u);
    EXPECT_EQ(limits.admit("10.0.0.3"), ClientLimits::Admission::ok);
    limits.release("10.0.0.9");   // never admitted: ignored
    EXPECT_EQ(limits.clients(), 3u);
}

}  // namespace
