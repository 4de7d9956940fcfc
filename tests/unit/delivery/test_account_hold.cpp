// What each upstream reply is about (relay/delivery/account_hold): one message, one sender or the
// whole account (issue 11 item 3), and that a quota reply defers rather than fails.
#include <gtest/gtest.h>

#include "relay/delivery/account_hold.hpp"
#include "relay/delivery/delivery_outcome.hpp"

namespace {

using namespace relay;
using namespace std::chrono_literals;

smtp::Reply reply(int code, std::string line) { return smtp::Reply{code, {std::move(line)}}; }

TEST(AccountHold, OneTableSaysWhatEachReplyIsAbout) {
    struct Case {
        int code;
        const char* line;
        ReplyScope scope;
    };
    const Case cases[] = {
        {250, "2.0.0 OK <id@host>", ReplyScope::delivered},
        // About one sender: the message fails, the sender is remembered, the account goes on.
        {554, "5.2.252 SendAsDenied; scanner@contoso.com not allowed to send as ceo@contoso.com", ReplyScope::deny_sender},
        {550, "5.7.60 SMTP; Client does not have permissions to send as this sender", ReplyScope::deny_sender},
        // About one message or recipient: the message (or recipient) fails.
        {550, "5.1.1 User unknown", ReplyScope::fail_message},
        {550, "5.1.10 RESOLVER.ADR.RecipientNotFound", ReplyScope::fail_message},
        {552, "5.3.4 Message size exceeds fixed maximum message size", ReplyScope::fail_message},
        {554, "5.6.0 Message rejected as invalid", ReplyScope::fail_message},
        {550, "5.6.211 Invalid MIME content", ReplyScope::fail_message},
        {554, "no enhanced code at all", ReplyScope::fail_message},
        {550, "5.7.1 Service unavailable, Client host blocked", ReplyScope::fail_message},
        // About the account: a person must act.
        {535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox", ReplyScope::hold_account},
        {550, "5.2.251 throttled", ReplyScope::hold_account},
        {550, "5.2.253 throttled", ReplyScope::hold_account},
        {550, "5.2.254 throttled", ReplyScope::hold_account},
        {550, "5.2.255 throttled", ReplyScope::hold_account},
        // Temporary, whatever the form.
        {432, "4.3.2 Concurrent connections limit exceeded", ReplyScope::retry},
        {451, "4.4.1 Connection dropped", ReplyScope::retry},
        {0, "", ReplyScope::retry},
        {554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed", ReplyScope::retry},
    };
    for (const auto& c : cases) EXPECT_EQ(scope_of(reply(c.code, c.line)), c.scope) << c.code << " " << c.line;
}

TEST(AccountHold, OnlyAccountCausesHaveAHoldAction) {
    auto disabled = hold_action_for(reply(535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled"));
    ASSERT_TRUE(disabled);
    EXPECT_NE(disabled->find("Set-CASMailbox"), std::string::npos);
    for (const char* c : {"5.2.251", "5.2.253", "5.2.254", "5.2.255"})
        EXPECT_TRUE(hold_action_for(reply(550, std::string(c) + " throttled"))) << c;
    EXPECT_FALSE(hold_action_for(reply(550, "5.7.60 SMTP; Client does not have permissions to send as this sender")));
    EXPECT_FALSE(hold_action_for(reply(554, "5.2.252 SendAsDenied")));
    EXPECT_FALSE(hold_action_for(reply(535, "5.7.3 Authentication unsuccessful")));
    EXPECT_FALSE(hold_action_for(reply(550, "5.1.1 User unknown")));
    EXPECT_FALSE(hold_action_for(reply(432, "4.3.2 Concurrent connections limit exceeded")));
}

TEST(AccountHold, QuotaWaitsInsteadOfFailing) {
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
