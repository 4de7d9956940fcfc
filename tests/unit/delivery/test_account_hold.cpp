// Which upstream replies hold an account (relay/delivery/account_hold), and that a quota reply
// defers rather than fails.
#include <gtest/gtest.h>

#include "relay/delivery/account_hold.hpp"
#include "relay/delivery/delivery_outcome.hpp"

namespace {

using namespace relay;
using namespace std::chrono_literals;

TEST(AccountHold, ContinuousErrorCodesHoldOthersDoNot) {
    const auto reply = [](int code, std::string line) { return smtp::Reply{code, {std::move(line)}}; };
    EXPECT_TRUE(hold_action_for(reply(535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled")));
    EXPECT_TRUE(hold_action_for(reply(550, "5.7.60 SMTP; Client does not have permissions to send as this sender")));
    EXPECT_TRUE(hold_action_for(reply(554, "5.2.252 SendAsDenied")));
    for (const char* c : {"5.2.251", "5.2.253", "5.2.254", "5.2.255"})
        EXPECT_TRUE(hold_action_for(reply(550, std::string(c) + " throttled"))) << c;
    EXPECT_FALSE(hold_action_for(reply(535, "5.7.3 Authentication unsuccessful")));
    EXPECT_FALSE(hold_action_for(reply(550, "5.1.1 User unknown")));
    EXPECT_FALSE(hold_action_for(reply(432, "4.3.2 Concurrent connections limit exceeded")));
    auto quota = reply(554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process");
    EXPECT_FALSE(hold_action_for(quota));
    EXPECT_TRUE(quota_exceeded(quota));
    Outcome out;
    TransactionResult result;
    result.final_reply = quota;
    out.add({"a"}, result);
    EXPECT_EQ(out.retry, std::vector<std::string>{"a"});   // waits, does not fail
    EXPECT_TRUE(out.failed.empty());
}

}  // namespace
