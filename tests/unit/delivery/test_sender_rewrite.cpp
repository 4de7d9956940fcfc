// rewrite_sender (relay/delivery/sender_rewrite): envelope sender and From: header, Reply-To kept.
#include <gtest/gtest.h>

#include "relay/delivery/sender_rewrite.hpp"

namespace {

using namespace relay;

conf::Account account(conf::RewriteSender mode) {
    conf::Account a;
    a.email = "scanner@contoso.com";
    a.send_as = {"invoices@contoso.com"};
    a.rewrite_sender = mode;
    return a;
}

// What goes upstream: the new header then the stored message after the replaced bytes.
std::string sent(const conf::Account& a, const std::string& message) {
    auto r = rewrite_from_header(a, message, true);
    if (!r) return message;
    return r->header + message.substr(r->replaced);
}

TEST(SenderRewrite, EnvelopeSenderPerMode) {
    const auto never = account(conf::RewriteSender::never);
    const auto unallowed = account(conf::RewriteSender::unallowed);
    const auto always = account(conf::RewriteSender::always);
    EXPECT_EQ(upstream_sender(never, "root@host"), "root@host");
    EXPECT_EQ(upstream_sender(never, ""), "");
    EXPECT_EQ(upstream_sender(unallowed, "root@host"), "scanner@contoso.com");
    EXPECT_EQ(upstream_sender(unallowed, ""), "scanner@contoso.com");            // the null sender
    EXPECT_EQ(upstream_sender(unallowed, "Invoices@Contoso.com"), "Invoices@Contoso.com");   // known
    EXPECT_EQ(upstream_sender(unallowed, "SCANNER@contoso.com"), "SCANNER@contoso.com");
    EXPECT_EQ(upstream_sender(always, "invoices@contoso.com"), "scanner@contoso.com");
}

TEST(SenderRewrite, CronMailGetsTheMailboxAndKeepsTheOriginalInReplyTo) {
    const auto a = account(conf::RewriteSender::unallowed);
    const std::string cron = "Subject: Cron <root@host> run-parts\r\nFrom: \"CronDaemon\" <root@host>\r\n"
                             "To: it@contoso.com\r\n\r\nline one\r\n";
    auto r = rewrite_from_header(a, cron, true);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->original_from, "\"CronDaemon\" <root@host>");
    EXPECT_EQ(sent(a, cron), "Subject: Cron <root@host> run-parts\r\nFrom: \"CronDaemon\" <scanner@contoso.com>\r\n"
                             "Reply-To: \"CronDaemon\" <root@host>\r\nTo: it@contoso.com\r\n\r\nline one\r\n");
    // A Reply-To of its own is kept, not doubled; a folded From is replaced whole.
    const std::string with_reply = "from: Printer\r\n <printer@lan>\r\nReply-To: desk@contoso.com\r\n\r\nbody\r\n";
    EXPECT_EQ(sent(a, with_reply), "From: Printer <scanner@contoso.com>\r\nReply-To: desk@contoso.com\r\n\r\nbody\r\n");
}

TEST(SenderRewrite, ASenderTheMailboxMayNotUseGoesWithTheOldFrom) {
    const auto a = account(conf::RewriteSender::unallowed);
    // A Java mail service's fixed header: From and Sender both the application's own address.
    const std::string app = "From: erp@app.lan\r\nSender: erp-daemon@app.lan\r\nTo: a@b\r\n\r\nx\r\n";
    EXPECT_EQ(sent(a, app), "From: scanner@contoso.com\r\nReply-To: erp@app.lan\r\nTo: a@b\r\n\r\nx\r\n");
    // A Sender: the mailbox may use stays; so does any Sender: when the From: needs no rewrite.
    const std::string own_sender = "From: erp@app.lan\r\nSender: invoices@contoso.com\r\n\r\nx\r\n";
    EXPECT_EQ(sent(a, own_sender),
              "From: scanner@contoso.com\r\nReply-To: erp@app.lan\r\nSender: invoices@contoso.com\r\n\r\nx\r\n");
    const std::string fine_from = "From: invoices@contoso.com\r\nSender: someone@else\r\n\r\nx\r\n";
    EXPECT_FALSE(rewrite_from_header(a, fine_from, true));
}

TEST(SenderRewrite, KnownSendersAreLeftAloneUnlessAlways) {
    const std::string own = "From: Scanner <SCANNER@contoso.com>\r\nTo: a@b\r\n\r\nx\r\n";
    const std::string send_as = "From: invoices@contoso.com\r\nTo: a@b\r\n\r\nx\r\n";
    EXPECT_FALSE(rewrite_from_header(account(conf::RewriteSender::never), "From: root@host\r\n\r\nx\r\n", true));
    EXPECT_FALSE(rewrite_from_header(account(conf::RewriteSender::unallowed), own, true));
    EXPECT_FALSE(rewrite_from_header(account(conf::RewriteSender::unallowed), send_as, true));
    EXPECT_FALSE(rewrite_from_header(account(conf::RewriteSender::always), own, true));
    EXPECT_EQ(sent(account(conf::RewriteSender::always), send_as),
              "From: scanner@contoso.com\r\nReply-To: invoices@contoso.com\r\nTo: a@b\r\n\r\nx\r\n");
    // One unknown address among several is enough: Exchange checks them all.
    EXPECT_TRUE(rewrite_from_header(account(conf::RewriteSender::unallowed),
                                    "From: invoices@contoso.com, ceo@contoso.com\r\n\r\nx\r\n", true));
}

TEST(SenderRewrite, MissingFromOddHeadersAndLargeOnes) {
    const auto a = account(conf::RewriteSender::unallowed);
    // No From: one is added, with no Reply-To (there was nobody to keep).
    EXPECT_EQ(sent(a, "To: a@b\r\nSubject: s\r\n\r\nx\r\n"),
              "To: a@b\r\nSubject: s\r\nFrom: scanner@contoso.com\r\n\r\nx\r\n");
    // No header at all: the body gets its separating empty line.
    EXPECT_EQ(sent(a, "just text\r\n"), "From: scanner@contoso.com\r\n\r\njust text\r\n");
    // Header only, no body.
    EXPECT_EQ(sent(a, "From: root@host\r\n"), "From: scanner@contoso.com\r\nReply-To: root@host\r\n");
    // The header goes on past what was read: left alone rather than cut.
    EXPECT_FALSE(rewrite_from_header(a, "From: root@host\r\nX-Long: aaaa", false));
    EXPECT_FALSE(rewrite_from_header(a, "From: root@host\r\n", false));
}

TEST(SenderRewrite, HeaderFromAddress) {
    EXPECT_EQ(header_from_address("Subject: x\r\nFrom: \"CEO\" <CEO@Contoso.com>\r\n\r\nbody\r\n", true), "ceo@contoso.com");
    EXPECT_EQ(header_from_address("from: a@b,\r\n c@d\r\n\r\n", true), "a@b");
    EXPECT_EQ(header_from_address("Subject: no from\r\n\r\nFrom: in the body\r\n", true), "");
    EXPECT_EQ(header_from_address("From: a@b\r\nX-Long: aaa", false), "");   // header not complete
}

}  // namespace
