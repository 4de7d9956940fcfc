// Classifying an upstream session's replies per recipient (relay/delivery/delivery_outcome).
#include <gtest/gtest.h>

#include "relay/delivery/delivery_outcome.hpp"

namespace {

using namespace relay;
using namespace std::chrono_literals;

smtp::Reply reply_of(int code, std::string line) { return smtp::Reply{code, {std::move(line)}}; }

TEST(Outcome, SplitsAndClassifiesEveryRecipient) {
    const std::vector<std::string> rcpts{"a", "b", "c", "d", "e"};
    auto chunks = split_recipients(rcpts, 2);
    ASSERT_EQ(chunks.size(), 3u);
    EXPECT_EQ(chunks[2], std::vector<std::string>{"e"});
    EXPECT_EQ(split_recipients(rcpts, 0).size(), 5u);

    Outcome out;
    TransactionResult first;   // a delivered, b refused for good at RCPT
    first.accepted = {"a"};
    first.rejected = {{"b", reply_of(550, "5.1.1 User unknown")}};
    first.final_reply = reply_of(250, "2.0.0 OK");
    first.data_sent = true;
    out.add(chunks[0], first);
    TransactionResult second;  // MAIL refused with a transient reply: both retried
    second.final_reply = reply_of(432, "4.3.2 Concurrent connections limit exceeded");
    out.add(chunks[1], second);
    EXPECT_FALSE(out.stopped());
    TransactionResult third;   // end of data refused with a hold code (SMTP AUTH disabled)
    third.accepted = {"e"};
    third.final_reply = reply_of(550, "5.2.251 continuous errors");
    third.data_sent = true;
    out.add(chunks[2], third);
    EXPECT_TRUE(out.stopped());
    EXPECT_EQ(out.delivered, std::vector<std::string>{"a"});
    ASSERT_EQ(out.failed.size(), 1u);
    EXPECT_EQ(out.failed[0].address, "b");
    EXPECT_EQ(out.failed[0].status, "5.1.1");
    EXPECT_EQ(out.retry, (std::vector<std::string>{"c", "d", "e"}));
    EXPECT_EQ(out.first_transient->code, 432);
    EXPECT_EQ(out.hold->enhanced(), "5.2.251");

    Outcome refused;           // MAIL refused for good: every recipient of the chunk fails
    TransactionResult mail;
    mail.final_reply = reply_of(554, "5.6.0 Message rejected as invalid");
    refused.add({"x", "y"}, mail);
    EXPECT_EQ(refused.failed.size(), 2u);
    EXPECT_TRUE(refused.retry.empty());
}

// Some recipients refused at RCPT, the others accepted: the good ones are delivered, the bad ones
// fail (for the DSN) and nothing is retried, so the message is not sent twice to anyone.
TEST(Outcome, PartialRcptRefusalDeliversTheRestAndFailsTheRefused) {
    Outcome out;
    TransactionResult t;
    t.accepted = {"good1", "good2"};
    t.rejected = {{"bad1", reply_of(550, "5.1.1 User unknown")}, {"bad2", reply_of(550, "5.1.10 RecipientNotFound")}};
    t.final_reply = reply_of(250, "2.0.0 OK <id>");
    t.data_sent = true;
    out.add({"good1", "bad1", "good2", "bad2"}, t);
    EXPECT_EQ(out.delivered, (std::vector<std::string>{"good1", "good2"}));
    ASSERT_EQ(out.failed.size(), 2u);
    EXPECT_EQ(out.failed[1].status, "5.1.10");
    EXPECT_TRUE(out.retry.empty());
    EXPECT_FALSE(out.hold);
    EXPECT_FALSE(out.sender_denied);

    Outcome all_refused;   // every RCPT refused: no DATA, every recipient fails on its own reply
    TransactionResult none;
    none.rejected = {{"x", reply_of(550, "5.1.1 User unknown")}, {"y", reply_of(450, "4.2.1 try later")}};
    none.final_reply = reply_of(450, "4.2.1 try later");
    all_refused.add({"x", "y"}, none);
    ASSERT_EQ(all_refused.failed.size(), 1u);
    EXPECT_EQ(all_refused.failed[0].address, "x");
    EXPECT_EQ(all_refused.retry, std::vector<std::string>{"y"});
}

// A SendAs refusal fails the message, not the account, and the later chunks are not sent: the same
// sender would only be refused again (Exchange's continuous-error throttling counts each one).
TEST(Outcome, SendAsRefusalFailsEveryRecipientWithoutAskingAgain) {
    for (const char* line : {"5.2.252 SendAsDenied; scanner@contoso.com not allowed to send as ceo@contoso.com",
                             "5.7.60 SMTP; Client does not have permissions to send as this sender"}) {
        Outcome out;
        TransactionResult first;
        first.accepted = {"a", "b"};
        first.final_reply = reply_of(line[2] == '2' ? 554 : 550, line);
        first.data_sent = true;
        out.add({"a", "b"}, first);
        EXPECT_TRUE(out.stopped()) << line;
        out.not_attempted({"c"});
        EXPECT_FALSE(out.hold) << line;
        ASSERT_TRUE(out.sender_denied) << line;
        EXPECT_EQ(out.failed.size(), 3u) << line;
        EXPECT_TRUE(out.retry.empty()) << line;
        EXPECT_EQ(out.failed[2].diagnostic, out.sender_denied->text());
    }
    Outcome broken;   // a broken session after the refusal still retries what was never tried
    TransactionResult refused;
    refused.final_reply = reply_of(550, "5.7.60 SMTP; Client does not have permissions to send as this sender");
    broken.add({"a"}, refused);
    broken.io_error = "connection reset";
    broken.not_attempted({"b"});
    EXPECT_EQ(broken.retry, std::vector<std::string>{"b"});
}

TEST(Outcome, ReplyLineKeepsTheUpstreamCodes) {
    EXPECT_EQ(reply_line(reply_of(554, "5.6.0 Message rejected")), "554 5.6.0 Message rejected");
    EXPECT_EQ(reply_line(reply_of(550, "no enhanced code")), "550 5.0.0 no enhanced code");
    EXPECT_EQ(reply_line(smtp::Reply{250, {"2.0.0 OK <id>", "second line"}}), "250 2.0.0 OK <id>");
}

}  // namespace
