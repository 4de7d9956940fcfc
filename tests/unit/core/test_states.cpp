// The one vocabulary (issue 12, item 5): every state has a unique name and a meaning, and an
// account's flags map to one state, most urgent first.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "relay/core/states.hpp"

using namespace relay;

TEST(States, NamesAreUniqueAndDescribed) {
    std::set<std::string_view> messages, accounts;
    for (const auto& s : state::kMessageStates) {
        EXPECT_TRUE(messages.insert(s.name).second) << s.name;
        EXPECT_FALSE(s.meaning.empty()) << s.name;
    }
    for (const auto& s : state::kAccountStates) {
        EXPECT_TRUE(accounts.insert(s.name).second) << s.name;
        EXPECT_FALSE(s.meaning.empty()) << s.name;
    }
    EXPECT_EQ(state::name(state::Message::queued), "queued");
    EXPECT_EQ(state::name(state::Message::active), "active");
    EXPECT_EQ(state::name(state::Message::deferred), "deferred");
    EXPECT_EQ(state::name(state::Message::held), "held");
    EXPECT_EQ(state::name(state::Message::failed), "failed");
    EXPECT_EQ(state::name(state::Message::delivered), "delivered");
    EXPECT_EQ(state::name(state::Account::ready), "ready");
    EXPECT_EQ(state::name(state::Account::backing_off), "backing-off");
    EXPECT_EQ(state::name(state::Account::waiting_for_token), "waiting-for-token");
    EXPECT_EQ(state::name(state::Account::held), "held");
    // "ready" is an account word only: a message waiting for its turn is "queued" everywhere.
    EXPECT_EQ(messages.count("ready"), 0u);
}

TEST(States, AccountStateIsTheMostUrgentFlag) {
    EXPECT_EQ(state::account_state(false, false, false), state::Account::ready);
    EXPECT_EQ(state::account_state(false, false, true), state::Account::backing_off);
    EXPECT_EQ(state::account_state(false, true, true), state::Account::waiting_for_token);
    EXPECT_EQ(state::account_state(true, true, true), state::Account::held);
}
