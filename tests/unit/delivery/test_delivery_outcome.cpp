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
    TransactionResult third;   // end of data refused with a hold code
    third.accepted = {"e"};
    third.final_reply = reply_of(550, "5.7.60 SMTP; Client does not have permissions to send as this sender");
    third.data_sent = true;
    out.add(chunks[2], third);
    EXPECT_TRUE(out.stopped());
    EXPECT_EQ(out.delivered, std::vector<std::string>{"a"});
    ASSERT_EQ(out.failed.size(), 1u);
    EXPECT_EQ(out.failed[0].address, "b");
    EXPECT_EQ(out.failed[0].status, "5.1.1");
    EXPECT_EQ(out.retry, (std::vector<std::string>{"c", "d", "e"}));
    EXPECT_EQ(out.first_transient->code, 432);
    EXPECT_EQ(out.hold->enhanced(), "5.7.60");

    Outcome refused;           // MAIL refused for good: every recipient of the chunk fails
    TransactionResult mail;
    mail.final_reply = reply_of(554, "5.6.0 Message rejected as invalid");
    refused.add({"x", "y"}, mail);
    EXPECT_EQ(refused.failed.size(), 2u);
    EXPECT_TRUE(refused.retry.empty());
}

TEST(Outcome, ReplyLineKeepsTheUpstreamCodes) {
    EXPECT_EQ(reply_line(reply_of(554, "5.6.0 Message rejected")), "554 5.6.0 Message rejected");
    EXPECT_EQ(reply_line(reply_of(550, "no enhanced code")), "550 5.0.0 no enhanced code");
    EXPECT_EQ(reply_line(smtp::Reply{250, {"2.0.0 OK <id>", "second line"}}), "250 2.0.0 OK <id>");
}

}  // namespace
