// Senders Exchange just refused (relay/delivery/denied_senders): remembered for a while, per sender,
// never the account's own address; FakeClock moves time.
#include <gtest/gtest.h>

#include "relay/delivery/denied_senders.hpp"

namespace {

using namespace relay;
using namespace std::chrono_literals;

constexpr const char* kMailbox = "scanner@contoso.com";
constexpr const char* kDenied = "554 5.2.252 SendAsDenied; scanner@contoso.com not allowed to send as ceo@contoso.com";

TEST(DeniedSenders, RemembersASenderForAnHourCaseInsensitively) {
    core::FakeClock clock;
    DeniedSenders denied(clock);
    EXPECT_FALSE(denied.find("ceo@contoso.com"));
    EXPECT_TRUE(denied.remember("CEO@contoso.com", kMailbox, kDenied, "0001"));
    clock.advance(59min);
    auto d = denied.find("ceo@Contoso.com");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->queue_id, "0001");
    EXPECT_EQ(d->reply, kDenied);
    EXPECT_EQ(d->until - d->at, kDeniedSenderMemory);
    EXPECT_FALSE(denied.find("other@contoso.com"));
    clock.advance(1min);
    EXPECT_FALSE(denied.find("ceo@contoso.com"));   // tried upstream again after an hour
}

TEST(DeniedSenders, NeverTheMailboxItselfButTheNullSender) {
    core::FakeClock clock;
    DeniedSenders denied(clock);
    // The mailbox's own envelope: the refusal was about that message's From: header.
    EXPECT_FALSE(denied.remember("Scanner@Contoso.com", kMailbox, kDenied, "0001"));
    EXPECT_FALSE(denied.find(kMailbox));
    EXPECT_TRUE(denied.remember("", kMailbox, "550 5.7.60 SMTP; Client does not have permissions", "0002"));
    EXPECT_TRUE(denied.find(""));
}

TEST(DeniedSenders, ForgetClearAndBoundedSize) {
    core::FakeClock clock;
    DeniedSenders denied(clock, 1h, 3);
    denied.remember("a@x", kMailbox, kDenied, "1");
    clock.advance(1s);
    denied.remember("b@x", kMailbox, kDenied, "2");
    clock.advance(1s);
    denied.remember("c@x", kMailbox, kDenied, "3");
    clock.advance(1s);
    denied.remember("d@x", kMailbox, kDenied, "4");   // full: the oldest refusal goes
    EXPECT_EQ(denied.size(), 3u);
    EXPECT_FALSE(denied.find("a@x"));
    EXPECT_TRUE(denied.find("d@x"));
    denied.forget("B@X");                              // queue retry of b's message
    EXPECT_FALSE(denied.find("b@x"));
    denied.remember("c@x", kMailbox, kDenied, "5");   // refused again: the hour starts again
    EXPECT_EQ(denied.find("c@x")->queue_id, "5");
    denied.clear();                                    // reload, queue retry --all
    EXPECT_EQ(denied.size(), 0u);
}

}  // namespace
