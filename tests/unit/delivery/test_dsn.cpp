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
