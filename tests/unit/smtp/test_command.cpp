// Table-driven tests of the SMTP command-line and MAIL/RCPT path parsers (RFC 5321 4.1.2).
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "relay/smtp/command.hpp"

using namespace relay::smtp;

namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

// A MAIL/RCPT argument and the address and parameters it must parse into.
struct PathRow {
    const char* argument;
    const char* address;
    Params params;
};

}  // namespace

TEST(SmtpCommand, SplitsVerbAndArgument) {
    struct Row {
        const char* line;
        const char* verb;
        const char* argument;
    };
    const Row rows[] = {
        {"ehlo client.example\r\n", "EHLO", "client.example"},
        {"MAIL FROM:<a@b.example>   ", "MAIL", "FROM:<a@b.example>"},
        {"QUIT", "QUIT", ""},
        {"Quit\r\n", "QUIT", ""},
        {"NOOP  x \t", "NOOP", " x"},
        {"", "", ""},
        {"starttls\r\n", "STARTTLS", ""},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(row.line);
        const Command c = parse_command(row.line);
        EXPECT_EQ(c.verb, row.verb);
        EXPECT_EQ(c.argument, row.argument);
    }
}

TEST(SmtpCommand, ParsesMailFrom) {
    const std::vector<PathRow> rows = {
        {"FROM:<a@b.example>", "a@b.example", {}},
        {"from:<a@b.example>", "a@b.example", {}},
        {"FROM: <a@b.example>", "a@b.example", {}},
        {"FROM:<>", "", {}},
        {"FROM:<> BODY=8BITMIME", "", {{"BODY", "8BITMIME"}}},
        {"FROM:<a@b.example> size=123  BODY=7BIT", "a@b.example", {{"SIZE", "123"}, {"BODY", "7BIT"}}},
        {"FROM:<a@b.example> AUTH=<>", "a@b.example", {{"AUTH", "<>"}}},
        {"FROM:<a@b.example> X-FLAG", "a@b.example", {{"X-FLAG", ""}}},
        {"FROM:<\"john doe\"@b.example>", "\"john doe\"@b.example", {}},
        {"FROM:<\"a\\\"b\"@b.example>", "\"a\\\"b\"@b.example", {}},
        {"FROM:<first.last+tag@sub.b-c.example>", "first.last+tag@sub.b-c.example", {}},
        {"FROM:<a@[192.0.2.1]>", "a@[192.0.2.1]", {}},
        {"FROM:<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]", {}},
        {"FROM:<@relay1.example,@relay2.example:a@b.example>", "a@b.example", {}},
        {"FROM:<a@host_with_underscore.lan>", "a@host_with_underscore.lan", {}},
    };
    for (const PathRow& row : rows) {
        SCOPED_TRACE(row.argument);
        PathError error;
        const auto path = parse_mail_from(row.argument, error);
        ASSERT_TRUE(path.has_value()) << error.reply;
        EXPECT_EQ(path->address, row.address);
        EXPECT_EQ(path->params, row.params);
    }
}

TEST(SmtpCommand, RejectsBadMailFrom) {
    struct Row {
        const char* argument;
        const char* reply;
    };
    const Row rows[] = {
        {"", "501 5.5.4 Syntax: MAIL FROM:<address>"},
        {"TO:<a@b.example>", "501 5.5.4 Syntax: MAIL FROM:<address>"},
        {"FROM:a@b.example", "501 5.1.7 Bad sender address syntax: the address must be in angle brackets, "
                             "MAIL FROM:<user@example.com>"},
        {"FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>"},
        {"FROM:<a@b.example", "501 5.1.7 Bad sender address syntax"},
        {"FROM:<a b@b.example>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:<a\x01@b.example>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:<\"a\x01\"@b.example>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:<root>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:<a@>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:<a@b..example>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:<a@[300.1.1.1]>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:<a@[IPv6:zz::1]>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:<\"unterminated@b.example>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:<@relay.example a@b.example>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:<a@b.example>SIZE=1", "501 5.5.4 Bad parameter syntax"},
        {"FROM:<a@b.example> SIZE=", "501 5.5.4 Bad parameter syntax"},
        {"FROM:<a@b.example> =1", "501 5.5.4 Bad parameter syntax"},
        {"FROM:<a@b.example> K=a=b", "501 5.5.4 Bad parameter syntax"},
    };
    for (const Row& row : rows) {
        SCOPED_TRACE(testing::PrintToString(std::string(row.argument)));
        PathError error;
        EXPECT_FALSE(parse_mail_from(row.argument, error).has_value());
        EXPECT_EQ(error.reply, row.reply);
    }
}

TEST(SmtpCommand, ParsesRcptTo) {
    PathError error;
    auto path = parse_rcpt_to("TO:<x@y.example>", error);
    ASSERT_TRUE(path);
    EXPECT_EQ(path->address, "x@y.example");
    path = parse_rcpt_to("to: <@hop.example:x@y.example> NOTIFY=NEVER", error);
    ASSERT_TRUE(path);
    EXPECT_EQ(path->address, "x@y.example");
    ASSERT_EQ(path->params.size(), 1u);
    EXPECT_EQ(path->params[0].first, "NOTIFY");
    path = parse_rcpt_to("TO:<Postmaster>", error);   // RFC 5321 4.1.1.3
    ASSERT_TRUE(path);
    EXPECT_EQ(path->address, "Postmaster");

    for (const char* bad : {"TO:<>", "TO:<x>", "TO:<x@y.example", "TO:<x y@y.example>"}) {
        SCOPED_TRACE(bad);
        EXPECT_FALSE(parse_rcpt_to(bad, error));
        EXPECT_EQ(error.reply, "501 5.1.3 Bad recipient address syntax");
    }
    EXPECT_FALSE(parse_rcpt_to("TO:x@y.example", error));
    EXPECT_EQ(error.reply, "501 5.1.3 Bad recipient address syntax: the address must be in angle brackets, "
                           "RCPT TO:<user@example.com>");
    EXPECT_FALSE(parse_rcpt_to("FROM:<x@y.example>", error));
    EXPECT_EQ(error.reply, "501 5.5.4 Syntax: RCPT TO:<address>");
}

// Lenient clients (issue 11, item 1b): Postfix's default accepts a path without angle brackets. The
// address is still one whole Mailbox; parameters after a space are parameters, as in Postfix.
TEST(SmtpCommand, UnbracketedPathsWhenAllowed) {
    const std::vector<PathRow> rows = {
        {"FROM:user@host.example", "user@host.example", {}},
        {"FROM: user@host.example", "user@host.example", {}},
        {"FROM:  user@host.example SIZE=123", "user@host.example", {{"SIZE", "123"}}},
        {"FROM:user@[192.0.2.1] BODY=8BITMIME", "user@[192.0.2.1]", {{"BODY", "8BITMIME"}}},
        {"FROM:<a@b.example>", "a@b.example", {}},   // brackets still work
        {"FROM:<>", "", {}},
    };
    for (const PathRow& row : rows) {
        SCOPED_TRACE(row.argument);
        PathError error;
        const auto path = parse_mail_from(row.argument, error, /*unbracketed=*/true);
        ASSERT_TRUE(path.has_value()) << error.reply;
        EXPECT_EQ(path->address, row.address);
        EXPECT_EQ(path->params, row.params);
    }
    PathError error;
    auto rcpt = parse_rcpt_to("TO:x@y.example", error, true);
    ASSERT_TRUE(rcpt);
    EXPECT_EQ(rcpt->address, "x@y.example");
    rcpt = parse_rcpt_to("TO: postmaster", error, true);
    ASSERT_TRUE(rcpt);
    EXPECT_EQ(rcpt->address, "postmaster");

    // Still refused: anything that is not one plain Mailbox.
    const std::pair<const char*, const char*> bad[] = {
        {"FROM:root", "501 5.1.7 Bad sender address syntax"},
        {"FROM:a@b.example>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:John Doe <a@b.example>", "501 5.1.7 Bad sender address syntax"},
        {"FROM:a@b.example c@d.example", "501 5.5.4 Bad parameter syntax"},
        {"FROM:a@b.example,c@d.example", "501 5.1.7 Bad sender address syntax"},
        {"FROM:@relay.example:a@b.example", "501 5.1.7 Bad sender address syntax"},
        {"FROM:a\x01@b.example", "501 5.1.7 Bad sender address syntax"},
        {"FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>"},
    };
    for (const auto& [argument, reply] : bad) {
        SCOPED_TRACE(testing::PrintToString(std::string(argument)));
        EXPECT_FALSE(parse_mail_from(argument, error, true).has_value());
        EXPECT_EQ(error.reply, reply);
    }
    EXPECT_FALSE(parse_rcpt_to("TO:x", error, true));
    EXPECT_EQ(error.reply, "501 5.1.3 Bad recipient address syntax");
}
