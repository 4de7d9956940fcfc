// The pure Graph sendMail rules (issue 14): address lists as RFC 5322 writes them; the header
// rewritten only as far as needed for Graph's recipients (To, Cc, Bcc) to be exactly the
// envelope's, each once; the sendMail URL; and each Graph answer mapped to the relay's outcome
// classes with an SMTP reply carrying Graph's error code and message.
#include <gtest/gtest.h>

#include <cstring>

#include "relay/delivery/graph_mail.hpp"

namespace {

using namespace relay::graph;
using namespace std::chrono_literals;

std::vector<std::string> addresses(std::string_view value) {
    std::vector<std::string> out;
    for (const auto& m : parse_address_list(value)) out.push_back(m.address);
    return out;
}

TEST(GraphAddressList, ParsesTheFormsMailersWrite) {
    using V = std::vector<std::string>;
    EXPECT_EQ(addresses("a@x.example"), V{"a@x.example"});
    EXPECT_EQ(addresses("Alice <a@x.example>, \"Smith, Bob\" <b@x.example>"), (V{"a@x.example", "b@x.example"}));
    EXPECT_EQ(addresses("c@x.example (Carol, finance),\r\n d@x.example"), (V{"c@x.example", "d@x.example"}));
    EXPECT_EQ(addresses("team: e@x.example, f@x.example;, g@x.example"), (V{"e@x.example", "f@x.example", "g@x.example"}));
    EXPECT_EQ(addresses("undisclosed-recipients:;"), V{});
    EXPECT_EQ(addresses("=?utf-8?q?J=C3=B6rg?= <j@x.example>"), V{"j@x.example"});
    EXPECT_EQ(addresses("\"a@fake\" <real@x.example>"), V{"real@x.example"});
}

const std::string kBody = "\r\nline one\r\nBcc: not-a-header@x.example\r\n";

TEST(GraphReconcile, HeaderMatchingTheEnvelopeIsSentByteForByte) {
    const std::string message = "From: s@x.example\r\nTo: A <a@x.example>\r\nCc: b@x.example\r\nSubject: hi\r\n" + kBody;
    const Reconciled r = reconcile_recipients(message, {"a@x.example", "B@X.example"});
    EXPECT_FALSE(r.changed);
    EXPECT_EQ(r.header + message.substr(r.body_offset), message);
    EXPECT_EQ(r.recipients, (std::vector<std::string>{"a@x.example", "B@X.example"}));
}

TEST(GraphReconcile, EnvelopeOnlyRecipientsBecomeBccAndOldBccGoes) {
    const std::string message = "From: s@x.example\r\nTo: a@x.example\r\nBcc: old@x.example,\r\n other@x.example\r\n"
                                "Resent-Bcc: r@x.example\r\nSubject: hi\r\n" + kBody;
    const Reconciled r = reconcile_recipients(message, {"a@x.example", "hidden@x.example", "old@x.example"});
    EXPECT_TRUE(r.changed);
    EXPECT_EQ(r.header, "From: s@x.example\r\nTo: a@x.example\r\nSubject: hi\r\n"
                        "Bcc: hidden@x.example, old@x.example\r\n\r\n");
    EXPECT_EQ(message.substr(r.body_offset), kBody.substr(2));  // the body itself is never touched
    EXPECT_EQ(r.recipients.size(), 3u);
}

TEST(GraphReconcile, HeaderOnlyRecipientsAreTakenOutAndKeptForReaders) {
    // A mailing list expanded by the sender, or a resent message: To names people this envelope
    // does not include, and Graph would deliver to them (again).
    const std::string message = "To: list@x.example, Ann <ann@x.example>\r\nCc: c@x.example\r\n"
                                "Resent-To: new@x.example\r\nSubject: s\r\n" + kBody;
    const Reconciled r = reconcile_recipients(message, {"ann@x.example", "new@x.example"});
    EXPECT_TRUE(r.changed);
    EXPECT_EQ(r.header, "X-Original-To: list@x.example, Ann <ann@x.example>\r\nTo: Ann <ann@x.example>\r\n"
                        "X-Original-Cc: c@x.example\r\nResent-To: new@x.example\r\nSubject: s\r\n"
                        "Bcc: new@x.example\r\n\r\n");
    // Who Graph would deliver to, read back from the rewritten header: exactly the envelope.
    std::vector<std::string> graph;
    for (const auto& field : {"To:", "Cc:", "Bcc:"}) {
        const auto at = r.header.find(std::string("\n") + field);
        if (at == std::string::npos && !r.header.starts_with(field)) continue;
        const auto start = at == std::string::npos ? std::strlen(field) : at + 1 + std::strlen(field);
        for (auto& a : addresses(r.header.substr(start, r.header.find("\r\n", start) - start))) graph.push_back(a);
    }
    EXPECT_EQ(graph, (std::vector<std::string>{"ann@x.example", "new@x.example"}));
}

TEST(GraphReconcile, DuplicatesGoOnceAndManyRecipientsFold) {
    const std::string message = "To: a@x.example, A@x.example\r\nCc: a@x.example\r\n\r\nbody";
    const Reconciled r = reconcile_recipients(message, {"a@x.example", "a@X.example"});
    EXPECT_EQ(r.header, "X-Original-To: a@x.example, A@x.example\r\nTo: a@x.example\r\n"
                        "X-Original-Cc: a@x.example\r\n\r\n");
    EXPECT_EQ(r.recipients, std::vector<std::string>{"a@x.example"});

    std::vector<std::string> many;
    for (int i = 0; i < 40; ++i) many.push_back("user" + std::to_string(i) + "@x.example");
    const Reconciled big = reconcile_recipients("Subject: s\r\n\r\nb", many);
    for (std::size_t at = 0, next; (next = big.header.find("\r\n", at)) != std::string::npos; at = next + 2)
        EXPECT_LE(next - at, 78u);
    EXPECT_EQ(addresses(big.header.substr(big.header.find("Bcc:") + 4)).size(), 40u);
}

TEST(GraphRequest, UrlNamesTheMailbox) {
    EXPECT_EQ(send_mail_url("https://graph.microsoft.com", "scanner@contoso.com"),
              "https://graph.microsoft.com/v1.0/users/scanner%40contoso.com/sendMail");
}

TEST(GraphAnswer, ErrorsAndRetryAfter) {
    const GraphError e = parse_error(R"({"error":{"code":"ErrorSendAsDenied","message":"no\r\nway"}})");
    EXPECT_EQ(e.code, "ErrorSendAsDenied");
    EXPECT_EQ(e.message, "no  way");  // no line breaks into SMTP replies or logs
    EXPECT_EQ(parse_error("<html>gateway</html>").message, "<html>gateway</html>");
    EXPECT_EQ(parse_error(std::string(1000, 'x')).message.size(), 300u);

    const long long now = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
    EXPECT_EQ(parse_retry_after("7", 30s, now), 7s);
    EXPECT_EQ(parse_retry_after("0", 30s, now), 1s);
    EXPECT_EQ(parse_retry_after("99999999999", 30s, now), 3600s);
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", 30s, now), 60s);
    EXPECT_EQ(parse_retry_after("soon", 30s, now), 30s);
    EXPECT_EQ(parse_retry_after("", 12s, now), 12s);
}

TEST(GraphAnswer, EachAnswerHasItsClassAndReply) {
    struct Case {
        long status;
        const char* body;
        const char* retry_after;
        Verdict verdict;
        const char* reply_starts;
    };
    const Case cases[] = {
        {202, "", "", Verdict::accepted, "250 2.0.0"},
        {429, R"({"error":{"code":"ApplicationThrottled","message":"slow down"}})", "5", Verdict::back_off,
         "451 4.7.0 Microsoft Graph 429 (ApplicationThrottled: slow down); retry after 5 s"},
        {503, "", "", Verdict::back_off, "451 4.7.0 Microsoft Graph 503 (HTTP 503)"},
        {504, "", "2", Verdict::back_off, "451 4.7.0"},
        {401, R"({"error":{"code":"InvalidAuthenticationToken","message":"Access token has expired."}})", "",
         Verdict::refresh_token, "454 4.7.0 Microsoft Graph 401 (InvalidAuthenticationToken"},
        {403, R"({"error":{"code":"ErrorSendAsDenied","message":"x"}})", "", Verdict::fail, "550 5.7.60"},
        {403, R"({"error":{"code":"ErrorAccessDenied","message":"Access is denied."}})", "", Verdict::hold,
         "550 5.7.1 Microsoft Graph 403 (ErrorAccessDenied: Access is denied.)"},
        {404, R"({"error":{"code":"ErrorInvalidUser","message":"x"}})", "", Verdict::hold, "550 5.7.1"},
        {400, R"({"error":{"code":"ErrorMimeContentInvalidBase64String","message":"Invalid base64 string for MIME content."}})",
         "", Verdict::fail, "554 5.6.0 Microsoft Graph 400 (ErrorMimeContentInvalidBase64String: Invalid base64"},
        {413, R"({"error":{"code":"ErrorRequestEntityTooLarge","message":"too big"}})", "", Verdict::fail, "552 5.3.4"},
        {500, "", "", Verdict::retry, "451 4.3.0"},
        {418, "", "", Verdict::fail, "554 5.0.0"},
    };
    for (const auto& c : cases) {
        const Answer a = classify(c.status, c.body, c.retry_after, 0);
        EXPECT_EQ(a.verdict, c.verdict) << c.status << " " << c.body;
        EXPECT_TRUE(a.reply.text().starts_with(c.reply_starts)) << a.reply.text();
        EXPECT_EQ(a.hold_action.has_value(), c.verdict == Verdict::hold) << c.status;
    }
    EXPECT_EQ(classify(429, "", "", 0).retry_after, 30s);  // Graph sends Retry-After; a default if not
    EXPECT_EQ(classify(429, "", "17", 0).retry_after, 17s);
    const Answer down = transport_failure("connect to graph.microsoft.com: refused");
    EXPECT_EQ(down.verdict, Verdict::retry);
    EXPECT_EQ(down.reply.code, 451);
}

}  // namespace
