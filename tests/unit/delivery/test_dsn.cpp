// RFC 3464 delivery status notifications (relay/delivery/dsn).
#include <gtest/gtest.h>

#include "relay/delivery/dsn.hpp"

namespace {

using namespace relay;
using namespace std::chrono_literals;

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

}  // namespace

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
