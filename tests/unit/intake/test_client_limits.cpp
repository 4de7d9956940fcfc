// ClientLimits' per-address connection caps and AUTH lockout, driven with an explicit clock
// (relay/intake/client_limits).
#include <gtest/gtest.h>

#include "relay/intake/client_limits.hpp"

namespace {

using namespace relay;
using namespace std::chrono_literals;

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

TEST(ClientLimits, LockoutAfterMaxFailuresForTheLockoutPeriod) {
    ClientLimits limits({.auth_max_failures = 3, .auth_lockout = 60s});
    const auto t0 = ClientLimits::Clock::time_point{} + 1000h;
    EXPECT_FALSE(limits.auth_failed("10.0.0.1", t0));
    EXPECT_FALSE(limits.auth_failed("10.0.0.1", t0 + 1s));
    EXPECT_FALSE(limits.auth_locked("10.0.0.1", t0 + 1s));
    EXPECT_TRUE(limits.auth_failed("10.0.0.1", t0 + 2s));
    EXPECT_TRUE(limits.auth_locked("10.0.0.1", t0 + 2s));
    EXPECT_FALSE(limits.auth_locked("10.0.0.2", t0 + 2s));   // per address
    EXPECT_TRUE(limits.auth_locked("10.0.0.1", t0 + 61s));
    EXPECT_FALSE(limits.auth_locked("10.0.0.1", t0 + 62s));
}

TEST(ClientLimits, OldFailuresAreForgiven) {
    ClientLimits limits({.auth_max_failures = 2, .auth_lockout = 60s});
    const auto t0 = ClientLimits::Clock::time_point{} + 1000h;
    EXPECT_FALSE(limits.auth_failed("10.0.0.1", t0));
    EXPECT_FALSE(limits.auth_failed("10.0.0.1", t0 + 61s));
    EXPECT_TRUE(limits.auth_failed("10.0.0.1", t0 + 62s));
}

}  // namespace
