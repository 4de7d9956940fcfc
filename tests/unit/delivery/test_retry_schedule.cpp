#include <gtest/gtest.h>

#include "relay/delivery/retry_schedule.hpp"

using namespace std::chrono_literals;

TEST(RetrySchedule, DoublesFromMinimumUpToMaximum) {
    relay::RetrySchedule s{300s, 4000s, 5 * 24h};
    EXPECT_EQ(s.delay_after(0), 0s);
    EXPECT_EQ(s.delay_after(1), 300s);
    EXPECT_EQ(s.delay_after(2), 600s);
    EXPECT_EQ(s.delay_after(3), 1200s);
    EXPECT_EQ(s.delay_after(4), 2400s);
    EXPECT_EQ(s.delay_after(5), 4000s);
    EXPECT_EQ(s.delay_after(60), 4000s);  // no overflow after many attempts
}

TEST(RetrySchedule, MinimumAboveMaximumIsCapped) {
    relay::RetrySchedule s{10s, 5s, 1h};
    EXPECT_EQ(s.delay_after(1), 5s);
}

TEST(RetrySchedule, ExpiresAtQueueLifetime) {
    relay::RetrySchedule s{1s, 2s, 3600s};
    EXPECT_FALSE(s.expired(3599s));
    EXPECT_TRUE(s.expired(3600s));
}
