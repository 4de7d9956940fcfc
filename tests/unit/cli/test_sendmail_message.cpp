// sendmail's message preparation: arguments, -t, Bcc, -i, dot-stuffing (relay/cli/sendmail_message).
#include <gtest/gtest.h>

#include "relay/cli/sendmail_message.hpp"

namespace {

using namespace relay;

TEST(Sendmail, ArgumentsInSendmailStyle) {
    sendmail::Options o;
    std::string config;
    EXPECT_EQ(sendmail::parse_arguments({"-t", "-oi", "-fme@x", "-F", "Cron Daemon", "-odi", "--config", "c.toml",
                                         "<a@b>", "--", "-odd@x"}, o, config), "");
    EXPECT_TRUE(o.recipients_from_headers);
    EXPECT_TRUE(o.ignore_dots);
    EXPECT_EQ(o.from, "me@x");
    EXPECT_EQ(o.full_name, "Cron Daemon");
    EXPECT_EQ(config, "c.toml");
    EXPECT_EQ(o.recipients, (std::vector<std::string>{"a@b", "-odd@x"}));
    sendmail::Options bad;
    EXPECT_NE(sendmail::parse_arguments({"-bd"}, bad, config), "");   // daemon mode: not a submission
    EXPECT_NE(sendmail::parse_arguments({"-f"}, bad, config), "");
}

TEST(Sendmail, AddressesInHeaderValues) {
    EXPECT_EQ(sendmail::addresses_in(" A <a@x>, \"Doe, J\" <j@x> (boss, really), b@y, undisclosed-recipients:;"),
              (std::vector<std::string>{"a@x", "j@x", "b@y"}));
    EXPECT_EQ(sendmail::addresses_in("team: c@x, d@y;"), (std::vector<std::string>{"c@x", "d@y"}));
}

TEST(Sendmail, DashTTakesHeaderRecipientsAndDropsBcc) {
    sendmail::Options o;
    o.recipients_from_headers = true;
    o.ignore_dots = true;
    o.recipients = {"extra@x"};
    auto p = sendmail::prepare("To: a@x\nCc: b@x,\n\tc@x\nBcc: hidden@x,\n secret@x\nSubject: s\n\nbody\n.\nend\n", o,
                               "me@host", "Mon, 1 Jan 2026 00:00:00 +0000");
    EXPECT_EQ(p.recipients, (std::vector<std::string>{"extra@x", "a@x", "b@x", "c@x", "hidden@x", "secret@x"}));
    EXPECT_EQ(p.message, "From: me@host\r\nDate: Mon, 1 Jan 2026 00:00:00 +0000\r\nTo: a@x\r\nCc: b@x,\r\n\tc@x\r\n"
                         "Subject: s\r\n\r\nbody\r\n.\r\nend\r\n");
    EXPECT_TRUE(sendmail::dot_stuff(p.message).ends_with("\r\n\r\nbody\r\n..\r\nend\r\n.\r\n"));
}

TEST(Sendmail, WithoutDashIALoneDotEndsTheInput) {
    sendmail::Options o;
    o.recipients = {"a@x"};
    auto p = sendmail::prepare("From: x@y\nDate: d\n\nbefore\n.\nafter\n", o, "me@host", "now");
    EXPECT_EQ(p.message, "From: x@y\r\nDate: d\r\n\r\nbefore\r\n");
    EXPECT_EQ(sendmail::dot_stuff(".x\r\n"), "..x\r\n.\r\n");
    EXPECT_EQ(sendmail::dot_stuff("no newline"), "no newline\r\n.\r\n");
}

TEST(Sendmail, ABodyWithoutHeaderStaysTheBody) {
    sendmail::Options o;
    o.recipients = {"root"};
    // `echo hello | sendmail root`: the text was a broken header field after the added From:/Date:.
    EXPECT_EQ(sendmail::prepare("hello world\n", o, "me@host", "now").message,
              "From: me@host\r\nDate: now\r\n\r\nhello world\r\n");
    // Fields, then text without the empty line: the body starts at the first line that is no field.
    EXPECT_EQ(sendmail::prepare("Subject: s\n folded\ndisk full on /var\n", o, "me@host", "now").message,
              "From: me@host\r\nDate: now\r\nSubject: s\r\n folded\r\n\r\ndisk full on /var\r\n");
    EXPECT_EQ(sendmail::prepare("From root Mon Nov 30 10:00:00 2026\nSubject: s\n\nb\n", o, "me@host", "now").message,
              "From: me@host\r\nDate: now\r\nSubject: s\r\n\r\nb\r\n");   // the mbox line goes, as in Postfix
    EXPECT_EQ(sendmail::prepare(" indented\n", o, "me@host", "now").message,
              "From: me@host\r\nDate: now\r\n\r\n indented\r\n");
}

}  // namespace
