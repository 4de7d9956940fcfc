// Issue 13, item 11: connection caps cut to the descriptor limit, keeping the per-address share.
#include <gtest/gtest.h>

#include "relay/intake/fd_budget.hpp"

using relay::plan_fd_budget;

TEST(FdBudget, PlentyOfDescriptorsKeepsTheConfiguredCaps) {
    auto b = plan_fd_budget(1 << 20, 4096, 1024, 3, 1);
    EXPECT_FALSE(b.reduced);
    EXPECT_EQ(b.max_clients, 4096u);
    EXPECT_EQ(b.max_clients_per_ip, 1024u);
}

// The probe: 128 descriptors, defaults 4096 / 1024. One host filled the table and nobody else got in.
TEST(FdBudget, FewDescriptorsCutBothCapsAndKeepTheShare) {
    auto b = plan_fd_budget(128, 4096, 1024, 3, 1);
    EXPECT_TRUE(b.reduced);
    EXPECT_EQ(b.reserve, 64u + 1u + 6u);
    EXPECT_EQ(b.max_clients, (128u - b.reserve) / 2);
    EXPECT_EQ(b.max_clients_per_ip, b.max_clients / 4);
    EXPECT_LE(b.reserve + 2 * b.max_clients, 128u);
    EXPECT_LT(b.max_clients_per_ip, b.max_clients);   // one address cannot take them all
}

TEST(FdBudget, AlwaysAtLeastOneClient) {
    auto b = plan_fd_budget(16, 4096, 1024, 20, 2);
    EXPECT_EQ(b.max_clients, 1u);
    EXPECT_EQ(b.max_clients_per_ip, 1u);
    auto same = plan_fd_budget(300, 1000, 1000, 0, 1);   // per-address == total stays the admin's choice
    EXPECT_EQ(same.max_clients_per_ip, same.max_clients);
}

TEST(FdBudget, SoftLimitIsRaisedToTheHardLimit) {
    EXPECT_GE(relay::raise_fd_limit(), 64u);
}
