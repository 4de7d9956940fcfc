// AccountQueue: one account's schedule, driven with a FakeClock so backoff, pacing, holds, recovery
// order and queue lifetime are checked to the second without sleeping.
#include <gtest/gtest.h>

#include "relay/core/clock.hpp"
#include "relay/delivery/account_queue.hpp"

using namespace std::chrono_literals;
using relay::AccountQueue;
using relay::Item;
using relay::RetrySchedule;
using relay::core::FakeClock;

namespace {

Item item(const std::string& id, unsigned attempts = 0) {
    Item i;
    i.message.id = id;
    i.message.envelope.account = "office";
    i.message.received = relay::SystemClock::time_point{} + std::chrono::hours(1);
    i.attempts = attempts;
    return i;
}

// Takes every ready message, in order.
std::vector<std::string> drain(AccountQueue& q) {
    std::vector<std::string> ids;
    while (q.ready() > 0) ids.push_back(q.pop_ready().message.id);
    return ids;
}

struct AccountQueueTest : ::testing::Test {
    FakeClock clock;
    AccountQueue queue{clock};
    void SetUp() override { queue.configure(RetrySchedule{300s, 4000s, 5 * 24h}, 0); }
};

}  // namespace

TEST_F(AccountQueueTest, ReadyMessagesGoOutInArrivalOrder) {
    queue.push_ready(item("A"));
    queue.push_ready(item("B"));
    queue.push_front(item("H"));   // kept at the head when a reply put the account on hold
    EXPECT_TRUE(queue.can_send());
    EXPECT_EQ(drain(queue), (std::vector<std::string>{"H", "A", "B"}));
    EXPECT_FALSE(queue.can_send());
}

TEST_F(AccountQueueTest, MessageBackoffDoublesPerAttemptUpToTheCap) {
    const std::vector<std::chrono::seconds> expected{300s, 600s, 1200s, 2400s, 4000s, 4000s};
    for (unsigned attempts = 1; attempts <= expected.size(); ++attempts) {
        auto decision = queue.retry_decision(item("A", attempts), 10s);
        EXPECT_FALSE(decision.expired);
        EXPECT_EQ(decision.delay, expected[attempts - 1]) << "after " << attempts << " attempts";
    }
}

TEST_F(AccountQueueTest, DeferredMessageBecomesReadyExactlyAtItsRetryTime) {
    auto decision = queue.retry_decision(item("A", 1), 10s);
    queue.add_deferred(item("A", 1), decision.delay);
    EXPECT_EQ(queue.deferred(), 1u);
    EXPECT_EQ(queue.next_wakeup(), clock.now() + 300s);

    clock.advance(299s);
    queue.release_due();
    EXPECT_EQ(queue.ready(), 0u);

    clock.advance(1s);
    queue.release_due();
    EXPECT_EQ(queue.deferred(), 0u);
    ASSERT_EQ(queue.ready(), 1u);
    Item back = queue.pop_ready();
    EXPECT_EQ(back.attempts, 1u);   // per-message retry state travels with the message
    EXPECT_EQ(queue.next_wakeup(), AccountQueue::time_point::max());
}

TEST_F(AccountQueueTest, PerMessageRetryStateIsKeptApart) {
    Item first = item("first", 1), third = item("third", 3);
    queue.add_deferred(first, queue.retry_decision(first, 0s).delay);    // 300 s
    queue.add_deferred(third, queue.retry_decision(third, 0s).delay);    // 1200 s
    clock.advance(300s);
    queue.release_due();
    EXPECT_EQ(drain(queue), (std::vector<std::string>{"first"}));
    clock.advance(900s);
    queue.release_due();
    EXPECT_EQ(drain(queue), (std::vector<std::string>{"third"}));
}

TEST_F(AccountQueueTest, MessagesExpireAtTheMaximumQueueLifetime) {
    EXPECT_FALSE(queue.retry_decision(item("A", 7), 5 * 24h - 1s).expired);
    EXPECT_TRUE(queue.retry_decision(item("A", 7), 5 * 24h).expired);
    queue.configure(RetrySchedule{300s, 4000s, 1h}, 0);   // an account override applies at once
    EXPECT_TRUE(queue.retry_decision(item("A", 1), 1h).expired);
}

TEST_F(AccountQueueTest, AccountBackoffDoublesAndStopsSendingUntilItEnds) {
    queue.push_ready(item("A"));
    EXPECT_EQ(queue.back_off(), 300s);
    EXPECT_FALSE(queue.can_send());
    EXPECT_TRUE(queue.troubled());
    EXPECT_EQ(queue.next_wakeup(), clock.now() + 300s);   // the timer wakes the ready mail
    EXPECT_EQ(queue.backoff_remaining(), 300s);
    EXPECT_EQ(queue.back_off(), 600s);
    EXPECT_EQ(queue.back_off(), 1200s);
    EXPECT_EQ(queue.account_failures(), 3u);

    clock.advance(1199s);
    EXPECT_FALSE(queue.can_send());
    EXPECT_EQ(queue.backoff_remaining(), 1s);
    clock.advance(1s);
    EXPECT_TRUE(queue.can_send());
    EXPECT_TRUE(queue.troubled());   // failures still counted until a delivery succeeds
    queue.delivered();
    EXPECT_FALSE(queue.troubled());
    EXPECT_EQ(queue.back_off(), 300s);   // doubling starts over
}

TEST_F(AccountQueueTest, AccountBackoffIsCapped) {
    queue.configure(RetrySchedule{10s, 25s, 1h}, 0);
    EXPECT_EQ(queue.back_off(), 10s);
    EXPECT_EQ(queue.back_off(), 20s);
    EXPECT_EQ(queue.back_off(), 25s);
    EXPECT_EQ(queue.back_off(), 25s);
}

TEST_F(AccountQueueTest, RetryNowMovesEveryDeferredMessageAndEndsTheBackoff) {
    queue.add_deferred(item("late", 3), 1200s);
    queue.add_deferred(item("early", 1), 300s);
    queue.push_ready(item("ready"));
    queue.back_off();
    queue.retry_now();
    EXPECT_EQ(queue.deferred(), 0u);
    EXPECT_FALSE(queue.troubled());
    EXPECT_TRUE(queue.can_send());
    // Ready mail first, then deferred mail in the order it was due.
    EXPECT_EQ(drain(queue), (std::vector<std::string>{"ready", "early", "late"}));
}

TEST_F(AccountQueueTest, RecoveryOrderIsArrivalForDueMailAndRetryTimeForTheRest) {
    // As the agent recovers at startup: the spool lists oldest first; mail whose retry time has
    // passed is ready in that order, the rest waits for its own retry time.
    queue.push_ready(item("0001"));
    queue.add_deferred(item("0002", 2), 60s);
    queue.push_ready(item("0003"));
    queue.add_deferred(item("0004", 1), 30s);
    EXPECT_EQ(drain(queue), (std::vector<std::string>{"0001", "0003"}));
    EXPECT_EQ(queue.next_wakeup(), clock.now() + 30s);
    clock.advance(30s);
    queue.release_due();
    EXPECT_EQ(drain(queue), (std::vector<std::string>{"0004"}));
    clock.advance(30s);
    queue.release_due();
    EXPECT_EQ(drain(queue), (std::vector<std::string>{"0002"}));
}

TEST_F(AccountQueueTest, AccountHoldStopsSendingUntilReleased) {
    queue.push_ready(item("A"));
    EXPECT_TRUE(queue.hold());
    EXPECT_FALSE(queue.hold());      // already on hold: no second account_hold line
    EXPECT_TRUE(queue.on_hold());
    EXPECT_FALSE(queue.can_send());
    clock.advance(24h);              // a hold does not time out
    EXPECT_FALSE(queue.can_send());
    EXPECT_TRUE(queue.release());
    EXPECT_FALSE(queue.release());
    EXPECT_TRUE(queue.can_send());
}

TEST_F(AccountQueueTest, HeldMessagesWaitUntilReleased) {
    queue.push_ready(item("A"));
    queue.add_deferred(item("B", 1), 300s);
    EXPECT_TRUE(queue.hold_message("A"));
    EXPECT_TRUE(queue.hold_message("B"));
    EXPECT_FALSE(queue.hold_message("C"));
    EXPECT_EQ(queue.held(), 2u);
    EXPECT_EQ(queue.waiting(), 0u);
    EXPECT_EQ(queue.next_wakeup(), AccountQueue::time_point::max());   // held mail wakes nothing
    clock.advance(1h);
    queue.release_due();
    EXPECT_EQ(queue.ready(), 0u);

    auto released = queue.take_held("B");
    ASSERT_TRUE(released);
    EXPECT_EQ(released->attempts, 1u);
    EXPECT_FALSE(queue.take_held("B"));
    EXPECT_TRUE(queue.is_held("A"));
}

TEST_F(AccountQueueTest, TakeWaitingFindsReadyAndDeferredMessages) {
    queue.push_ready(item("A"));
    queue.add_deferred(item("B", 1), 300s);
    EXPECT_EQ(queue.take_waiting("B")->message.id, "B");
    EXPECT_EQ(queue.take_waiting("A")->message.id, "A");
    EXPECT_FALSE(queue.take_waiting("A"));
    EXPECT_EQ(queue.waiting(), 0u);
}

TEST_F(AccountQueueTest, PacingSpacesTransactionsAtTheConfiguredRate) {
    queue.configure(RetrySchedule{}, 30);   // Exchange Online: 30 a minute, a burst of at most 1
    const auto t0 = clock.now();
    EXPECT_EQ(queue.pace(), t0);
    EXPECT_EQ(queue.pace(), t0 + 2s);       // one slot every 2 s
    EXPECT_EQ(queue.pace(), t0 + 4s);       // concurrent workers queue up fairly
    clock.advance(10s);
    EXPECT_EQ(queue.pace(), clock.now());   // the debt is paid; no burst beyond one slot
    EXPECT_EQ(queue.pace(), clock.now() + 2s);
}

TEST_F(AccountQueueTest, NoPacingWhenTheRateIsZero) {
    for (int i = 0; i < 100; ++i) EXPECT_EQ(queue.pace(), clock.now());
}

TEST_F(AccountQueueTest, OldestWaitingMessageIsReportedForStatus) {
    EXPECT_FALSE(queue.oldest());
    Item older = item("old"), newer = item("new");
    older.message.received -= 10min;
    queue.push_ready(newer);
    queue.add_deferred(older, 300s);
    ASSERT_TRUE(queue.oldest());
    EXPECT_EQ(*queue.oldest(), older.message.received);
}
