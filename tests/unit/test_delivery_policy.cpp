// Issue 4's pure parts: routing by user and sender, the pacing token bucket, the per-message state
// sidecar, RFC 3464 reports, queue-tool requests, the replies that hold an account, and the new keys.
#include <gtest/gtest.h>

#include "conf/config.hpp"
#include "relay/delivery/account_hold.hpp"
#include "relay/delivery/delivery_outcome.hpp"
#include "relay/delivery/dsn.hpp"
#include "relay/spool/queue_control.hpp"
#include "relay/spool/queue_state.hpp"
#include "relay/delivery/rate_limiter.hpp"
#include "relay/intake/routing.hpp"

namespace {

using namespace relay;
using namespace std::chrono_literals;

const std::string kTwoAccounts = R"(
[relay]
spool_dir = "/tmp/x"
state_dir = "/tmp/y"

[[users]]
name = "scanner"
password = "p"
account = "office"
allowed_senders = ["scanner@contoso.com"]

[[users]]
name = "any"
password = "p"
account = "sales"

[accounts.office]
tenant = "contoso"
client_id = "cid"
email = "scanner@contoso.com"

[accounts.sales]
tenant = "contoso"
client_id = "cid"
email = "sales@contoso.com"
send_as = ["invoices@contoso.com", "Billing@Contoso.com"]
rate_per_minute = 0
max_recipients_per_message = 100
min_backoff = "10s"
max_queue_lifetime = "1d"
bounce = true
delivery = "direct"
)";

TEST(Config, DeliveryPolicyKeysAndDefaults) {
    auto c = conf::parse_config(kTwoAccounts, "t.toml");
    const auto& office = c.accounts.at("office");
    EXPECT_EQ(office.rate_per_minute, 30u);
    EXPECT_EQ(office.max_recipients_per_message, 500u);
    EXPECT_FALSE(office.bounce);
    EXPECT_EQ(office.delivery, conf::DeliveryMode::queue);
    EXPECT_FALSE(office.min_backoff);
    const auto& sales = c.accounts.at("sales");
    EXPECT_EQ(sales.send_as.size(), 2u);
    EXPECT_EQ(sales.rate_per_minute, 0u);
    EXPECT_EQ(sales.max_recipients_per_message, 100u);
    EXPECT_EQ(sales.min_backoff, std::optional<std::chrono::seconds>(10s));
    EXPECT_EQ(sales.max_queue_lifetime, std::optional<std::chrono::seconds>(86400s));
    EXPECT_TRUE(sales.bounce);
    EXPECT_EQ(sales.delivery, conf::DeliveryMode::direct);
    EXPECT_EQ(c.users[0].allowed_senders, std::vector<std::string>{"scanner@contoso.com"});
}

TEST(Config, BadDeliveryPolicyValuesAreReportedWithPosition) {
    std::string text = kTwoAccounts;
    text.replace(text.find("delivery = \"direct\""), 19, "delivery = \"later\"");
    text.replace(text.find("\"invoices@contoso.com\""), 22, "\"not an address\"");
    try {
        conf::parse_config(text, "t.toml");
        FAIL() << "accepted";
    } catch (const conf::ConfigError& e) {
        ASSERT_EQ(e.errors().size(), 2u);
        EXPECT_NE(e.errors()[0].find("t.toml:26:12:"), std::string::npos) << e.errors()[0];
        EXPECT_NE(e.errors()[0].find("send_as"), std::string::npos);
        EXPECT_NE(e.errors()[1].find("expected one of queue, direct"), std::string::npos) << e.errors()[1];
    }
}

TEST(Routing, UserSenderAccountDefaultRefusal) {
    auto c = conf::parse_config(kTwoAccounts, "t.toml");
    auto r = route_message(c, "scanner", "office", "Scanner@Contoso.com");
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.account, "office");
    r = route_message(c, "scanner", "office", "other@contoso.com");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.reply.substr(0, 9), "553 5.7.1");
    r = route_message(c, "any", "sales", "whoever@example.com");   // no allowed_senders: any sender
    EXPECT_EQ(r.account, "sales");
    r = route_message(c, "", "", "sales@contoso.com");
    EXPECT_EQ(r.account, "sales");
    r = route_message(c, "", "", "billing@contoso.com");
    EXPECT_EQ(r.account, "sales");
    r = route_message(c, "", "", "stranger@example.com");
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.reply.substr(0, 9), "550 5.7.1");
    c.relay.default_account = "office";
    r = route_message(c, "", "", "stranger@example.com");
    EXPECT_EQ(r.account, "office");
}

TEST(RateLimiter, OneSecondBurstThenSteadyPace) {
    RateLimiter limiter;
    limiter.set_rate(120);   // 2 a second, burst 2
    auto t0 = RateLimiter::Clock::time_point{} + 100s;
    EXPECT_EQ(limiter.reserve(t0), t0);
    EXPECT_EQ(limiter.reserve(t0), t0);
    EXPECT_EQ(limiter.reserve(t0), t0 + 500ms);
    EXPECT_EQ(limiter.reserve(t0), t0 + 1000ms);
    EXPECT_EQ(limiter.reserve(t0 + 10s), t0 + 10s);   // refilled (capped at the burst)
    EXPECT_EQ(limiter.reserve(t0 + 10s), t0 + 10s);
    EXPECT_EQ(limiter.reserve(t0 + 10s), t0 + 10500ms);
    RateLimiter unlimited;
    unlimited.set_rate(0);
    for (int i = 0; i < 1000; ++i) EXPECT_EQ(unlimited.reserve(t0), t0);
    RateLimiter slow;
    slow.set_rate(30);       // Exchange Online: one every 2 s
    EXPECT_EQ(slow.reserve(t0), t0);
    EXPECT_EQ(slow.reserve(t0), t0 + 2s);
}

TEST(QueueState, RoundTripAndSidecarNames) {
    MessageState s{3, std::chrono::system_clock::time_point(1700000000123ms), "432 4.3.2 busy\r\nx", {"a@x", "b@y"}};
    auto back = parse_state(format_state(s));
    EXPECT_EQ(back.attempts, 3u);
    EXPECT_EQ(back.next_try, s.next_try);
    EXPECT_EQ(back.last_reply, "432 4.3.2 busy  x");
    EXPECT_EQ(back.rcpt_left, s.rcpt_left);
    EXPECT_EQ(parse_state("attempts x\ngarbage\n").attempts, 0u);
    EXPECT_TRUE(is_sidecar_name("19AB3C44D5E0001F.state"));
    EXPECT_TRUE(is_sidecar_name("19AB3C44D5E0001F.hold"));
    EXPECT_FALSE(is_sidecar_name("19AB3C44D5E0001F"));
    EXPECT_EQ(state_path("/q/ID").string(), "/q/ID.state");
}

TEST(Dsn, ReportFollowsRfc3464) {
    DsnInput in;
    in.reporting_host = "relay.test";
    in.account_email = "scanner@contoso.com";
    in.account = "office";
    in.original.mail_from = "app@contoso.com";
    in.original.rcpt_to = {"nobody@example.com"};
    in.original_id = "19AB3C44D5E0001F";
    in.failed = {{"nobody@example.com", status_of_reply("550 5.1.1 User unknown"), "550 5.1.1 User unknown"}};
    in.original_header = "Subject: invoice\r\nFrom: app@contoso.com\r\n";
    Dsn dsn = build_dsn(in);
    EXPECT_EQ(dsn.envelope.mail_from, "scanner@contoso.com");
    EXPECT_EQ(dsn.envelope.rcpt_to, std::vector<std::string>{"app@contoso.com"});
    EXPECT_TRUE(dsn.envelope.dsn);
    EXPECT_FALSE(may_bounce(dsn.envelope));      // never bounce a bounce
    const std::string& m = dsn.message;
    EXPECT_NE(m.find("Content-Type: multipart/report; report-type=delivery-status;"), std::string::npos);
    EXPECT_NE(m.find("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.test\r\n"), std::string::npos);
    EXPECT_NE(m.find("\r\n\r\nFinal-Recipient: rfc822; nobody@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n"),
              std::string::npos);
    EXPECT_NE(m.find("Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"), std::string::npos);
    EXPECT_NE(m.find("Content-Type: text/rfc822-headers\r\n\r\nSubject: invoice\r\n"), std::string::npos);
    EXPECT_NE(m.find("Auto-Submitted: auto-replied\r\n"), std::string::npos);
    EXPECT_EQ(m.find('\n'), m.find("\r\n") + 1);
    Envelope null_sender;
    EXPECT_FALSE(may_bounce(null_sender));
    EXPECT_EQ(status_of_reply("554 Message rejected"), "5.0.0");
    EXPECT_EQ(status_of_reply("552 5.3.4 Too big"), "5.3.4");
}

// Issue 13, item 8: the boundary was "=_dsn_<queue id>", and the queue id is in the client's 250
// reply, so a client put that boundary line in its own header and added parts to the report.
TEST(Dsn, BoundaryIsRandomAndAbsentFromTheContent) {
    DsnInput in;
    in.reporting_host = "relay.test";
    in.account_email = "scanner@contoso.com";
    in.original.mail_from = "app@contoso.com";
    in.original_id = "19AB3C44D5E0001F";
    in.failed = {{"nobody@example.com", "5.1.1", "550 5.1.1 User unknown"}};
    in.original_header = "Subject: x\r\nX-Evil: --=_dsn_19AB3C44D5E0001F\r\nX-Evil2: --=_dsn_planted\r\n";
    auto boundary_of = [](const std::string& m) {
        const std::string key = "boundary=\"";
        const auto at = m.find(key) + key.size();
        return m.substr(at, m.find('"', at) - at);
    };
    const Dsn a = build_dsn(in);
    const Dsn b = build_dsn(in);
    const std::string ba = boundary_of(a.message);
    EXPECT_EQ(ba.find(in.original_id), std::string::npos) << ba;
    EXPECT_NE(ba, boundary_of(b.message));
    EXPECT_GE(ba.size(), 6u + 32u);   // 128 random bits, hex
    // The boundary line appears exactly as the structure needs it: three parts and the close.
    std::size_t count = 0;
    for (auto at = a.message.find("--" + ba); at != std::string::npos; at = a.message.find("--" + ba, at + 1)) ++count;
    EXPECT_EQ(count, 4u);
    // A token that occurs in the content is never used: the next one is drawn.
    std::vector<std::string> tokens{"planted", "fresh"};
    std::size_t drawn = 0;
    const Dsn c = build_dsn(in, [&] { return tokens.at(drawn++); });
    EXPECT_EQ(boundary_of(c.message), "=_dsn_fresh");
    EXPECT_EQ(drawn, 2u);
}

TEST(QueueControl, RequestsRoundTripAndRejectPaths) {
    using V = ControlRequest::Verb;
    for (const auto& r : {ControlRequest{V::retry, "19AB3C44D5E0001F"}, ControlRequest{V::retry_all, ""},
                          ControlRequest{V::hold, "19AB3C44D5E0001F"}, ControlRequest{V::release, "19AB3C44D5E0001F"},
                          ControlRequest{V::remove, "19AB3C44D5E0001F"}})
        EXPECT_EQ(parse_request(format_request(r)), r) << format_request(r);
    EXPECT_FALSE(parse_request("delete ../../etc/passwd"));
    EXPECT_FALSE(parse_request("explode 19AB3C44D5E0001F"));
    EXPECT_FALSE(parse_request("retry"));
}

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
