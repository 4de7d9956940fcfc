// DataDecoder: framing, dot-unstuffing, limits, the SMTP smuggling sequences, independence from how
// input is split, and a differential check against a trivial CRLF.CRLF splitter.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "relay/smtp/data_decoder.hpp"

using relay::smtp::DataDecoder;
using relay::smtp::DataError;
using relay::smtp::DataLimits;
using relay::smtp::DataOutput;

namespace {

struct Collect : DataOutput {
    std::string bytes;
    std::size_t writes = 0;
    void write(std::string_view b) override {
        EXPECT_FALSE(b.empty());
        bytes.append(b);
        ++writes;
    }
};

struct Result {
    std::string message;
    std::size_t consumed = 0;
    bool finished = false;
    DataError error = DataError::none;
    bool eight_bit = false;
    std::uint64_t size = 0;
    std::size_t writes = 0;
    bool operator==(const Result& o) const {
        return message == o.message && consumed == o.consumed && finished == o.finished && error == o.error &&
               eight_bit == o.eight_bit && size == o.size;
    }
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
    return os << "{consumed=" << r.consumed << " finished=" << r.finished << " error=" << int(r.error)
              << " size=" << r.size << " message=" << testing::PrintToString(r.message) << "}";
}

// Feeds `input` cut at `cuts` (ascending positions), like an I/O layer would: each feed gets the next
// chunk; once finished, the rest is left unconsumed.
Result decode(std::string_view input, const std::vector<std::size_t>& cuts, DataLimits limits = {}) {
    DataDecoder decoder(limits);
    Collect out;
    Result r;
    std::size_t from = 0;
    std::vector<std::size_t> ends = cuts;
    ends.push_back(input.size());
    for (std::size_t end : ends) {
        if (decoder.finished()) break;
        const std::size_t used = decoder.feed(input.substr(from, end - from), out);
        if (!decoder.finished()) {
            EXPECT_EQ(used, end - from);
        }
        r.consumed += used;
        from = end;
    }
    r.message = out.bytes;
    r.finished = decoder.finished();
    r.error = decoder.error();
    r.eight_bit = decoder.saw_8bit();
    r.size = decoder.size();
    r.writes = out.writes;
    return r;
}

Result decode_at_once(std::string_view input, DataLimits limits = {}) { return decode(input, {}, limits); }

Result decode_bytewise(std::string_view input, DataLimits limits = {}) {
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
    return decode(input, cuts, limits);
}

struct Case {
    const char* name;
    std::string input;
    std::string message;
    std::size_t consumed;
    DataError error;
};

DataLimits small_limits() {
    DataLimits l;
    l.max_line_length = 10;
    l.max_message_size = 40;
    return l;
}

const std::vector<Case>& cases() {
    static const std::vector<Case> c = {
        {"empty message", ".\r\n", "", 3, DataError::none},
        {"one line", "a\r\n.\r\n", "a\r\n", 6, DataError::none},
        {"stops at end of data", "a\r\n.\r\nQUIT\r\n", "a\r\n", 6, DataError::none},
        {"unstuffs leading dot", "..x\r\n.\r\n", ".x\r\n", 8, DataError::none},
        {"stuffed dot line", "a\r\n..\r\n.\r\n", "a\r\n.\r\n", 10, DataError::none},
        {"dot inside line is content", "a.b\r\n.x\r\n.\r\n", "a.b\r\nx\r\n", 12, DataError::none},
        {"empty lines", "\r\n\r\n.\r\n", "\r\n\r\n", 7, DataError::none},
        {"unfinished", "a\r\nb", "a\r\nb", 4, DataError::none},
        {"line of exactly 10 with CRLF", "12345678\r\n.\r\n", "12345678\r\n", 13, DataError::none},
        {"stuffing dot not counted", ".12345678\r\n.\r\n", "12345678\r\n", 14, DataError::none},
        {"line of 11 with CRLF", "123456789\r\n.\r\n", "12345678", 14, DataError::line_too_long},
        {"bare LF", "a\nb\r\n.\r\n", "a", 8, DataError::bare_newline},
        {"bare CR", "a\rb\r\n.\r\n", "a", 8, DataError::bare_newline},
        {"CR CR LF", "a\r\r\n.\r\n", "a", 7, DataError::bare_newline},
        {"NUL", std::string("ab\0c\r\n.\r\n", 9), "ab", 9, DataError::nul_byte},
        {"NUL at line start", std::string("a\r\n\0.\r\n.\r\n", 10), "a\r\n", 10, DataError::nul_byte},
        {"NUL before too long", std::string("1\0" "2345678901\r\n.\r\n", 17), "1", 17, DataError::nul_byte},
        {"too long before NUL", std::string("12345678901\0\r\n.\r\n", 17), "12345678", 17, DataError::line_too_long},
        {"too big", "1234567\r\n1234567\r\n1234567\r\n1234567\r\n1234567\r\n.\r\n",
         "1234567\r\n1234567\r\n1234567\r\n1234567\r\n1234", 48, DataError::too_big},
    };
    return c;
}

}  // namespace

TEST(DataDecoder, SampleCases) {
    for (const Case& c : cases()) {
        SCOPED_TRACE(c.name);
        const Result r = decode_at_once(c.input, small_limits());
        EXPECT_EQ(r.message, c.message);
        EXPECT_EQ(r.consumed, c.consumed);
        EXPECT_EQ(r.error, c.error);
        EXPECT_EQ(r.finished, c.input.find(".\r\n") != std::string::npos);
    }
}

TEST(DataDecoder, EverySplitPositionGivesTheSameResult) {
    for (const Case& c : cases()) {
        SCOPED_TRACE(c.name);
        const Result whole = decode_at_once(c.input, small_limits());
        EXPECT_EQ(decode_bytewise(c.input, small_limits()), whole);
        for (std::size_t a = 0; a <= c.input.size(); ++a)
            for (std::size_t b = a; b <= c.input.size(); ++b) ASSERT_EQ(decode(c.input, {a, b}, small_limits()), whole);
    }
}

TEST(DataDecoder, SizeCountsPastTheLimitAndNothingIsWrittenAfterAnError) {
    const Result r = decode_at_once("1234567\r\n1234567\r\n1234567\r\n1234567\r\n1234567\r\n.\r\n", small_limits());
    EXPECT_EQ(r.size, 45u);
    EXPECT_EQ(r.message.size(), 40u);
}

TEST(DataDecoder, ReportsEightBitBytes) {
    EXPECT_TRUE(decode_at_once("caf\xc3\xa9\r\n.\r\n").eight_bit);
    EXPECT_FALSE(decode_at_once("cafe\r\n.\r\n").eight_bit);
}

// CVE-2023-51764 and friends: none of these may end the data; only the final CRLF.CRLF does.
TEST(DataDecoder, SmugglingSequencesNeverEndTheData) {
    const std::vector<std::string> sequences = {"\n.\n",   "\n.\r",   "\r.\n",       "\r.\r",
                                                "\n.\r\n", "\r.\r\n", std::string("\r\n\x00.\r\n", 6), "\r\n.\r\r\n"};
    const std::string injected = "MAIL FROM:<x@evil.test>\r\nRCPT TO:<y@victim.test>\r\nDATA\r\nforged\r\n";
    for (const std::string& seq : sequences) {
        SCOPED_TRACE(testing::PrintToString(seq));
        const std::string body = "Subject: hi\r\n\r\nhello" + seq + injected;
        const std::string input = body + "\r\n.\r\nQUIT\r\n";
        const std::size_t real_end = body.size() + 5;
        const bool has_nul = seq.find('\0') != std::string::npos;   // the NUL case has only real CRLFs

        const Result strict = decode_at_once(input);
        EXPECT_TRUE(strict.finished);
        EXPECT_EQ(strict.consumed, real_end);
        EXPECT_EQ(strict.error, has_nul ? DataError::nul_byte : DataError::bare_newline);
        EXPECT_EQ(decode_bytewise(input), strict);

        DataLimits normalize;
        normalize.normalize_bare_newlines = true;
        const Result fixed = decode_at_once(input, normalize);
        EXPECT_TRUE(fixed.finished);
        EXPECT_EQ(fixed.consumed, real_end);
        EXPECT_EQ(fixed.error, has_nul ? DataError::nul_byte : DataError::none);
        if (!has_nul) {
            EXPECT_NE(fixed.message.find(injected), std::string::npos);
        }
        for (std::size_t i = 0; i < fixed.message.size(); ++i) {   // only CRLF pairs survive
            if (fixed.message[i] == '\r') {
                EXPECT_EQ(fixed.message[i + 1], '\n') << i;
            }
            if (fixed.message[i] == '\n') {
                EXPECT_EQ(fixed.message[i - 1], '\r') << i;
            }
        }
        EXPECT_EQ(decode_bytewise(input, normalize), fixed);
    }
}

TEST(DataDecoder, NormalizesBareNewlinesWhenAskedTo) {
    DataLimits normalize;
    normalize.normalize_bare_newlines = true;
    EXPECT_EQ(decode_at_once("a\nb\rc\r\r\n.\r\n", normalize).message, "a\r\nb\r\nc\r\n\r\n");
    const Result r = decode_at_once("a\n.\nb\r\n.\r\n", normalize);
    EXPECT_EQ(r.message, "a\r\n\r\nb\r\n");
    EXPECT_EQ(r.consumed, 10u);
}

// A bare-LF dot line is text in every mode (issue 11): normalized, its dot is unstuffed like any
// line's, and the data goes on to the real CRLF "." CRLF.
TEST(DataDecoder, BareNewlineDotLinesAreBodyTextWhenNormalizing) {
    DataLimits normalize;
    normalize.normalize_bare_newlines = true;
    for (const char* seq : {"\n.\n", "\r\n.\n", "\n.\r\n"}) {
        SCOPED_TRACE(testing::PrintToString(std::string(seq)));
        const std::string input = std::string("x") + seq + "after\r\n.\r\n";
        const Result r = decode_at_once(input, normalize);
        EXPECT_TRUE(r.finished);
        EXPECT_EQ(r.consumed, input.size());
        EXPECT_EQ(r.error, DataError::none);
        EXPECT_EQ(r.message, "x\r\n\r\nafter\r\n");
        EXPECT_EQ(decode_bytewise(input, normalize), r);
    }
}

TEST(DataDecoder, HeldCarriageReturnAcrossFeeds) {
    EXPECT_EQ(decode("a\r\n.\r\n", {2, 4, 5}).message, "a\r\n");
    EXPECT_EQ(decode("a\r\nb\r\n.\r\n", {2}).message, "a\r\nb\r\n");
    const Result bare = decode("a\rb\r\n.\r\n", {2});
    EXPECT_EQ(bare.error, DataError::bare_newline);
    EXPECT_EQ(bare.message, "a");
}

TEST(DataDecoder, WritesSlicesOfTheInputNotBytes) {
    std::string body;
    while (body.size() < 4 * 1024 * 1024) body += std::string(76, 'x') + "\r\n";
    const Result r = decode_at_once(body + ".\r\n");
    EXPECT_EQ(r.message, body);
    EXPECT_EQ(r.writes, 1u);
    EXPECT_EQ(r.error, DataError::none);
}

TEST(DataDecoder, RepliesCarryEnhancedCodes) {
    EXPECT_EQ(DataDecoder::reply_for(DataError::too_big), "552 5.3.4 Message size exceeds fixed maximum message size");
    EXPECT_EQ(DataDecoder::reply_for(DataError::line_too_long),
              "500 5.5.2 Message line too long (RFC 5321 allows 998 characters)");
    EXPECT_EQ(DataDecoder::reply_for(DataError::bare_newline),
              "550 5.5.2 Bare CR or LF in message; lines must end with CRLF (RFC 5321 2.3.8)");
    EXPECT_EQ(DataDecoder::reply_for(DataError::nul_byte).substr(0, 10), "554 5.6.0 ");
}

// On CRLF-only input the decoder must agree with the obvious reading: find the first CRLF.CRLF
// (counting the DATA line's CRLF), then drop one leading dot from each line.
TEST(DataDecoder, AgreesWithTrivialSplitterOnRandomCrlfInput) {
    std::mt19937 rng(5321);
    const std::vector<std::string> tokens = {"a", "..", ".", "\r\n", "\r\n", "\r\n.\r\n", "\xe9", " ", "x.y"};
    for (int round = 0; round < 3000; ++round) {
        std::string input;
        const int n = std::uniform_int_distribution<int>(0, 14)(rng);
        for (int i = 0; i < n; ++i) input += tokens[std::uniform_int_distribution<std::size_t>(0, tokens.size() - 1)(rng)];
        SCOPED_TRACE(testing::PrintToString(input));

        const std::string framed = "\r\n" + input;
        const std::size_t k = framed.find("\r\n.\r\n");
        std::string expected;
        if (k != std::string::npos) {
            const std::string wire = input.substr(0, k);   // ends with the CRLF before the dot (or is empty)
            std::size_t line = 0;
            while (line < wire.size()) {
                std::size_t eol = wire.find("\r\n", line);
                std::string text = wire.substr(line, eol - line);
                if (!text.empty() && text[0] == '.') text.erase(0, 1);
                expected += text + "\r\n";
                line = eol + 2;
            }
        }
        const Result r = decode_at_once(input);
        EXPECT_EQ(r.finished, k != std::string::npos);
        EXPECT_EQ(r.error, DataError::none);
        if (k != std::string::npos) {
            EXPECT_EQ(r.consumed, k + 3);
            EXPECT_EQ(r.message, expected);
        }
        const std::size_t cut = input.empty() ? 0 : rng() % input.size();
        EXPECT_EQ(decode(input, {cut}), r);
    }
}
