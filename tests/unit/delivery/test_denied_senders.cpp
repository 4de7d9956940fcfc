// Senders Exchange just refused (relay/delivery/denied_senders): remembered for a while per pair of
// envelope sender and From: address, never the mailbox's own pair; FakeClock moves time.
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
    EXPECT_FALSE(denied.find("ceo@contoso.com", "ceo@contoso.com"));
    EXPECT_TRUE(denied.remember("CEO@contoso.com", "ceo@contoso.com", kMailbox, kDenied, "0001"));
    clock.advance(59min);
    auto d = denied.find("ceo@Contoso.com", "CEO@contoso.com");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->queue_id, "0001");
    EXPECT_EQ(d->reply, kDenied);
    EXPECT_EQ(d->until - d->at, kDeniedSenderMemory);
    EXPECT_FALSE(denied.find("other@contoso.com", "other@contoso.com"));
    EXPECT_FALSE(denied.find("ceo@contoso.com", "other@contoso.com"));   // another From: is another sender
    clock.advance(1min);
    EXPECT_FALSE(denied.find("ceo@contoso.com", "ceo@contoso.com"));   // tried upstream again after an hour
}

TEST(DeniedSenders, TheMailboxWithAForeignFromIsRememberedByThatFromOnly) {
    core::FakeClock clock;
    DeniedSenders denied(clock);
    // The mailbox's own pair: the refusal cannot be about the sender.
    EXPECT_FALSE(denied.remember("Scanner@Contoso.com", "scanner@contoso.com", kMailbox, kDenied, "0001"));
    EXPECT_FALSE(denied.remember(kMailbox, "", kMailbox, kDenied, "0002"));
    EXPECT_EQ(denied.size(), 0u);
    // A device logged in as the mailbox with a fixed foreign From: (Graph only sees the From:).
    EXPECT_TRUE(denied.remember(kMailbox, "ceo@contoso.com", kMailbox, kDenied, "0003"));
    EXPECT_TRUE(denied.find(kMailbox, "ceo@contoso.com"));
    EXPECT_FALSE(denied.find(kMailbox, kMailbox));
    EXPECT_FALSE(denied.find(kMailbox, ""));
    // The null sender is a sender like any other.
    EXPECT_TRUE(denied.remember("", "", kMailbox, "550 5.7.60 SMTP; Client does not have permissions", "0004"));
    EXPECT_TRUE(denied.find("", ""));
}

TEST(DeniedSenders, ForgetClearAndBoundedSize) {
    core::FakeClock clock;
    DeniedSenders denied(clock, 1h, 3);
    denied.remember("a@x", "a@x", kMailbox, kDenied, "1");
    clock.advance(1s);
    denied.remember("b@x", "b@x", kMailbox, kDenied, "2");
    denied.remember("b@x", "", kMailbox, kDenied, "2b");
    clock.advance(1s);
    denied.remember("c@x", "c@x", kMailbox, kDenied, "3");   // full: the oldest refusal goes
    EXPECT_EQ(denied.size(), 3u);
    EXPECT_FALSE(denied.find("a@x", "a@x"));
    EXPECT_TRUE(denied.find("c@x", "c@x"));
    denied.forget("B@X");                                     // queue retry: every From: of b
    EXPECT_FALSE(denied.find("b@x", "b@x"));
    EXPECT_FALSE(denied.find("b@x", ""));
    denied.remember("c@x", "c@x", kMailbox, kDenied, "5");   // refused again: the hour starts again
    EXPECT_EQ(denied.find("c@x", "c@x")->queue_id, "5");
    denied.clear();                                           // reload, queue retry --all
    EXPECT_EQ(denied.size(), 0u);
}

}  // namespace
