// ServerSession (relay/smtp/server_session, session_commands) through golden transcripts (see
// session_transcript.hpp): commands, pipelining, DATA and its errors, STARTTLS, limits.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "session_transcript.hpp"

namespace {

using namespace session_testing;

TEST(SmtpSession, PlainMessageIsQueued) {
    Conversation conv(base_policy());
    expect_golden(conv, std::string(R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
C: EHLO client.example
)") + std::string(kEhloReply) + R"(
C: MAIL FROM:<app@corp.example> BODY=8BITMIME
S: 250 2.1.0 Ok
C: RCPT TO:<boss@corp.example>
S: 250 2.1.5 Ok
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: Subject: report
C:
C: ..all good
C: .
S: 250 2.0.0 Ok: queued as Q1
C: QUIT
S: 221 2.0.0 Bye
S: [close]
)");
    ASSERT_EQ(conv.sink.committed.size(), 1u);
    EXPECT_EQ(conv.sink.committed[0], "Subject: report\r\n\r\n.all good\r\n");
    EXPECT_EQ(conv.sink.envelope.mail_from, "app@corp.example");
    EXPECT_EQ(conv.sink.envelope.rcpt_to, std::vector<std::string>{"boss@corp.example"});
    EXPECT_EQ(conv.sink.envelope.client_address, "192.0.2.7");
    EXPECT_EQ(conv.sink.envelope.helo, "client.example");
    EXPECT_EQ(conv.sink.envelope.account, "default");
    EXPECT_TRUE(conv.sink.envelope.eight_bit);
    EXPECT_EQ(conv.sink.aborts, 0);
}

TEST(SmtpSession, ByteByByteFeedingGivesTheSameReplies) {
    const std::string client =
        "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\nhi\r\n.\r\nRSET\r\nQUIT\r\n";
    Conversation whole(base_policy());
    // Not one read: that would be unauthorised pipelining after EHLO. One read per command line.
    std::size_t start = 0;
    while (start < client.size()) {
        const std::size_t eol = client.find("\r\n", start) + 2;
        whole.send(client.substr(start, eol - start));
        start = eol;
    }
    Conversation bytewise(base_policy());
    for (char c : client) bytewise.send(std::string(1, c));
    EXPECT_EQ(bytewise.transcript, whole.transcript);
    EXPECT_NE(whole.transcript.find("queued as Q1"), std::string::npos);
    EXPECT_EQ(bytewise.sink.committed, whole.sink.committed);
}

TEST(SmtpSession, PipelinedTransactionInOneRead) {
    Conversation conv(base_policy());
    expect_golden(conv, R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
C: HELO legacy
S: 250 mx.test
C: MAIL FROM:<>
C: RCPT TO:<one@corp.example>
C: RCPT TO:<bad address@corp.example>
C: RCPT TO:<two@corp.example>
C: DATA
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 501 5.1.3 Bad recipient address syntax
S: 250 2.1.5 Ok
S: 354 End data with <CR><LF>.<CR><LF>
C: body
C: .
C: MAIL FROM:<a@corp.example>
C: RCPT TO:<three@corp.example>
C: DATA
S: 250 2.0.0 Ok: queued as Q1
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 354 End data with <CR><LF>.<CR><LF>
C: second
C: .
S: 250 2.0.0 Ok: queued as Q2
)");
    ASSERT_EQ(conv.sink.committed.size(), 2u);
    EXPECT_EQ(conv.sink.committed[1], "second\r\n");
    EXPECT_EQ(conv.sink.envelope.rcpt_to, std::vector<std::string>{"three@corp.example"});
}

TEST(SmtpSession, RequireAuthAndRouteRefusal) {
    SessionPolicy policy = base_policy();
    policy.require_auth = true;
    Conversation conv(policy);
    expect_golden(conv, std::string(R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
C: EHLO c
)") + std::string(kEhloReply) + R"(
C: MAIL FROM:<a@corp.example>
S: 530 5.7.0 Authentication required
C: AUTH PLAIN AGFsaWNlAHMzY3JldC1wdw==
S: 235 2.7.0 Authentication successful
C: MAIL FROM:<blocked@evil.test>
S: 550 5.7.1 Sender not permitted
C: RCPT TO:<x@corp.example>
S: 503 5.5.1 Error: need MAIL command
C: DATA
S: 503 5.5.1 Error: need RCPT command
)");
    EXPECT_EQ(conv.hooks.routes.size(), 1u);   // not called for the unauthenticated attempt
}

TEST(SmtpSession, OversizeBySizeParameterAndByActualBody) {
    Conversation conv(base_policy());
    conv.send("EHLO c\r\n");
    conv.transcript.clear();
    const std::string big(600, 'x');
    expect_golden(conv, R"(
C: MAIL FROM:<a@corp.example> SIZE=1001
S: 552 5.3.4 Message size exceeds fixed maximum message size
C: MAIL FROM:<a@corp.example> SIZE=1000
S: 250 2.1.0 Ok
C: RCPT TO:<b@corp.example>
S: 250 2.1.5 Ok
C: DATA
S: 354 End data with <CR><LF>.<CR><LF>
C: )" + big + R"(
C: )" + big + R"(
C: .
S: 552 5.3.4 Message size exceeds fixed maximum message size
C: MAIL FROM:<a@corp.example> SIZE=99999999999999999999
S: 501 5.5.4 Bad SIZE parameter syntax
C: MAIL FROM:<a@corp.example> FOO=BAR
S: 555 5.5.4 Unsupported parameter
)");
    EXPECT_EQ(conv.sink.begins, 1);
    EXPECT_EQ(conv.sink.aborts, 1);
    EXPECT_TRUE(conv.sink.committed.empty());
    EXPECT_LE(conv.sink.body.size(), 1000u);
}

TEST(SmtpSession, TooManyRecipients) {
    Conversation conv(base_policy());
    conv.send("HELO c\r\n");
    conv.transcript.clear();
    expect_golden(conv, R"(
C: MAIL FROM:<a@corp.example>
C: RCPT TO:<1@corp.example>
C: RCPT TO:<2@corp.example>
C: RCPT TO:<3@corp.example>
C: RCPT TO:<4@corp.example>
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 250 2.1.5 Ok
S: 250 2.1.5 Ok
S: 452 4.5.3 Error: too many recipients
)");
    EXPECT_EQ(conv.session.envelope().rcpt_to.size(), 3u);
    // RFC 5321 4.5.3.1.8: the client is expected to send the rest later; not a client error.
    EXPECT_EQ(conv.session.errors(), 0u);
}

TEST(SmtpSession, TooManyErrorsCloses) {
    SessionPolicy policy = base_policy();
    policy.max_errors = 3;
    Conversation conv(policy);
    expect_golden(conv, R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
C: BDAT 10 LAST
S: 500 5.5.2 Error: command not recognized
C: EXPN staff
S: 502 5.5.1 Error: command not implemented
C: XYZZY
C: NOOP
S: 500 5.5.2 Error: command not recognized
S: 421 4.7.0 mx.test Error: too many errors
S: [close]
)");
    EXPECT_EQ(conv.pending, "NOOP\r\n");   // nothing after the fatal error was executed
}

TEST(SmtpSession, StartTlsInjectionIsNotExecuted) {
    SessionPolicy policy = base_policy();
    policy.starttls_offered = true;
    Conversation conv(policy);
    conv.send("EHLO c\r\n");
    conv.transcript.clear();
    expect_golden(conv, R"(
C: STARTTLS
C: MAIL FROM:<injected@evil.test>
S: 220 2.0.0 Ready to start TLS
S: [tls]
C: MAIL FROM:<a@corp.example>
S: 503 5.5.1 Error: send HELO/EHLO first
C: STARTTLS
S: 503 5.5.1 Error: TLS already active
)");
    EXPECT_TRUE(conv.hooks.routes.empty());
    ASSERT_FALSE(conv.hooks.notes.empty());
    EXPECT_EQ(conv.hooks.notes.front(), "starttls_injection client=192.0.2.7");

    Conversation no_tls(base_policy());
    no_tls.send("STARTTLS\r\n");
    EXPECT_NE(no_tls.transcript.find("S: 502 5.5.1 Error: command not implemented\n"), std::string::npos);
}

TEST(SmtpSession, TlsStartedForgetsAuthentication) {
    SessionPolicy policy = base_policy();
    policy.starttls_offered = true;
    Conversation conv(policy);
    conv.send("EHLO c\r\n");
    conv.send("AUTH PLAIN AGFsaWNlAHMzY3JldC1wdw==\r\n");
    ASSERT_TRUE(conv.session.authenticated());
    conv.send("STARTTLS\r\n");
    EXPECT_FALSE(conv.session.authenticated());
}

TEST(SmtpSession, UnauthorisedPipeliningIsRefused) {
    Conversation ehlo(base_policy());
    expect_golden(ehlo, R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
C: EHLO c
C: MAIL FROM:<a@corp.example>
S: 554 5.5.0 Error: SMTP protocol synchronization
S: [close]
)");
    EXPECT_TRUE(ehlo.hooks.routes.empty());
    EXPECT_EQ(ehlo.hooks.notes.at(0), "pipelining_violation client=192.0.2.7 command=EHLO");

    // The body must not arrive before the 354.
    Conversation data(base_policy());
    data.send("HELO c\r\n");
    data.transcript.clear();
    expect_golden(data, R"(
C: MAIL FROM:<a@corp.example>
C: RCPT TO:<b@corp.example>
C: DATA
C: Subject: early
S: 250 2.1.0 Ok
S: 250 2.1.5 Ok
S: 554 5.5.0 Error: SMTP protocol synchronization
S: [close]
)");
    EXPECT_EQ(data.sink.begins, 0);

    Conversation quit(base_policy());   // bytes after QUIT are harmless
    quit.send("QUIT\r\nNOOP\r\n");
    EXPECT_EQ(quit.transcript, "S: 220 mx.test ESMTP smtp-oauth2-relay ready\nS: 221 2.0.0 Bye\nS: [close]\n");
}

TEST(SmtpSession, MiscellaneousCommands) {
    Conversation conv(base_policy());
    expect_golden(conv, R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
C: VRFY postmaster
S: 252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery
C: NOOP
S: 250 2.0.0 Ok
C: HELP
S: 214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY AUTH STARTTLS
C: MAIL FROM:<a@corp.example>
S: 503 5.5.1 Error: send HELO/EHLO first
C: EHLO
S: 501 5.5.4 Syntax: EHLO hostname
C: helo c
S: 250 mx.test
C: mail from:<a@corp.example>
S: 250 2.1.0 Ok
C: MAIL FROM:<a@corp.example>
S: 503 5.5.1 Error: MAIL transaction in progress
C: DATA
S: 503 5.5.1 Error: need RCPT command
C: RCPT TO:<>
S: 501 5.1.3 Bad recipient address syntax
C: DATA
S: 554 5.5.1 Error: no valid recipients
C: RSET
S: 250 2.0.0 Ok
C: RCPT TO:<b@corp.example>
S: 503 5.5.1 Error: need MAIL command
)");
    EXPECT_EQ(conv.session.timeout_reply(), "421 4.4.2 mx.test Error: timeout exceeded\r\n");
    EXPECT_EQ(conv.session.shutdown_reply(), "421 4.3.2 mx.test Service shutting down\r\n");
}

TEST(SmtpSession, LongCommandLines) {
    SessionPolicy policy = base_policy();
    policy.max_command_line = 64;
    policy.max_auth_line = 128;
    Conversation conv(policy);
    conv.send("EHLO c\r\n");
    conv.transcript.clear();
    const std::string at_limit = "NOOP " + std::string(57, 'x');   // 62 + CRLF = 64
    const std::string over = "NOOP " + std::string(58, 'x');
    expect_golden(conv, "C: " + at_limit + "\nS: 250 2.0.0 Ok\nC: " + over + "\nS: 500 5.5.2 Error: line too long\n" +
                            "C: AUTH PLAIN " + std::string(101, 'A') + "\nS: 501 5.5.2 Invalid base64 data\n");

    // An unterminated over-long line is consumed as it arrives, then answered once at its CRLF.
    conv.transcript.clear();
    for (int i = 0; i < 100; ++i) {
        conv.send(std::string(50, 'y'));
        ASSERT_LT(conv.pending.size(), 64u);
    }
    conv.send("\r");
    EXPECT_EQ(conv.transcript, "");
    conv.send("\nNOOP\r\n");
    EXPECT_EQ(conv.transcript, "S: 500 5.5.2 Error: line too long\nS: 250 2.0.0 Ok\n");
}

TEST(SmtpSession, ANulInACommandIsNamedAsSuch) {
    Conversation conv(base_policy());
    conv.send("HELO c\r\n");
    conv.transcript.clear();
    conv.send(std::string("MAIL FROM:<a@corp.example>\0\r\n", 29));
    EXPECT_EQ(conv.transcript, "S: 500 5.5.2 Error: NUL byte in command line\n");
    EXPECT_TRUE(conv.hooks.routes.empty());
}

TEST(SmtpSession, BareLineFeedsNeverEndACommandOfAStrictClient) {
    Conversation conv(base_policy());
    conv.send("HELO c\r\n");
    conv.transcript.clear();
    conv.send("NOOP\n");
    // Answered at once (issue 11: not a silent wait for the command timeout) ...
    EXPECT_EQ(conv.transcript, "S: 500 5.5.2 Error: bare <LF> received; command lines must end with CRLF\n");
    conv.transcript.clear();
    // ... and what follows up to the next CRLF is the rest of that broken line, never a command.
    conv.send("MAIL FROM:<a@corp.example>\r\n");
    EXPECT_EQ(conv.transcript, "S: 500 5.5.2 Error: bad syntax; command lines must end with CRLF\n");
    EXPECT_TRUE(conv.hooks.routes.empty());
    conv.transcript.clear();
    conv.send("NOOP\r\n");   // a clean line afterwards is a command again
    EXPECT_EQ(conv.transcript, "S: 250 2.0.0 Ok\n");
}

TEST(SmtpSession, SmuggledEndOfDataIsRejectedAtTheRealEnd) {
    Conversation conv(base_policy());
    conv.send("HELO c\r\n");
    conv.send("MAIL FROM:<a@corp.example>\r\nRCPT TO:<b@corp.example>\r\nDATA\r\n");
    conv.transcript.clear();
    expect_golden(conv, R"(
B: hello\n.\nMAIL FROM:<evil@x.test>\r\nRCPT TO:<victim@corp.example>\r\nDATA\r\nforged\r\n.\r\n
S: 550 5.5.2 Bare CR or LF in message; lines must end with CRLF (RFC 5321 2.3.8)
C: NOOP
S: 250 2.0.0 Ok
)");
    EXPECT_EQ(conv.sink.aborts, 1);
    EXPECT_TRUE(conv.sink.committed.empty());
    EXPECT_EQ(conv.hooks.routes.size(), 1u);
}

TEST(SmtpSession, CommitFailureAndSinkFailure) {
    Conversation conv(base_policy());
    conv.send("HELO c\r\n");
    conv.send("MAIL FROM:<a@corp.example>\r\nRCPT TO:<b@corp.example>\r\nDATA\r\n");
    conv.commit_error = "451 4.3.0 Error: queue file write error";
    conv.send("x\r\n.\r\n");
    EXPECT_NE(conv.transcript.find("S: 451 4.3.0 Error: queue file write error\n"), std::string::npos);
    EXPECT_TRUE(conv.session.envelope().rcpt_to.empty());   // transaction reset

    conv.sink.throw_on_data = true;
    conv.send("MAIL FROM:<a@corp.example>\r\nRCPT TO:<b@corp.example>\r\nDATA\r\n");
    conv.transcript.clear();
    conv.send("body\r\n.\r\nNOOP\r\n");
    EXPECT_EQ(conv.transcript, "S: 451 4.3.0 Error: queue file write error\nS: 250 2.0.0 Ok\n");
    EXPECT_EQ(conv.sink.aborts, 1);
}

TEST(SmtpSession, LargeBodyIsPassedInSlices) {
    SessionPolicy policy = base_policy();
    policy.max_message_size = 64 * 1024 * 1024;
    Conversation conv(policy);
    conv.send("HELO c\r\n");
    conv.send("MAIL FROM:<a@corp.example>\r\nRCPT TO:<b@corp.example>\r\nDATA\r\n");
    std::string chunk;
    while (chunk.size() < 1024 * 1024) chunk += std::string(998, 'z') + "\r\n";
    for (int i = 0; i < 8; ++i) conv.send(chunk);
    conv.send(".\r\n");
    ASSERT_EQ(conv.sink.committed.size(), 1u);
    EXPECT_EQ(conv.sink.committed[0].size(), 8 * chunk.size());
    EXPECT_LE(conv.sink.writes, 16u);
}

// Random client bytes in random chunks: no crash, and the I/O layer never has to hold more than one
// line limit of unconsumed input, whatever the client sends.
TEST(SmtpSession, RandomInputKeepsBufferingBounded) {
    std::mt19937 rng(2920);
    const std::vector<std::string> pieces = {"EHLO c\r\n", "MAIL FROM:<a@b.example>\r\n", "RCPT TO:<c@d.example>\r\n",
                                             "DATA\r\n", ".\r\n", "\r\n", "\n", "\r", ".", "AUTH LOGIN\r\n",
                                             "AUTH ", "STARTTLS\r\n", "x", std::string(300, 'y'), "*\r\n", "RSET\r\n"};
    long reads = 0;
    for (int round = 0; round < 300; ++round) {
        SessionPolicy policy = base_policy();
        policy.max_errors = 1000;
        policy.starttls_offered = true;
        Conversation conv(policy);
        for (int i = 0; i < 200 && !conv.closed; ++i) {
            std::string read;
            const int n = rng() % 8 == 0 ? 3 : 1;   // mostly one piece per read, sometimes a pipelined burst
            for (int k = 0; k < n; ++k) read += pieces[rng() % pieces.size()];
            conv.send(read);
            ASSERT_LT(conv.pending.size(), policy.max_auth_line);
            ++reads;
        }
        EXPECT_EQ(conv.sink.begins, static_cast<int>(conv.sink.committed.size()) + conv.sink.aborts +
                                        (conv.session.in_data() ? 1 : 0));
    }
    EXPECT_GT(reads, 300 * 20);   // sessions ran long enough to mean something
}

}  // namespace
