// SessionPolicy::lenient (issue 11, item 1): what a trusted LAN client is forgiven, and that a strict
// client keeps the strict replies. Golden transcripts, see session_transcript.hpp.
#include <gtest/gtest.h>

#include <string>

#include "session_transcript.hpp"

namespace {

using namespace session_testing;
using namespace std::string_literals;

SessionPolicy lenient_policy() {
    SessionPolicy p = base_policy();
    p.lenient = true;
    p.max_message_size = 100000;
    return p;
}

SessionPolicy strict_policy() {
    SessionPolicy p = base_policy();
    p.max_message_size = 100000;
    return p;
}

// Up to DATA's 354, in separate reads.
void open_data(Conversation& conv) {
    conv.send("EHLO printer.lan\r\n");
    conv.send("MAIL FROM:<printer@corp.example>\r\n");
    conv.send("RCPT TO:<boss@corp.example>\r\n");
    conv.send("DATA\r\n");
    ASSERT_NE(conv.transcript.find("354 "), std::string::npos) << conv.transcript;
}

std::string last_reply(const Conversation& conv) {
    const std::size_t at = conv.transcript.rfind("S: ");
    return conv.transcript.substr(at + 3, conv.transcript.find('\n', at) - at - 3);
}

TEST(SmtpSessionLenient, LongTextLinesAreAcceptedFromLenientClients) {
    Conversation conv(lenient_policy());
    open_data(conv);
    const std::string html = "<html>" + std::string(5000, 'x') + "</html>";
    conv.send("Subject: report\r\n\r\n" + html + "\r\n.\r\n");
    EXPECT_EQ(last_reply(conv), "250 2.0.0 Ok: queued as Q1");
    ASSERT_EQ(conv.sink.committed.size(), 1u);
    EXPECT_EQ(conv.sink.committed[0], "Subject: report\r\n\r\n" + html + "\r\n");
}

TEST(SmtpSessionLenient, LongTextLinesHaveABound) {
    SessionPolicy p = lenient_policy();
    p.max_message_size = 4 * kLenientMaxLineLength;
    Conversation conv(p);
    open_data(conv);
    conv.send(std::string(kLenientMaxLineLength - 2, 'y') + "\r\n");   // exactly the bound, CRLF included
    conv.send(std::string(kLenientMaxLineLength - 1, 'z') + "\r\n.\r\n");
    EXPECT_EQ(last_reply(conv), "500 5.5.2 Message line too long (RFC 5321 allows 998 characters)");
    EXPECT_TRUE(conv.sink.committed.empty());
    EXPECT_EQ(conv.sink.aborts, 1);
}

TEST(SmtpSessionLenient, StrictClientsKeepTheLineLimit) {
    Conversation conv(strict_policy());
    open_data(conv);
    conv.send("Subject: report\r\n\r\n" + std::string(999, 'x') + "\r\n.\r\n");
    EXPECT_EQ(last_reply(conv), "500 5.5.2 Message line too long (RFC 5321 allows 998 characters)");
    EXPECT_TRUE(conv.sink.committed.empty());
}

TEST(SmtpSessionLenient, BareNewlinesInDataAreMadeCrlfForLenientClients) {
    Conversation conv(lenient_policy());   // data.normalize_bare_newlines is false: bare_newlines = "reject"
    open_data(conv);
    conv.send("Subject: unix\n\nline one\nline two\rthree\r\n.\r\n");
    EXPECT_EQ(last_reply(conv), "250 2.0.0 Ok: queued as Q1");
    ASSERT_EQ(conv.sink.committed.size(), 1u);
    EXPECT_EQ(conv.sink.committed[0], "Subject: unix\r\n\r\nline one\r\nline two\r\nthree\r\n");
}

TEST(SmtpSessionLenient, StrictClientsKeepBareNewlinesAsConfigured) {
    Conversation reject(strict_policy());
    open_data(reject);
    reject.send("Subject: unix\n\nbody\r\n.\r\n");
    EXPECT_EQ(last_reply(reject), "550 5.5.2 Bare CR or LF in message; lines must end with CRLF (RFC 5321 2.3.8)");
    SessionPolicy p = strict_policy();
    p.data.normalize_bare_newlines = true;   // bare_newlines = "normalize"
    Conversation normalize(p);
    open_data(normalize);
    normalize.send("Subject: unix\n\nbody\r\n.\r\n");
    EXPECT_EQ(last_reply(normalize), "250 2.0.0 Ok: queued as Q1");
}

TEST(SmtpSessionLenient, BareLineFeedCommandsAreCommandsForLenientClients) {
    Conversation conv(lenient_policy());
    expect_golden(conv, R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
B: EHLO printer.lan\n
S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 100000
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250 AUTH PLAIN LOGIN
B: MAIL FROM:<printer@corp.example>\nRCPT TO:<boss@corp.example>\r\nDATA\n
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 End data with <CR><LF>.<CR><LF>
B: Subject: lf\n\nbody\n.\nstill body\r\n.\r\nQUIT\n
S: 250 2.0.0 Ok: queued as Q1
S: 221 2.0.0 Bye
S: [close]
)");
    ASSERT_EQ(conv.sink.committed.size(), 1u);
    // The bare-LF dot line is body text (its dot unstuffed, like any line's), never the end.
    EXPECT_EQ(conv.sink.committed[0], "Subject: lf\r\n\r\nbody\r\n\r\nstill body\r\n");
}

TEST(SmtpSessionLenient, StrictClientsGetAnImmediateReplyToABareLineFeed) {
    Conversation conv(strict_policy());
    expect_golden(conv, R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
B: EHLO x\n
S: 500 5.5.2 Error: bare <LF> received; command lines must end with CRLF
C: EHLO x
S: 500 5.5.2 Error: bad syntax; command lines must end with CRLF
C: EHLO x
)" R"(S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 100000
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250 AUTH PLAIN LOGIN
)");
    ASSERT_GE(conv.hooks.refusals.size(), 2u);
    EXPECT_EQ(conv.hooks.refusals[0], "EHLO|500 5.5.2 Error: bare <LF> received; command lines must end with CRLF||-||");
}

TEST(SmtpSessionLenient, UnbracketedPathsFromLenientClientsOnly) {
    Conversation lenient(lenient_policy());
    expect_golden(lenient, R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
C: HELO printer.lan
S: 250 mx.test
C: MAIL FROM:printer@corp.example SIZE=100
S: 250 2.1.0 Ok
C: RCPT TO: boss@corp.example
S: 250 2.1.5 Ok
C: RCPT TO:John Doe <x@corp.example>
S: 501 5.1.3 Bad recipient address syntax
)");
    EXPECT_EQ(lenient.hooks.routes, std::vector<std::string>{"||printer@corp.example"});
    EXPECT_EQ(lenient.hooks.refusals,
              std::vector<std::string>{"RCPT|501 5.1.3 Bad recipient address syntax|printer.lan|printer@corp.example||"
                                       "TO:John Doe <x@corp.example>"});

    Conversation strict(strict_policy());
    expect_golden(strict, R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
C: HELO device.example
S: 250 mx.test
C: MAIL FROM:printer@corp.example
S: 501 5.1.7 Bad sender address syntax: the address must be in angle brackets, MAIL FROM:<user@example.com>
C: MAIL FROM: <printer@corp.example>
S: 250 2.1.0 Ok
C: RCPT TO:boss@corp.example
S: 501 5.1.3 Bad recipient address syntax: the address must be in angle brackets, RCPT TO:<user@example.com>
)");
}

// Postfix's default (smtpd_helo_required = no): a trusted device that skips HELO is served.
TEST(SmtpSessionLenient, MailWithoutHeloFromLenientClientsOnly) {
    Conversation lenient(lenient_policy());
    expect_golden(lenient, R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
C: RCPT TO:<boss@corp.example>
S: 503 5.5.1 Error: send HELO/EHLO first
C: MAIL FROM:<printer@corp.example>
S: 250 2.1.0 Ok
C: RCPT TO:<boss@corp.example>
S: 250 2.1.5 Ok
)");
    Conversation strict(strict_policy());
    expect_golden(strict, R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
C: MAIL FROM:<printer@corp.example>
S: 503 5.5.1 Error: send HELO/EHLO first
)");
}

TEST(SmtpSessionLenient, NulBytesAreRefusedInEveryMode) {
    for (bool lenient : {false, true}) {
        SCOPED_TRACE(lenient);
        SessionPolicy p = lenient ? lenient_policy() : strict_policy();
        p.data.normalize_bare_newlines = true;
        Conversation conv(p);
        open_data(conv);
        conv.send("Subject: bin\r\n\r\nab\0cd\r\n.\r\n"s);
        EXPECT_EQ(last_reply(conv).substr(0, 10), "554 5.6.0 ");
        EXPECT_TRUE(conv.sink.committed.empty());
        ASSERT_FALSE(conv.hooks.refusals.empty());
        EXPECT_EQ(conv.hooks.refusals.back().substr(0, 26), "END-OF-DATA|554 5.6.0 Erro");
        EXPECT_NE(conv.hooks.refusals.back().find("|printer.lan|printer@corp.example|boss@corp.example|"),
                  std::string::npos);
    }
}

// Where a read ends must not matter: a CR at the end of one read may pair with the LF of the next.
TEST(SmtpSessionLenient, ByteByByteFeedingGivesTheSameRepliesInBothModes) {
    const std::string client = "EHLO c\nMAIL FROM:a@b.example\r\nRCPT TO:<c@d.example>\nDATA\r\nx\ny\r\n.\r\nNOOP\n";
    for (bool lenient : {false, true}) {
        SCOPED_TRACE(lenient);
        const SessionPolicy p = lenient ? lenient_policy() : strict_policy();
        Conversation whole(p);
        std::size_t start = 0;   // one read per line, as a client waiting for each reply would
        while (start < client.size()) {
            const std::size_t eol = client.find('\n', start) + 1;
            whole.send(client.substr(start, eol - start));
            start = eol;
        }
        Conversation bytewise(p);
        for (char c : client) bytewise.send(std::string(1, c));
        EXPECT_EQ(bytewise.transcript, whole.transcript);
        EXPECT_EQ(bytewise.hooks.refusals, whole.hooks.refusals);
        EXPECT_EQ(whole.transcript.find("queued as Q1") != std::string::npos, lenient) << whole.transcript;
    }
}

TEST(SmtpSessionLenient, ABareLineFeedEndsAnAuthExchangeOfAStrictClient) {
    Conversation conv(strict_policy());
    conv.send("EHLO device.example\r\n");
    conv.transcript.clear();
    conv.send("AUTH LOGIN\r\n");
    conv.send("YWxpY2U=\n");   // "alice", LF-ended: refused, and the exchange is over
    conv.send("NOOP\r\n");    // the rest of that broken line
    conv.send("NOOP\r\n");
    EXPECT_EQ(conv.transcript, "S: 334 VXNlcm5hbWU6\n"
                               "S: 500 5.5.2 Error: bare <LF> received; command lines must end with CRLF\n"
                               "S: 500 5.5.2 Error: bad syntax; command lines must end with CRLF\n"
                               "S: 250 2.0.0 Ok\n");
    EXPECT_FALSE(conv.session.authenticated());
    // The lenient client's LF-ended AUTH lines are AUTH lines.
    Conversation lenient(lenient_policy());
    lenient.send("EHLO printer.lan\n");
    lenient.send("AUTH LOGIN\n");
    lenient.send("YWxpY2U=\n");
    lenient.send("czNjcmV0LXB3\n");   // "s3cret-pw"
    EXPECT_TRUE(lenient.session.authenticated()) << lenient.transcript;
    EXPECT_TRUE(lenient.hooks.refusals.empty());
}

// `printf 'HELO x\r\nMAIL FROM:...\r\n...' | nc`: a trusted script's whole session in one write is
// served in order (Debian 12's Postfix does); a refused DATA still closes, so its text is never run.
TEST(SmtpSessionLenient, AWholeSessionInOneWriteIsServedForLenientClients) {
    Conversation conv(lenient_policy());
    conv.send("HELO script\r\nMAIL FROM:<a@corp.example>\r\nRCPT TO:<b@corp.example>\r\nDATA\r\n"
              "Subject: blast\r\n\r\nbody\r\n.\r\n");
    EXPECT_EQ(conv.transcript, "S: 220 mx.test ESMTP smtp-oauth2-relay ready\nS: 250 mx.test\nS: 250 2.1.0 Ok\n"
                               "S: 250 2.1.5 Ok\nS: 354 End data with <CR><LF>.<CR><LF>\nS: 250 2.0.0 Ok: queued as Q1\n");
    EXPECT_FALSE(conv.closed);

    Conversation refused(lenient_policy());
    refused.send("HELO script\r\nMAIL FROM:<a@corp.example>\r\nDATA\r\nMAIL FROM:<x@corp.example>\r\n");
    EXPECT_NE(refused.transcript.find("S: 554 5.5.0 Error: SMTP protocol synchronization"), std::string::npos)
        << refused.transcript;
    EXPECT_TRUE(refused.closed);
    EXPECT_EQ(refused.hooks.routes.size(), 1u);   // the MAIL after the refused DATA never ran

    Conversation strict(strict_policy());
    strict.send("HELO script\r\nMAIL FROM:<a@corp.example>\r\n");
    EXPECT_TRUE(strict.closed);
}

TEST(SmtpSessionLenient, APipeliningViolationIsReportedOnce) {
    Conversation conv(strict_policy());
    conv.send("EHLO device.example\r\nNOOP\r\n");
    EXPECT_EQ(conv.hooks.refusals,
              std::vector<std::string>{"EHLO|554 5.5.0 Error: SMTP protocol synchronization||-||"});
    EXPECT_TRUE(conv.closed);
}

// Issue 11, item 5: one refusal record per 4xx/5xx reply, with what the session knew.
TEST(SmtpSessionLenient, EachRefusalIsReportedOnceWithItsContext) {
    SessionPolicy p = strict_policy();
    p.max_errors = 3;
    Conversation conv(p);
    conv.send("EHLO device.example\r\n");
    conv.send("MAIL FROM:<blocked@evil.test>\r\n");   // FakeHooks refuses this sender
    conv.send("MAIL FROM:<>\r\n");
    conv.send("RCPT TO:<x@y.example> NOTIFY=NEVER\r\n");
    conv.send("BOGUS\r\n");
    EXPECT_EQ(conv.hooks.refusals, (std::vector<std::string>{
                                       "MAIL|550 5.7.1 Sender not permitted|device.example|blocked@evil.test||",
                                       "RCPT|555 5.5.4 Unsupported parameter|device.example||x@y.example|",
                                       "BOGUS|500 5.5.2 Error: command not recognized|device.example|||",
                                       "BOGUS|421 4.7.0 mx.test Error: too many errors|device.example|||",
                                   }));
    EXPECT_TRUE(conv.closed);
}

}  // namespace
