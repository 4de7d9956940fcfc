// The Received header (relay/spool/received_header): its shape, the protocol keyword, "for" only with
// one recipient, and a HELO that cannot break the field.
#include <gtest/gtest.h>

#include "relay/spool/received_header.hpp"

namespace {

using namespace relay;

const auto kWhen = std::chrono::system_clock::time_point(std::chrono::seconds(1796049281));  // 2026-11-30 14:34:41 UTC

Envelope envelope() {
    Envelope e;
    e.client_address = "192.168.1.20";
    e.helo = "printer.lan";
    e.protocol = "ESMTPA";
    e.rcpt_to = {"it@contoso.com"};
    return e;
}

TEST(ReceivedHeader, NamesClientHeloProtocolIdRecipientAndDate) {
    EXPECT_EQ(received_header(envelope(), "relay.contoso.com", "0000018C2F4A1B2C", kWhen),
              "Received: from printer.lan ([192.168.1.20])\r\n"
              "\tby relay.contoso.com (smtp-oauth2-relay) with ESMTPA id 0000018C2F4A1B2C\r\n"
              "\tfor <it@contoso.com>; Mon, 30 Nov 2026 14:34:41 +0000\r\n");
}

TEST(ReceivedHeader, ForOnlyWithExactlyOneRecipient) {
    Envelope e = envelope();
    e.rcpt_to = {"a@contoso.com", "hidden-bcc@contoso.com"};
    const std::string h = received_header(e, "relay", "ID", kWhen);
    EXPECT_EQ(h.find("for <"), std::string::npos);
    EXPECT_EQ(h.find("hidden-bcc"), std::string::npos);
    EXPECT_NE(h.find("with ESMTPA id ID;\r\n\tMon, 30 Nov 2026"), std::string::npos);   // folded: 78 columns
}

TEST(ReceivedHeader, IPv6ClientsGetAnIPv6Literal) {
    Envelope e = envelope();
    e.client_address = "::1";
    EXPECT_NE(received_header(e, "relay", "ID", kWhen).find("from printer.lan ([IPv6:::1])"), std::string::npos);
}

TEST(ReceivedHeader, HeloIsSanitisedAndBounded) {
    EXPECT_EQ(sanitize_helo("evil\r\nBcc: x@y"), "evil??Bcc:?x@y");
    EXPECT_EQ(sanitize_helo("a;b(c)[d]\\e"), "a_b_c__d__e");
    EXPECT_EQ(sanitize_helo(std::string(500, 'h')).size(), 64u);
    EXPECT_EQ(sanitize_helo(""), "unknown");
    EXPECT_EQ(sanitize_helo("\x01\x02"), "??");
    // Address literals (smtplib's and many printers' EHLO) are kept, as Postfix writes them.
    EXPECT_EQ(sanitize_helo("[192.168.1.20]"), "[192.168.1.20]");
    EXPECT_EQ(sanitize_helo("[IPv6:fe80::1]"), "[IPv6:fe80::1]");
    EXPECT_EQ(sanitize_helo("[1.2.3.4];(x)"), "_1.2.3.4___x_");
    EXPECT_EQ(sanitize_helo("[evil host]"), "_evil?host_");
    Envelope e = envelope();
    e.helo = "x\r\n\r\nInjected: yes";
    const std::string h = received_header(e, "relay", "ID", kWhen);
    EXPECT_EQ(h.find("\r\n\r\n"), std::string::npos);
    EXPECT_EQ(h.find("\r\nInjected"), std::string::npos);
}

TEST(ReceivedHeader, LocalSubmissionReadsFromLocal) {
    Envelope e;
    e.helo = "www-data";
    e.rcpt_to = {"root@contoso.com"};
    EXPECT_EQ(received_header(e, "host.lan", "", kWhen),
              "Received: from local (user www-data)\r\n"
              "\tby host.lan (smtp-oauth2-relay) with local\r\n"
              "\tfor <root@contoso.com>; Mon, 30 Nov 2026 14:34:41 +0000\r\n");
}

TEST(ReceivedHeader, DateIsRfc5322InUtc) {
    EXPECT_EQ(rfc5322_date(std::chrono::system_clock::time_point{}), "Thu, 01 Jan 1970 00:00:00 +0000");
}

TEST(ReceivedHeader, StartsWithHeaderTellsFieldsFromBareText) {
    EXPECT_EQ(starts_with_header("Subject: x\r\n"), true);
    EXPECT_EQ(starts_with_header("\r\nbody\r\n"), true);   // the empty line already separates
    EXPECT_EQ(starts_with_header("hello world\r\n"), false);
    EXPECT_EQ(starts_with_header(" indented\r\n"), false);    // would continue the Received field
    EXPECT_EQ(starts_with_header(":x\r\n"), false);
    EXPECT_EQ(starts_with_header("<html>\r\n"), false);
    EXPECT_EQ(starts_with_header("X-Long-Name"), std::nullopt);   // more bytes needed
    EXPECT_EQ(starts_with_header("\r"), std::nullopt);
    EXPECT_EQ(starts_with_header(""), std::nullopt);
    EXPECT_EQ(starts_with_header(std::string(999, 'a')), false);  // no field name is a line long
}

}  // namespace
