// The session policy intake gives a connection (relay/intake/connection): which peers are lenient.
// The state machine only sees SessionPolicy::lenient; membership is decided here.
#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include "conf/config.hpp"
#include "relay/intake/connection.hpp"

namespace {

using namespace relay;
namespace ip = boost::asio::ip;

const std::string kAccount = R"(
[accounts.office]
tenant = "contoso"
client_id = "cid"
email = "scanner@contoso.com"
)";

bool lenient(const conf::Config& config, const char* peer) { return is_lenient(config, ip::make_address(peer)); }

TEST(IntakeLenient, DefaultNetworksAreLoopbackAndThePrivateRanges) {
    const conf::Config config = conf::parse_config("[relay]\n" + kAccount, "t.toml");
    for (const char* peer : {"127.0.0.1", "127.0.0.2", "::1", "10.20.30.40", "172.16.0.1", "172.31.255.254",
                             "192.168.1.50", "fd12:3456::1", "::ffff:192.168.1.50"})
        EXPECT_TRUE(lenient(config, peer)) << peer;
    for (const char* peer : {"172.32.0.1", "192.0.2.7", "8.8.8.8", "2001:db8::1", "fe80::1"})
        EXPECT_FALSE(lenient(config, peer)) << peer;
}

TEST(IntakeLenient, AnExplicitListIsTheWholeList) {
    const conf::Config one = conf::parse_config("[relay]\nlenient_networks = [\"127.0.0.1/32\"]\n" + kAccount, "t.toml");
    EXPECT_TRUE(lenient(one, "127.0.0.1"));
    EXPECT_FALSE(lenient(one, "127.0.0.2"));
    EXPECT_FALSE(lenient(one, "10.0.0.1"));
    const conf::Config none = conf::parse_config("[relay]\nlenient_networks = []\n" + kAccount, "t.toml");
    EXPECT_FALSE(lenient(none, "127.0.0.1"));
}

TEST(IntakeLenient, TheListenerPolicyKeepsBareNewlinesForStrictClients) {
    const conf::Config config = conf::parse_config("[relay]\nbare_newlines = \"normalize\"\n" + kAccount, "t.toml");
    const smtp::SessionPolicy policy = session_policy(config);
    EXPECT_FALSE(policy.lenient);   // set per connection, from the peer's address
    EXPECT_TRUE(policy.data.normalize_bare_newlines);
    EXPECT_EQ(policy.data.max_line_length, 1000u);
}

}  // namespace
