// Tables for the pure SMTP client parts: ReplyParser (RFC 5321 4.2 replies, fed in every possible
// split) and DotStuffer (RFC 5321 4.5.2 transparency, checked for every one- and two-point split
// of each input, so chunk boundaries can never change the bytes on the wire).
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "relay/smtp/reply.hpp"

using relay::smtp::DotStuffer;
using relay::smtp::Reply;
using relay::smtp::ReplyParser;

namespace {

std::vector<Reply> parse_all(const std::vector<std::string_view>& pieces) {
    ReplyParser parser;
    std::vector<Reply> replies;
    for (std::string_view piece : pieces) {
        parser.feed(piece);
        while (auto reply = parser.next()) replies.push_back(*reply);
    }
    return replies;
}

}  // namespace

TEST(ReplyParser, SingleAndMultiLineRepliesInEverySplit) {
    const std::string wire =
        "220 mx.example ESMTP ready\r\n"
        "250-mx.example Hello\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250 AUTH LOGIN XOAUTH2\r\n"
        "354 Start mail input\n"   // bare LF tolerated
        "250\r\n";                 // code alone is a last line
    for (std::size_t a = 0; a <= wire.size(); ++a) {
        for (std::size_t b = a; b <= wire.size(); b += 7) {
            auto replies = parse_all({std::string_view(wire).substr(0, a),
                                      std::string_view(wire).substr(a, b - a),
                                      std::string_view(wire).substr(b)});
            ASSERT_EQ(replies.size(), 4u) << "split " << a << "," << b;
            EXPECT_EQ(replies[0].code, 220);
            EXPECT_EQ(replies[0].lines, std::vector<std::string>{"mx.example ESMTP ready"});
            EXPECT_EQ(replies[1].code, 250);
            EXPECT_EQ(replies[1].lines, (std::vector<std::string>{"mx.example Hello", "SIZE 157286400",
                                                                  "PIPELINING", "AUTH LOGIN XOAUTH2"}));
            EXPECT_EQ(replies[2].code, 354);
            EXPECT_EQ(replies[2].lines, std::vector<std::string>{"Start mail input"});
            EXPECT_EQ(replies[3].code, 250);
            EXPECT_EQ(replies[3].lines, std::vector<std::string>{""});
        }
    }
}

TEST(ReplyParser, IncompleteReplyWaitsForMoreBytes) {
    ReplyParser parser;
    parser.feed("250-first\r\n250 sec");
    EXPECT_FALSE(parser.next().has_value());
    EXPECT_TRUE(parser.has_buffered_bytes());
    parser.feed("ond\r\n");
    auto reply = parser.next();
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->lines.size(), 2u);
    EXPECT_FALSE(parser.has_buffered_bytes());
}

TEST(ReplyParser, MalformedRepliesThrow) {
    const char* bad[] = {
        "25\r\n",                      // too short
        "abc hello\r\n",               // not digits
        "250_hello\r\n",               // bad separator
        "250-one\r\n251 two\r\n",      // code changes inside a multi-line reply
        "650 out of range\r\n",        // first digit > 5
        "\r\n",                        // empty line
    };
    for (const char* wire : bad) {
        ReplyParser parser;
        parser.feed(wire);
        EXPECT_THROW(parser.next(), std::runtime_error) << wire;
    }
}

TEST(ReplyParser, SizeLimitAppliesToUnfinishedAndFinishedReplies) {
    ReplyParser endless(100);
    endless.feed(std::string(101, 'x'));
    EXPECT_THROW(endless.next(), std::runtime_error);

    ReplyParser long_multi(100);
    for (int i = 0; i < 20; ++i) long_multi.feed("250-0123456789\r\n");
    EXPECT_THROW(long_multi.next(), std::runtime_error);

    ReplyParser fits(100);
    fits.feed("250 " + std::string(90, 'y') + "\r\n");
    EXPECT_TRUE(fits.next().has_value());
}

TEST(Reply, EnhancedCodeAndText) {
    struct Case { std::vector<std::string> lines; std::string enhanced; };
    const Case cases[] = {
        {{"2.0.0 Ok queued"}, "2.0.0"},
        {{"5.7.139 Authentication unsuccessful"}, "5.7.139"},
        {{"4.3.2 STOREDRV.ClientSubmit"}, "4.3.2"},
        {{"2.1.5"}, "2.1.5"},
        {{"Ok 2.0.0"}, ""},
        {{"3.0.0 wrong class"}, ""},
        {{"2.0.0000 too many digits"}, ""},
        {{"2.0 short"}, ""},
        {{"2.0.0x glued"}, ""},
        {{}, ""},
    };
    for (const Case& c : cases) EXPECT_EQ((Reply{250, c.lines}.enhanced()), c.enhanced);
    EXPECT_EQ((Reply{250, {"mx Hello", "PIPELINING"}}.text()), "250 mx Hello / PIPELINING");
    EXPECT_EQ((Reply{221, {}}.text()), "221");
}

TEST(Reply, EhloKeywordsAreCaseInsensitiveWholeWords) {
    Reply ehlo{250, {"mx.example Hello", "size 1000", "STARTTLS", "AUTH LOGIN XOAUTH2", "AUTH=LOGIN"}};
    EXPECT_TRUE(ehlo.has_line_starting("SIZE"));
    EXPECT_TRUE(ehlo.has_line_starting("starttls"));
    EXPECT_TRUE(ehlo.has_line_starting("AUTH"));
    EXPECT_FALSE(ehlo.has_line_starting("PIPELINING"));
    EXPECT_FALSE(ehlo.has_line_starting("START"));   // a prefix is not the keyword
    EXPECT_FALSE(ehlo.has_line_starting("STARTTLSX"));
}

namespace {

// Input body, then the exact bytes DATA must carry including the terminator.
struct StuffCase { std::string body; std::string wire; };

const StuffCase kStuffCases[] = {
    {"", ".\r\n"},
    {"hello\r\n", "hello\r\n.\r\n"},
    {".\r\n", "..\r\n.\r\n"},
    {".hidden\r\n..two\r\n", "..hidden\r\n...two\r\n.\r\n"},
    {"a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
    {"no final newline", "no final newline\r\n.\r\n"},
    {"ends with dot\r\n.", "ends with dot\r\n..\r\n.\r\n"},
    {"x.\r\n. .\r\n", "x.\r\n.. .\r\n.\r\n"},
    {"cr only\r", "cr only\r\r\n.\r\n"},
    {"bare\n.\r\nlf\n", "bare\n..\r\nlf\n\r\n.\r\n"},   // stuffed after a bare LF too: no smuggling
    {"\r\n\r\n.", "\r\n\r\n..\r\n.\r\n"},
};

std::string stuff_in_pieces(const std::string& body, std::vector<std::size_t> cuts) {
    DotStuffer stuffer;
    std::string out;
    std::size_t from = 0;
    cuts.push_back(body.size());
    for (std::size_t cut : cuts) {
        stuffer.stuff(std::string_view(body).substr(from, cut - from), out);
        from = cut;
    }
    out += stuffer.finish();
    return out;
}

}  // namespace

TEST(DotStuffer, ExactWireBytesForEveryTwoPointSplit) {
    for (const StuffCase& c : kStuffCases) {
        for (std::size_t a = 0; a <= c.body.size(); ++a)
            for (std::size_t b = a; b <= c.body.size(); ++b)
                ASSERT_EQ(stuff_in_pieces(c.body, {a, b}), c.wire) << "body " << c.body << " split " << a << "," << b;
    }
}

TEST(DotStuffer, ByteAtATime) {
    for (const StuffCase& c : kStuffCases) {
        std::vector<std::size_t> cuts;
        for (std::size_t i = 1; i < c.body.size(); ++i) cuts.push_back(i);
        EXPECT_EQ(stuff_in_pieces(c.body, cuts), c.wire);
    }
}

TEST(DotStuffer, WireNeverContainsAnEarlyTerminator) {
    // A body made of nasty fragments: the only CRLF.CRLF on the wire must be the terminator.
    const std::string fragments[] = {".", "\r\n", "\n", "\r", "..", "x"};
    std::string body;
    for (int i = 0; i < 3000; ++i) body += fragments[(i * 7 + i / 5) % 6];
    std::string wire = "\r\n" + stuff_in_pieces(body, {body.size() / 3, body.size() / 2});
    EXPECT_EQ(wire.find("\r\n.\r\n"), wire.size() - 5);
    EXPECT_EQ(wire.find("\n.\r\n"), wire.size() - 4);
}
