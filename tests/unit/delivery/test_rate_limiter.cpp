// The pacing token bucket (relay/delivery/rate_limiter).
#include <gtest/gtest.h>

#include "relay/delivery/rate_limiter.hpp"

namespace {

using namespace relay;
using namespace std::chrono_literals;

TEST(RateLimiter, OneSecondBurstThenSteadyPace) {
    RateLimiter limiter;
    limiter.set_rate(120);   // 2 a second, burst 2
    auto t0 = RateLimiter::Clock::time_point{} + 100s;
    EXPECT_EQ(limiter.reserve(t0), t0);
    EXPECT_EQ(limiter.reserve(t0), t0);
    EXPECT_EQ(limiter.reserve(t0), t0 + 500ms);
    EXPECT_EQ(limiter.reserve(t0), t0 + 1000ms);
    EXPECT_EQ(limiter.reserve(t0 + 10s), t0 + 10s);   // refilled (capped at the burst)
    EXPECT_EQ(limiter.reserve(t0 + 10s), t0 + 10s);
    EXPECT_EQ(limiter.reserve(t0 + 10s), t0 + 10500ms);
    RateLimiter unlimited;
    unlimited.set_rate(0);
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(unlimited.reserve(t0), t0);
    RateLimiter slow;
    slow.set_rate(30);       // Exchange Online: one every 2 s
    EXPECT_EQ(slow.reserve(t0), t0);
    EXPECT_EQ(slow.reserve(t0), t0 + 2s);
}

}  // namespace
