// Issue 11, item 4: a token endpoint outage puts the account into waiting-for-token on the token's
// own short schedule, not into the SMTP backoff (300 s, 600 s, ...), and the token's arrival ends
// the wait at once. FakeClock: the schedule is checked to the second without sleeping.
#include <gtest/gtest.h>

#include "auth/token_retry.hpp"
#include "relay/core/clock.hpp"
#include "relay/delivery/account_queue.hpp"

using namespace std::chrono_literals;
using relay::AccountQueue;
using relay::Item;
using relay::RetrySchedule;
using relay::core::FakeClock;
using relay::auth::TokenFailure;
using relay::auth::TokenRetry;
namespace state = relay::state;

namespace {

Item item(const std::string& id) {
    Item i;
    i.message.id = id;
    i.message.envelope.account = "office";
    return i;
}

}  // namespace

TEST(TokenRetry, TransientFailuresDoubleFromSecondsToAMinute) {
    const std::chrono::seconds expected[] = {2s, 4s, 8s, 16s, 32s, 60s, 60s};
    for (unsigned n = 1; n <= 7; ++n) EXPECT_EQ(TokenRetry::delay(n, TokenFailure::temporary), expected[n - 1]) << n;
    // The whole outage of the issue (3 x 500, a 20 s hang) costs 2 + 4 + 8 s of waiting before the
    // hang and 16 s after it: far inside a minute, where the SMTP backoff took 300 s.
    EXPECT_LT(TokenRetry::delay(4, TokenFailure::temporary), 60s);
}

TEST(TokenRetry, RetryAfterIsHonouredButBounded) {
    EXPECT_EQ(TokenRetry::delay(1, TokenFailure::temporary, 30s), 30s);     // later than ours: theirs
    EXPECT_EQ(TokenRetry::delay(5, TokenFailure::temporary, 1s), 32s);      // sooner than ours: ours
    EXPECT_EQ(TokenRetry::delay(1, TokenFailure::temporary, 86400s), 120s); // a wild header is capped
}

TEST(TokenRetry, OtherFailuresKeepTheSlowerSchedule) {
    EXPECT_EQ(TokenRetry::delay(1, TokenFailure::other), 5s);
    EXPECT_EQ(TokenRetry::delay(20, TokenFailure::other), 300s);
}

TEST(TokenRetryState, AnswersFromMemoryUntilTheRetryTime) {
    relay::auth::TokenRetryState s;
    const auto t0 = relay::auth::Clock::time_point{} + 1000h;
    relay::auth::TokenError busy(TokenFailure::temporary, "temporarily_unavailable", "", 503);
    EXPECT_EQ(s.record(busy, t0), 2s);
    EXPECT_TRUE(s.answer(t0 + 1s).has_value());
    EXPECT_FALSE(s.answer(t0 + 2s).has_value());
    EXPECT_EQ(s.retry_at(), t0 + 2s);
    relay::auth::TokenError dead(TokenFailure::invalid_grant, "invalid_grant", "", 400);
    EXPECT_EQ(s.record(dead, t0), 0s);
    EXPECT_TRUE(s.needs_person_now());
    EXPECT_TRUE(s.answer(t0 + 1000h).has_value());   // a person's failure: until cleared
    EXPECT_EQ(s.retry_at(), relay::auth::Clock::time_point{});
    s.clear();
    EXPECT_FALSE(s.failing());
}

TEST(AccountTokenWait, WaitsWithoutBackoffAndGoesWhenTheTokenArrives) {
    FakeClock clock;
    AccountQueue queue{clock};
    queue.configure(RetrySchedule{300s, 4000s, 24h}, 0);
    for (int i = 0; i < 5; ++i) queue.push_ready(item("M" + std::to_string(i)));
    queue.wait_for_token(3s);
    EXPECT_EQ(queue.state(), state::Account::waiting_for_token);
    EXPECT_FALSE(queue.can_send());
    EXPECT_FALSE(queue.backing_off());                 // no SMTP backoff
    EXPECT_EQ(queue.account_failures(), 0u);
    EXPECT_EQ(queue.ready(), 5u);                      // no message was charged or deferred
    EXPECT_EQ(queue.next_wakeup(), clock.now() + 3s);  // looks again by itself at the latest
    EXPECT_EQ(queue.wait_remaining(), 3s);
    clock.advance(1s);
    queue.token_arrived();                             // the token manager's retry got one
    EXPECT_TRUE(queue.can_send());
    EXPECT_EQ(queue.state(), state::Account::ready);
}

TEST(AccountTokenWait, EndsByItselfAndAHoldOutranksIt) {
    FakeClock clock;
    AccountQueue queue{clock};
    queue.push_ready(item("M"));
    queue.wait_for_token(5s);
    clock.advance(5s);
    EXPECT_TRUE(queue.can_send());
    queue.wait_for_token(5s);
    queue.hold();
    EXPECT_EQ(queue.state(), state::Account::held);
    queue.release();
    queue.clear_backoff();                             // a reload or queue retry ends the wait too
    EXPECT_EQ(queue.state(), state::Account::ready);
    queue.back_off();
    EXPECT_EQ(queue.state(), state::Account::backing_off);
}
