// Golden transcripts for ServerSession: "C:" lines are client input (each gets CRLF; consecutive C
// lines are sent as one read, like a pipelining client), "B:" lines are raw client bytes with C-style
// escapes and no CRLF added, "S:" lines are the exact replies, "[tls]"/"[close]" the I/O actions.
// The harness plays the I/O layer: it keeps unconsumed bytes, commits messages, drops input after
// STARTTLS and stops at close. Fake hooks and sink record what the session asked for.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "relay/smtp/server_session.hpp"

using namespace relay::smtp;
using relay::Envelope;

namespace {

struct FakeHooks : SessionHooks {
    std::map<std::string, std::pair<std::string, std::string>> users{{"alice", {"s3cret-pw", "acct-alice"}}};
    std::string refused_sender = "blocked@evil.test";
    std::vector<std::string> routes;   // "user|account|from" per call
    std::vector<std::string> notes;

    AuthResult authenticate(std::string_view user, std::string_view password) override {
        const auto it = users.find(std::string(user));
        if (it == users.end() || it->second.first != password) return {};
        return {true, it->second.second};
    }
    RouteResult route(std::string_view user, std::string_view user_account, std::string_view from) override {
        routes.push_back(std::string(user) + "|" + std::string(user_account) + "|" + std::string(from));
        if (from == refused_sender) return {false, "", "550 5.7.1 Sender not permitted"};
        return {true, user_account.empty() ? "default" : std::string(user_account), ""};
    }
    void note(std::string_view what, std::string_view detail) override {
        notes.push_back(std::string(what) + " " + std::string(detail));
    }
};

struct FakeSink : MessageSink {
    Envelope envelope;
    std::string body;
    std::vector<std::string> committed;   // bodies handed over for commit
    int begins = 0, aborts = 0;
    std::size_t writes = 0;
    bool throw_on_data = false;

    void message_begin(const Envelope& e) override {
        ++begins;
        envelope = e;
        body.clear();
    }
    void message_data(std::string_view bytes) override {
        if (throw_on_data) throw std::runtime_error("disk full");
        body.append(bytes);
        ++writes;
    }
    void message_abort() override { ++aborts; }
};

std::string unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        const char c = s[++i];
        if (c == 'r') out += '\r';
        else if (c == 'n') out += '\n';
        else if (c == '0') out += '\0';
        else out += c;
    }
    return out;
}

struct Conversation {
    FakeHooks hooks;
    FakeSink sink;
    ServerSession session;
    std::string pending;       // bytes the session has not consumed yet
    std::string transcript;    // what happened, in golden format
    bool closed = false;
    int next_queue_id = 1;
    std::optional<std::string> commit_error;   // make the next commit fail with this reply

    explicit Conversation(SessionPolicy policy) : session(std::move(policy), hooks, sink, "192.0.2.7") {
        add_replies(session.greeting());
    }

    void add_replies(std::string_view replies) {
        std::size_t start = 0;
        while (start < replies.size()) {
            const std::size_t eol = replies.find("\r\n", start);
            ASSERT_NE(eol, std::string_view::npos) << "reply without CRLF: " << replies;
            transcript += "S: " + std::string(replies.substr(start, eol - start)) + "\n";
            start = eol + 2;
        }
    }

    // One read from the client.
    void send(std::string_view bytes) {
        ASSERT_FALSE(closed) << "client sent after close";
        pending.append(bytes);
        for (;;) {
            const ServerSession::Step step = session.feed(pending);
            ASSERT_LE(step.consumed, pending.size());
            pending.erase(0, step.consumed);
            add_replies(step.replies);
            if (step.next == ServerSession::Next::commit_message) {
                sink.committed.push_back(sink.body);
                if (commit_error) {
                    add_replies(session.commit_finished(std::nullopt, *commit_error));
                    commit_error.reset();
                } else {
                    add_replies(session.commit_finished("Q" + std::to_string(next_queue_id++)));
                }
                if (pending.empty()) return;
                continue;   // pipelined commands after the end of data
            }
            if (step.next == ServerSession::Next::start_tls) {
                transcript += "S: [tls]\n";
                pending.clear();   // never execute plaintext bytes after STARTTLS
                session.tls_started();
                return;
            }
            if (step.next == ServerSession::Next::close) {
                transcript += "S: [close]\n";
                closed = true;
                return;
            }
            return;
        }
    }
};

// Runs a golden transcript and returns what actually happened in the same format.
std::string play(Conversation& conv, std::string_view golden) {
    std::istringstream in{std::string(golden)};
    std::string line, batch, echo;
    auto flush = [&] {
        if (echo.empty()) return;
        conv.transcript += echo;
        conv.send(batch);
        batch.clear();
        echo.clear();
    };
    while (std::getline(in, line)) {
        if (line == "C:") line = "C: ";   // an empty client line
        if (line.rfind("C: ", 0) == 0) {
            batch += line.substr(3) + "\r\n";
            echo += line + "\n";
        } else if (line.rfind("B: ", 0) == 0) {
            batch += unescape(line.substr(3));
            echo += line + "\n";
        } else if (line.rfind("S: ", 0) == 0) {
            flush();
        }
    }
    flush();
    return conv.transcript;
}

std::string normalized(std::string_view golden) {
    std::istringstream in{std::string(golden)};
    std::string line, out;
    while (std::getline(in, line))
        if (line == "C:") out += "C: \n";
        else if (line.rfind("C: ", 0) == 0 || line.rfind("B: ", 0) == 0 || line.rfind("S: ", 0) == 0) out += line + "\n";
    return out;
}

// RFC 2034/3463: every 2xx/4xx/5xx reply carries an enhanced code, except the greeting and EHLO/HELO.
void expect_enhanced_codes(const std::string& transcript) {
    std::istringstream in(transcript);
    std::string line;
    bool after_hello = false;
    while (std::getline(in, line)) {
        if (line.rfind("C: ", 0) == 0 || line.rfind("B: ", 0) == 0) {
            const std::string verb = line.substr(3, 4);
            after_hello = verb == "EHLO" || verb == "HELO" || verb == "ehlo" || verb == "helo";
            continue;
        }
        if (line.rfind("S: [", 0) == 0 || line.size() < 7) continue;
        const std::string reply = line.substr(3);
        if (reply[0] == '3' || reply.rfind("220 mx.test ESMTP", 0) == 0) continue;
        if (after_hello && reply[0] == '2') continue;
        const char c = reply[4];
        EXPECT_TRUE(reply.size() > 9 && c == reply[0] && reply[5] == '.') << "no enhanced code: " << reply;
    }
}

SessionPolicy base_policy() {
    SessionPolicy p;
    p.hostname = "mx.test";
    p.max_message_size = 1000;
    p.max_recipients = 3;
    p.max_errors = 10;
    return p;
}

void expect_golden(Conversation& conv, std::string_view golden) {
    const std::string actual = play(conv, golden);
    EXPECT_EQ(actual, normalized(golden));
    expect_enhanced_codes(actual);
}

constexpr std::string_view kEhloReply = R"(S: 250-mx.test
S: 250-PIPELINING
S: 250-SIZE 1000
S: 250-8BITMIME
S: 250-ENHANCEDSTATUSCODES
S: 250 AUTH PLAIN LOGIN
)";

}  // namespace

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

TEST(SmtpSession, AuthPlainAndLogin) {
    SessionPolicy policy = base_policy();
    Conversation conv(policy);
    // base64("\0alice\0wrong") = AGFsaWNlAHdyb25n, base64("\0alice\0s3cret-pw") = AGFsaWNlAHMzY3JldC1wdw==
    // base64("alice") = YWxpY2U=, base64("s3cret-pw") = czNjcmV0LXB3, base64("bob\0alice\0s3cret-pw") below
    expect_golden(conv, std::string(R"(
S: 220 mx.test ESMTP smtp-oauth2-relay ready
C: AUTH PLAIN AGFsaWNlAHMzY3JldC1wdw==
S: 503 5.5.1 Error: send HELO/EHLO first
C: EHLO c
)") + std::string(kEhloReply) + R"(
C: AUTH CRAM-MD5
S: 504 5.5.4 Unrecognized authentication type
C: AUTH PLAIN AGFsaWNlAHdyb25n
S: 535 5.7.8 Authentication credentials invalid
C: AUTH PLAIN Ym9iAGFsaWNlAHMzY3JldC1wdw==
S: 535 5.7.8 Authentication credentials invalid
C: AUTH PLAIN not*base64
S: 501 5.5.2 Invalid base64 data
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: *
S: 501 5.0.0 Authentication cancelled
C: AUTH LOGIN YWxpY2U=
S: 334 UGFzc3dvcmQ6
C: d3Jvbmc=
S: 535 5.7.8 Authentication credentials invalid
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: YWxpY2U=
S: 334 UGFzc3dvcmQ6
C: czNjcmV0LXB3
S: 235 2.7.0 Authentication successful
C: AUTH PLAIN AGFsaWNlAHMzY3JldC1wdw==
S: 503 5.5.1 Error: already authenticated
C: MAIL FROM:<alice@corp.example>
S: 250 2.1.0 Ok
)");
    EXPECT_TRUE(conv.session.authenticated());
    EXPECT_EQ(conv.hooks.routes.back(), "alice|acct-alice|alice@corp.example");
    EXPECT_EQ(conv.session.envelope().account, "acct-alice");
    EXPECT_EQ(conv.session.envelope().user, "alice");
    // Failures are noted with the user name only; no password ever reaches a note.
    int failures = 0;
    for (const std::string& n : conv.hooks.notes) {
        EXPECT_EQ(n.find("s3cret"), std::string::npos) << n;
        EXPECT_EQ(n.find("wrong"), std::string::npos) << n;
        if (n.rfind("auth_failed", 0) == 0) ++failures;
    }
    EXPECT_EQ(failures, 3);
    EXPECT_EQ(conv.hooks.notes.front(), "auth_failed user=alice");
}

TEST(SmtpSession, AuthPlainWithoutInitialResponse) {
    Conversation conv(base_policy());
    conv.send("EHLO c\r\n");
    conv.transcript.clear();
    expect_golden(conv, R"(
C: AUTH PLAIN
S: 334 
C: AGFsaWNlAHMzY3JldC1wdw==
S: 235 2.7.0 Authentication successful
)");
}

TEST(SmtpSession, AuthPolicies) {
    SessionPolicy no_users = base_policy();
    no_users.auth_offered = false;
    Conversation a(no_users);
    a.send("EHLO c\r\n");
    EXPECT_EQ(a.transcript.find("AUTH"), std::string::npos);
    a.send("AUTH PLAIN AGFsaWNlAHMzY3JldC1wdw==\r\n");
    EXPECT_NE(a.transcript.find("S: 503 5.5.1 Error: authentication not enabled\n"), std::string::npos);

    SessionPolicy needs_tls = base_policy();
    needs_tls.plaintext_auth_allowed = false;
    needs_tls.starttls_offered = true;
    Conversation b(needs_tls);
    b.send("EHLO c\r\n");
    EXPECT_EQ(b.transcript.find("AUTH"), std::string::npos);
    EXPECT_NE(b.transcript.find("S: 250 STARTTLS\n"), std::string::npos);
    b.send("AUTH LOGIN\r\n");
    EXPECT_NE(b.transcript.find("S: 538 5.7.11 Encryption required for requested authentication mechanism\n"),
              std::string::npos);
    b.send("STARTTLS\r\n");
    b.transcript.clear();
    b.send("EHLO c\r\n");
    EXPECT_NE(b.transcript.find("S: 250 AUTH PLAIN LOGIN\n"), std::string::npos);   // and no STARTTLS now
    b.send("AUTH PLAIN AGFsaWNlAHMzY3JldC1wdw==\r\n");
    EXPECT_TRUE(b.session.authenticated());

    Conversation c(base_policy());   // AUTH inside a transaction
    c.send("EHLO c\r\n");
    c.send("MAIL FROM:<a@b.example>\r\n");
    c.send("AUTH PLAIN AGFsaWNlAHMzY3JldC1wdw==\r\n");
    EXPECT_NE(c.transcript.find("S: 503 5.5.1 Error: MAIL transaction in progress\n"), std::string::npos);
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

struct LockedHooks : FakeHooks {
    std::string auth_refusal() override { return "454 4.7.0 Too many failed authentication attempts; try again later"; }
};

TEST(SmtpSession, AuthRefusedWhileTheAddressIsLockedOut) {
    LockedHooks hooks;
    FakeSink sink;
    ServerSession session(base_policy(), hooks, sink, "192.0.2.9");
    session.feed("EHLO c\r\n");
    // Even the right password is refused: the lockout is checked before credentials are read.
    const auto step = session.feed("AUTH PLAIN AGFsaWNlAHMzY3JldC1wdw==\r\n");
    EXPECT_EQ(step.replies, "454 4.7.0 Too many failed authentication attempts; try again later\r\n");
    EXPECT_FALSE(session.authenticated());
    EXPECT_EQ(session.errors(), 1u);
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

TEST(SmtpSession, BareLineFeedsNeverEndACommand) {
    Conversation conv(base_policy());
    conv.send("HELO c\r\n");
    conv.transcript.clear();
    conv.send("NOOP\n");
    EXPECT_EQ(conv.transcript, "");   // waits for CRLF; the line limit bounds the wait
    conv.send("MAIL FROM:<a@corp.example>\r\n");
    EXPECT_EQ(conv.transcript, "S: 500 5.5.2 Error: bad syntax; command lines must end with CRLF\n");
    EXPECT_TRUE(conv.hooks.routes.empty());
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

// A password only a KDF can check: the session hands it to the I/O layer (Next::verify_credentials)
// instead of blocking, consumes nothing more, and answers once the verdict comes back.
struct SlowHooks : FakeHooks {
    AuthResult authenticate(std::string_view, std::string_view) override { return {.needs_slow_check = true}; }
    AuthResult authenticate_slow(std::string_view user, std::string_view password) override {
        return FakeHooks::authenticate(user, password);
    }
};

TEST(SmtpSession, SlowPasswordCheckIsHandedToTheIoLayer) {
    SlowHooks hooks;
    FakeSink sink;
    ServerSession session(base_policy(), hooks, sink, "192.0.2.9");
    session.feed("EHLO c\r\n");
    auto step = session.feed("AUTH PLAIN AGFsaWNlAHMzY3JldC1wdw==\r\n");
    EXPECT_EQ(step.next, ServerSession::Next::verify_credentials);
    EXPECT_EQ(step.replies, "");
    EXPECT_THROW(session.feed("NOOP\r\n"), std::logic_error);
    auto [user, password] = session.pending_credentials();
    EXPECT_EQ(user, "alice");
    auto answered = session.credentials_verified(hooks.authenticate_slow(user, password));
    EXPECT_EQ(answered.replies, "235 2.7.0 Authentication successful\r\n");
    EXPECT_TRUE(session.authenticated());
    EXPECT_EQ(session.pending_credentials().second, "");   // wiped

    ServerSession wrong(base_policy(), hooks, sink, "192.0.2.9");
    wrong.feed("EHLO c\r\n");
    ASSERT_EQ(wrong.feed("AUTH PLAIN AGFsaWNlAHdyb25n\r\n").next, ServerSession::Next::verify_credentials);
    auto [u2, p2] = wrong.pending_credentials();
    auto refused = wrong.credentials_verified(hooks.authenticate_slow(u2, p2));
    EXPECT_EQ(refused.replies, "535 5.7.8 Authentication credentials invalid\r\n");
    EXPECT_FALSE(wrong.authenticated());
    EXPECT_EQ(wrong.feed("NOOP\r\n").replies, "250 2.0.0 Ok\r\n");
}
