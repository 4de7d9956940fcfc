// AccountQueue and a provider that says how long to wait (Microsoft Graph's Retry-After, issue 14):
// the account backs off exactly that long, not the schedule's 300 s, and a shorter Retry-After never
// shortens a longer backoff already running.
#include <gtest/gtest.h>

#include "relay/core/clock.hpp"
#include "relay/delivery/account_queue.hpp"

using namespace std::chrono_literals;

TEST(AccountQueueRetryAfter, BacksOffForTheProvidersDelay) {
    relay::core::FakeClock clock;
    relay::AccountQueue queue{clock};
    queue.configure(relay::RetrySchedule{300s, 4000s, 5 * 24h}, 0);
    relay::Item item;
    item.message.id = "A";
    queue.push_ready(std::move(item));
    queue.back_off_for(3s);
    EXPECT_FALSE(queue.can_send());
    EXPECT_EQ(queue.backoff_remaining(), 3s);
    queue.back_off_for(1s);  // never shortened
    EXPECT_EQ(queue.backoff_remaining(), 3s);
    clock.advance(2999ms);
    EXPECT_FALSE(queue.can_send());
    clock.advance(1ms);
    EXPECT_TRUE(queue.can_send());
}
