// The log line encodings: text, JSON and journald (relay/core/log).
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "relay/core/log.hpp"

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
