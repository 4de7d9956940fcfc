#include <gtest/gtest.h>

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
