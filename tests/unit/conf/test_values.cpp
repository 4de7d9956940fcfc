// The pure value parsers behind the loader: durations, host:port, networks, enum names (conf/values).
#include <gtest/gtest.h>

#include "conf/config.hpp"
#include "config_test_support.hpp"

namespace {

using namespace relay::conf;
using relay::conf::config_testing::kAccount;
using namespace std::chrono_literals;
namespace ip = boost::asio::ip;

TEST(ConfigValues, Durations) {
    const std::pair<const char*, std::int64_t> good[] = {
        {"0", 0}, {"300", 300}, {"300s", 300}, {"5m", 300}, {"1h", 3600}, {"2d", 172800}, {"007s", 7}};
    for (const auto& [text, seconds] : good) {
        ASSERT_TRUE(parse_duration(text).has_value()) << text;
        EXPECT_EQ(parse_duration(text)->count(), seconds) << text;
    }
    for (const char* bad : {"", "s", "5x", "-5", "+5", " 5", "5 m", "1.5h", "5ms", "1h30m", "99999999999999999999",
                            "106751991167301d"})
        EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
    // TOML integers are seconds.
    EXPECT_EQ(parse_config("[relay]\nmax_queue_lifetime = 3600\n" + kAccount, "t.toml").relay.max_queue_lifetime, 3600s);
}

TEST(ConfigValues, HostPort) {
    const std::pair<const char*, const char*> good[] = {
        {"127.0.0.1:2525", "127.0.0.1:2525"}, {"[::1]:25", "[::1]:25"}, {"[0:0:0::1]:25", "[::1]:25"},
        {"smtp.office365.com:587", "smtp.office365.com:587"}, {"h:65535", "h:65535"}, {"[::ffff:10.0.0.1]:1", "[::ffff:10.0.0.1]:1"}};
    for (const auto& [text, normal] : good) {
        auto hp = parse_host_port(text);
        ASSERT_TRUE(hp.has_value()) << text;
        EXPECT_EQ(hp->to_string(), normal);
    }
    EXPECT_EQ(parse_host_port("[::1]:25")->host, "::1");
    for (const char* bad : {"", "host", "host:", ":25", "host:0", "host:65536", "host:-1", "host:2a", "::1:25",
                            "[::1]25", "[::1:25", "[127.0.0.1]:25", "[nothost]:25", "bad host:25", "h:25 ", ".h:25"})
        EXPECT_FALSE(parse_host_port(bad).has_value()) << bad;
}

TEST(ConfigValues, NetworksMatchIncludingV4MappedPeers) {
    auto loopback = parse_network("127.0.0.0/8");
    ASSERT_TRUE(loopback);
    EXPECT_TRUE(loopback->contains(ip::make_address("127.0.0.1")));
    EXPECT_TRUE(loopback->contains(ip::make_address("127.255.255.255")));
    EXPECT_FALSE(loopback->contains(ip::make_address("128.0.0.1")));
    EXPECT_TRUE(loopback->contains(ip::make_address("::ffff:127.0.0.1")));  // dual-stack socket peer
    EXPECT_FALSE(loopback->contains(ip::make_address("::ffff:10.0.0.1")));
    EXPECT_FALSE(loopback->contains(ip::make_address("::1")));

    auto v6 = parse_network("2001:db8::1/32");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->to_string(), "2001:db8::/32");
    EXPECT_TRUE(v6->contains(ip::make_address("2001:db8:ffff::5")));
    EXPECT_FALSE(v6->contains(ip::make_address("2001:db9::5")));
    EXPECT_FALSE(v6->contains(ip::make_address("127.0.0.1")));

    auto odd = parse_network("192.168.5.77/20");  // prefix not on a byte boundary
    ASSERT_TRUE(odd);
    EXPECT_EQ(odd->to_string(), "192.168.0.0/20");
    EXPECT_TRUE(odd->contains(ip::make_address("192.168.15.255")));
    EXPECT_FALSE(odd->contains(ip::make_address("192.168.16.0")));

    EXPECT_TRUE(parse_network("0.0.0.0/0")->contains(ip::make_address("8.8.8.8")));
    EXPECT_FALSE(parse_network("0.0.0.0/0")->contains(ip::make_address("2001:db8::1")));
    EXPECT_TRUE(parse_network("::ffff:0:0/96")->contains(ip::make_address("10.1.1.1")));
    EXPECT_TRUE(parse_network("10.0.0.5")->contains(ip::make_address("10.0.0.5")));
    EXPECT_FALSE(parse_network("10.0.0.5")->contains(ip::make_address("10.0.0.6")));
    EXPECT_EQ(parse_network("::1")->to_string(), "::1/128");

    for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0/8", "host/8",
                            "10.0.0.0/8/8", "fe80::1%1/64", " 10.0.0.0/8"})
        EXPECT_FALSE(parse_network(bad).has_value()) << bad;
}

TEST(ConfigValues, EnumNames) {
    EXPECT_EQ(to_string(Provider::google), "google");
    EXPECT_EQ(to_string(UpstreamTls::implicit), "implicit");
    EXPECT_EQ(to_string(UpstreamAuth::oauthbearer), "oauthbearer");
    EXPECT_EQ(to_string(UpstreamAuth::none), "none");
}

}  // namespace
