// Long lines made deliverable (relay/delivery/long_lines, GMime): the affected parts become
// quoted-printable and decode to exactly the original text; other parts, and messages without long
// lines, keep their bytes; long header lines are folded at whitespace.
#include <gtest/gtest.h>

#include <string>

#include "relay/core/base64.hpp"
#include "relay/delivery/long_lines.hpp"
#include "relay/delivery/upstream_message.hpp"

namespace {

using namespace relay;

std::string html_line() {
    std::string line = "<html><body><table>";
    while (line.size() < 5000) line += "<tr><td class=\"c\">Invoice 4711 = 12,50 \xe2\x82\xac</td></tr>";
    return line + "</table></body></html>";
}

// RFC 2045 6.7 decoding, enough for the test: soft breaks go, =XX becomes its octet.
std::string qp_decode(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '=' && text.compare(i + 1, 2, "\r\n") == 0) {
            i += 2;
        } else if (text[i] == '=' && i + 2 < text.size()) {
            out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

bool all_lines_short(const std::string& text) { return !has_long_line(text); }

TEST(LongLines, DetectsLinesOver998Octets) {
    EXPECT_FALSE(has_long_line(std::string(998, 'a') + "\r\nb\r\n"));
    EXPECT_TRUE(has_long_line(std::string(999, 'a') + "\r\n"));
    EXPECT_TRUE(has_long_line("x\r\n" + std::string(5000, 'a')));
}

TEST(LongLines, SinglePartHtmlBecomesQuotedPrintableWithTheSameText) {
    const std::string html = html_line();
    const std::string message = "From: a@contoso.com\r\nTo: b@example.com\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n"
                                "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
                                html + "\r\n";
    const LongLineFix fix = fix_long_lines(message);
    EXPECT_EQ(fix.parts_reencoded, 1);
    EXPECT_TRUE(all_lines_short(fix.message));
    EXPECT_NE(fix.message.find("Content-Transfer-Encoding: quoted-printable\r\n"), std::string::npos);
    EXPECT_NE(fix.message.find("Content-Type: text/html; charset=utf-8\r\n"), std::string::npos);
    EXPECT_NE(fix.message.find("Subject: invoice\r\n"), std::string::npos);
    const std::string body = fix.message.substr(fix.message.find("\r\n\r\n") + 4);
    EXPECT_EQ(qp_decode(body), html + "\r\n");
    EXPECT_EQ(fix.message.find("\n\n"), std::string::npos);   // CRLF throughout, no bare LF
}

TEST(LongLines, OnlyTheLongPartOfAMultipartIsReencoded) {
    const std::string html = html_line();
    const std::string plain = "Invoice 4711 attached.\r\nSecond line.\r\n";
    const std::string message =
        "From: a@contoso.com\r\nSubject: alt\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/alternative; boundary=\"b1\"\r\n\r\n"
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + plain +
        "--b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + "\r\n--b1--\r\n";
    const LongLineFix fix = fix_long_lines(message);
    EXPECT_EQ(fix.parts_reencoded, 1);
    EXPECT_TRUE(all_lines_short(fix.message));
    // The text part is as it was; the html part decodes to the original line.
    EXPECT_NE(fix.message.find("Content-Transfer-Encoding: 7bit\r\n\r\n" + plain + "--b1"), std::string::npos);
    const auto html_at = fix.message.find("Content-Type: text/html");
    ASSERT_NE(html_at, std::string::npos);
    const auto start = fix.message.find("\r\n\r\n", html_at) + 4;
    const auto end = fix.message.find("\r\n--b1--", start);
    EXPECT_NE(fix.message.substr(html_at, start - html_at).find("Content-Transfer-Encoding: quoted-printable"),
              std::string::npos);
    EXPECT_EQ(qp_decode(fix.message.substr(start, end - start)), html);
}

TEST(LongLines, MessageWithoutMimeHeadersBecomesUtf8TextPlain) {
    const std::string text = std::string(1200, 'z') + " caf\xc3\xa9";
    const LongLineFix fix = fix_long_lines("From: a@contoso.com\r\nSubject: plain\r\n\r\n" + text + "\r\n");
    EXPECT_EQ(fix.parts_reencoded, 1);
    EXPECT_TRUE(fix.note.empty());
    EXPECT_NE(fix.message.find("MIME-Version: 1.0\r\n"), std::string::npos);
    EXPECT_NE(fix.message.find("charset=utf-8"), std::string::npos);
    EXPECT_NE(fix.message.find("Content-Transfer-Encoding: quoted-printable\r\n"), std::string::npos);
    EXPECT_EQ(qp_decode(fix.message.substr(fix.message.find("\r\n\r\n") + 4)), text + "\r\n");
}

TEST(LongLines, NonUtf8BodyGetsNoCharsetAndANote) {
    const LongLineFix fix = fix_long_lines("Subject: latin1\r\n\r\n" + std::string(1200, 'z') + "caf\xe9\r\n");
    EXPECT_EQ(fix.parts_reencoded, 1);
    EXPECT_EQ(fix.message.find("charset=utf-8"), std::string::npos);
    EXPECT_FALSE(fix.note.empty());
    EXPECT_TRUE(all_lines_short(fix.message));
}

TEST(LongLines, LongHeaderLinesAreFoldedAtWhitespace) {
    std::string to = "To: ";
    for (int i = 0; i < 80; ++i) to += "person" + std::to_string(i) + "@example.com, ";
    to += "last@example.com";
    const std::string message = "Subject: x\r\n" + to + "\r\n\r\nbody\r\n";
    const std::string folded = fold_long_header_lines(message);
    EXPECT_TRUE(all_lines_short(folded));
    std::string unfolded = folded;   // RFC 5322 2.2.3 unfolding gives the original back
    for (std::size_t at; (at = unfolded.find("\r\n ")) != std::string::npos;) unfolded.erase(at, 2);
    EXPECT_EQ(unfolded, message);
    // Nowhere to fold within 998 octets: cut there with CRLF SPACE, as Postfix does (the upstream
    // refuses the message otherwise); unfolded, the value has one space more.
    const std::string solid = "X-Token: " + std::string(2500, 'q') + "\r\n\r\nbody\r\n";
    const std::string cut = fold_long_header_lines(solid);
    EXPECT_TRUE(all_lines_short(cut));
    EXPECT_EQ(cut, "X-Token: " + std::string(989, 'q') + "\r\n " + std::string(997, 'q') + "\r\n " +
                       std::string(514, 'q') + "\r\n\r\nbody\r\n");
    // A space past 998 is no place to fold: the piece before it would still be too long.
    const std::string late = "Subject: " + std::string(1200, 's') + " end\r\n\r\nb\r\n";
    EXPECT_TRUE(all_lines_short(fold_long_header_lines(late)));
    // Only the header: a long body line is not the folder's business.
    const std::string body_only = "Subject: x\r\n\r\n" + std::string(1500, 'w') + " w\r\n";
    EXPECT_EQ(fold_long_header_lines(body_only), body_only);
}

// Fields followed straight by text (no empty line): the text is the body, as readers and Postfix's
// cleanup take it; it gets the empty line and its long line is re-encoded, never folded as a field.
TEST(LongLines, TextRightAfterTheFieldsIsTheBody) {
    const std::string html = "<p>" + std::string(1200, 'h') + " x</p>";
    const auto fix = fix_long_lines("From: a@b\r\nSubject: s\r\n" + html + "\r\n");
    EXPECT_EQ(fix.parts_reencoded, 1);
    EXPECT_FALSE(fix.headers_folded);
    EXPECT_TRUE(all_lines_short(fix.message));
    EXPECT_TRUE(fix.message.starts_with("From: a@b\r\nSubject: s\r\n")) << fix.message.substr(0, 200);
    EXPECT_NE(fix.message.find("Content-Transfer-Encoding: quoted-printable"), std::string::npos);
    // A long field followed by text: the field folds, the text stays below the empty line.
    const std::string to = "To: " + std::string(600, 't') + "@x, " + std::string(600, 'u') + "@y";
    const auto both = fix_long_lines("Subject: s\r\n" + to + "\r\nshort text\r\n");
    EXPECT_TRUE(both.headers_folded);
    EXPECT_TRUE(both.message.ends_with("@y\r\n\r\nshort text\r\n")) << both.message;
}

// Some scripts write a whole attachment as one base64 line (or QP without soft breaks): the part is
// decoded and encoded again the same way, in short lines; its octets are unchanged.
TEST(LongLines, UnwrappedBase64AndQuotedPrintableAreWrappedAgain) {
    std::string blob;
    for (int i = 0; i < 6000; ++i) blob += static_cast<char>((i * 7919) % 256);
    const std::string qp_text = std::string(1500, 'q') + "=3D end";   // legal QP, no soft line breaks
    const std::string message =
        "Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp_text +
        "\r\n--B\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
        core::base64_encode(blob) + "\r\n--B--\r\n";
    const auto fix = fix_long_lines(message);
    EXPECT_EQ(fix.parts_reencoded, 2);
    EXPECT_TRUE(fix.note.empty()) << fix.note;
    EXPECT_TRUE(all_lines_short(fix.message));
    const auto pdf = fix.message.find("base64\r\n\r\n") + 10;
    std::string b64 = fix.message.substr(pdf, fix.message.find("\r\n--B--") - pdf);
    std::erase(b64, '\r');
    std::erase(b64, '\n');
    const auto decoded = core::base64_decode(b64);
    ASSERT_TRUE(decoded) << b64.substr(0, 80) << " ... " << b64.substr(b64.size() - 80);
    EXPECT_TRUE(*decoded == blob) << decoded->size();
    const auto text = fix.message.find("quoted-printable\r\n\r\n") + 20;
    EXPECT_EQ(qp_decode(fix.message.substr(text, fix.message.find("\r\n--B\r\n", text) - text)),
              std::string(1500, 'q') + "= end");
}

// A forwarded message (message/rfc822) with a long line: its own part is re-encoded.
TEST(LongLines, PartsOfAForwardedMessageAreReencodedToo) {
    const std::string message =
        "Subject: fwd\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        "--B\r\nContent-Type: text/plain\r\n\r\nforwarded\r\n--B\r\nContent-Type: message/rfc822\r\n\r\n"
        "From: a@b\r\nSubject: inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html_line() + "\r\n--B--\r\n";
    const auto fix = fix_long_lines(message);
    EXPECT_EQ(fix.parts_reencoded, 1);
    EXPECT_TRUE(fix.note.empty()) << fix.note;
    EXPECT_TRUE(all_lines_short(fix.message));
    const auto start = fix.message.find("quoted-printable\r\n\r\n") + 20;
    EXPECT_EQ(qp_decode(fix.message.substr(start, fix.message.find("\r\n--B--") - start)), html_line());
}

// The seam both transports use: without long lines no rewrite (the queue file streams as it is),
// and an 8-bit body is declared BODY=8BITMIME even when the client did not say so.
TEST(UpstreamMessage, EightBitDataIsDeclaredAndShortLinedMessagesAreNotRewritten) {
    QueuedMessage m;
    m.size = 1234;
    EXPECT_FALSE(needs_rewrite(m));
    UpstreamMessage plain = upstream_as_stored(m);
    EXPECT_FALSE(plain.eight_bit);
    EXPECT_FALSE(plain.bytes);
    EXPECT_EQ(plain.size, 1234u);
    m.eight_bit_data = true;
    EXPECT_TRUE(upstream_as_stored(m).eight_bit);
    m.eight_bit_data = false;
    m.envelope.eight_bit = true;
    EXPECT_TRUE(upstream_as_stored(m).eight_bit);
    m.long_lines = true;
    EXPECT_TRUE(needs_rewrite(m));
}

}  // namespace
