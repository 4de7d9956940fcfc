// AUTH PLAIN and LOGIN in ServerSession (relay/smtp/session_auth) through golden transcripts (see
// session_transcript.hpp): the exchanges, the policies (TLS, lockout) and the slow password check.
#include <gtest/gtest.h>

#include <string>

#include "session_transcript.hpp"

namespace {

using namespace session_testing;

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

}  // namespace
