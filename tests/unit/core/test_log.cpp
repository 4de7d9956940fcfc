// The log line encodings: text, JSON and journald (relay/core/log).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "relay/core/log.hpp"
#include "relay/core/untrusted_text.hpp"

using relay::log::Level;

TEST(LogFormat, PlainValuesStayBare) {
    EXPECT_EQ(relay::log::format_line(Level::info, "received", {{"queue_id", "ABC"}, {"size", 42}}),
              "info received queue_id=ABC size=42");
}

TEST(LogFormat, ValuesWithSpacesAndControlBytesAreQuotedOnOneLine) {
    EXPECT_EQ(relay::log::format_line(Level::warning, "deferred", {{"reply", "451 4.3.0 try\r\nlater"}}),
              "warning deferred reply=\"451 4.3.0 try\\x0d\\x0alater\"");
    EXPECT_EQ(relay::log::format_line(Level::info, "x", {{"from", ""}}), "info x from=\"\"");
}

namespace {

using namespace relay;

TEST(LogJson, FieldsAreEscapedAndNumbersStayNumbers) {
    const std::string line = log::format_json("2026-01-01T00:00:00.000Z", log::Level::warning, "deferred",
                                              {{"queue_id", "AB"}, {"upstream_reply", "451 \"busy\"\r\n"}, {"attempt", 2}});
    const auto v = boost::json::parse(line).as_object();
    EXPECT_EQ(v.at("event").as_string(), "deferred");
    EXPECT_EQ(v.at("level").as_string(), "warning");
    EXPECT_EQ(v.at("upstream_reply").as_string(), "451 \"busy\"\r\n");
    EXPECT_EQ(v.at("attempt").as_int64(), 2);
}

TEST(LogJournal, UpperCaseFieldsPriorityAndBinarySafeValues) {
    const std::string entry = log::format_journal(log::Level::error, "failed",
                                                  {{"queue_id", "AB"}, {"from", "a@b"}, {"upstream_reply", "550 x\nmore"}});
    EXPECT_NE(entry.find("PRIORITY=3\n"), std::string::npos);
    EXPECT_NE(entry.find("QUEUE_ID=AB\n"), std::string::npos);
    EXPECT_NE(entry.find("MAIL_FROM=a@b\n"), std::string::npos);
    EXPECT_NE(entry.find("EVENT=failed\n"), std::string::npos);
    EXPECT_NE(entry.find("SYSLOG_IDENTIFIER=smtp-oauth2-relay\n"), std::string::npos);
    // A value with a newline: name, '\n', 64-bit little-endian length, bytes, '\n'.
    const std::string binary = std::string("UPSTREAM_REPLY\n") + std::string("\x0a\0\0\0\0\0\0\0", 8) + "550 x\nmore\n";
    EXPECT_NE(entry.find(binary), std::string::npos);
}

}  // namespace

// Issue 13, item 7: bytes >= 0x80 passed unescaped, so a JSON log line could be invalid UTF-8
// and a text line could carry C1 controls (0x9b is a CSI on some terminals) to a terminal.
namespace {

bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = relay::core::utf8_sequence(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

bool has_control_bytes(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        char32_t cp = 0;
        const std::size_t n = relay::core::utf8_sequence(s, i, &cp);
        if (n == 0 || relay::core::is_control(cp)) return true;
        i += n;
    }
    return false;
}

const std::string kHostile[] = {
    "\xff\xfe invalid",       "caf\xc3",              "\xc0\xaf overlong /",   "\xed\xa0\x80 surrogate",
    "\xf4\x90\x80\x80 big",   "\x1b]52;c;ZXZpbA==\x07", "\x1b]0;pwned\x07",       "\xc2\x9b""31m C1 CSI",
    "\x1b[2J clear",          "tab\there",            "\x7f del",
};

}  // namespace

TEST(LogFormat, EveryFormatIsValidUtf8WithoutControlBytes) {
    for (const std::string& v : kHostile) {
        const std::string text = relay::log::format_line(Level::info, "received", {{"from", v}});
        EXPECT_TRUE(valid_utf8(text)) << text;
        EXPECT_FALSE(has_control_bytes(text)) << text;
        const std::string json = relay::log::format_json("t", Level::info, "received", {{"from", v}});
        EXPECT_TRUE(valid_utf8(json)) << json;
        EXPECT_FALSE(has_control_bytes(json)) << json;
        const std::string journal = relay::log::format_journal(Level::info, "received", {{"from", v}});
        const auto field = journal.find("\nMAIL_FROM=");
        ASSERT_NE(field, std::string::npos) << journal;
        std::string value = journal.substr(field + 11, journal.find('\n', field + 1) - field - 11);
        EXPECT_TRUE(valid_utf8(value)) << value;
        std::erase(value, '\t');   // journald keeps tabs (and line breaks, in the binary form)
        EXPECT_FALSE(has_control_bytes(value)) << value;
    }
}

TEST(LogFormat, WellFormedUtf8PassesAndInvalidBytesAreNamed) {
    EXPECT_EQ(relay::log::format_line(Level::info, "x", {{"from", "jos\xc3\xa9@example.com"}}),
              "info x from=\"jos\xc3\xa9@example.com\"");
    EXPECT_EQ(relay::log::format_line(Level::info, "x", {{"v", "a\xff" "b\xc2\x9b"}}), "info x v=\"a\\xffb\\xc2\\x9b\"");
    EXPECT_EQ(relay::log::format_json("", Level::info, "x", {{"v", "a\xff" "b\xc2\x9b\xc3\xa9"}}),
              "{\"level\":\"info\",\"event\":\"x\",\"v\":\"a\\ufffdb\\u009b\xc3\xa9\"}");
}

TEST(UntrustedText, TerminalEscapingKeepsTextAndNamesEverythingElse) {
    using relay::core::escape_for_terminal;
    EXPECT_EQ(escape_for_terminal("Subject: Rechnung f\xc3\xbcr M\xc3\xa4rz\tok"), "Subject: Rechnung f\xc3\xbcr M\xc3\xa4rz\tok");
    EXPECT_EQ(escape_for_terminal("X: \x1b]52;c;ZXZpbA==\x07"), "X: \\x1b]52;c;ZXZpbA==\\x07");
    EXPECT_EQ(escape_for_terminal("\r\n"), "\\x0d\\x0a");
    EXPECT_EQ(escape_for_terminal("\xe2\x82"), "\\xe2\\x82");   // truncated sequence
    EXPECT_EQ(escape_for_terminal("a\tb", /*keep_tab=*/false), "a\\x09b");
    for (const std::string& v : kHostile) EXPECT_FALSE(has_control_bytes(escape_for_terminal(v, false))) << v;
}

namespace {

using namespace relay;

// Issue 11, item 5: every recipient on the line, an array in JSON, and none at all when switched off.
TEST(LogRecipients, ToListsEveryRecipientInEachFormat) {
    const std::vector<std::string> to{"a@x.example", "b \"q\"@x.example"};
    EXPECT_EQ(log::format_line(log::Level::info, "delivered", {{"queue_id", "AB"}, log::recipients({"a@x", "b@y"})}),
              "info delivered queue_id=AB to=<a@x>,<b@y>");
    const auto v = boost::json::parse(log::format_json("t", log::Level::info, "delivered", {log::recipients(to)})).as_object();
    ASSERT_TRUE(v.at("to").is_array());
    EXPECT_EQ(v.at("to").as_array().size(), 2u);
    EXPECT_EQ(v.at("to").as_array()[1].as_string(), "b \"q\"@x.example");
    EXPECT_NE(log::format_journal(log::Level::info, "delivered", {log::recipients({"a@x"})}).find("TO=<a@x>\n"),
              std::string::npos);

    log::set_log_recipients(false);
    EXPECT_EQ(log::format_line(log::Level::info, "delivered", {{"queue_id", "AB"}, log::recipients(to)}),
              "info delivered queue_id=AB");
    EXPECT_EQ(log::format_json("", log::Level::info, "delivered", {log::recipients(to)}),
              R"({"level":"info","event":"delivered"})");
    EXPECT_EQ(log::format_journal(log::Level::info, "delivered", {log::recipients(to)}).find("TO="), std::string::npos);
    log::set_log_recipients(true);
}

}  // namespace
