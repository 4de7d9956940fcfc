// Queue-tool requests (relay/spool/queue_control).
#include <gtest/gtest.h>

#include "relay/spool/queue_control.hpp"

namespace {

using namespace relay;

TEST(QueueControl, RequestsRoundTripAndRejectPaths) {
    using V = ControlRequest::Verb;
    for (const auto& r : {ControlRequest{V::retry, "19AB3C44D5E0001F"}, ControlRequest{V::retry_all, ""},
                          ControlRequest{V::hold, "19AB3C44D5E0001F"}, ControlRequest{V::release, "19AB3C44D5E0001F"},
                          ControlRequest{V::remove, "19AB3C44D5E0001F"}})
        EXPECT_EQ(parse_request(format_request(r)), r) << format_request(r);
    EXPECT_FALSE(parse_request("delete ../../etc/passwd"));
    EXPECT_FALSE(parse_request("explode 19AB3C44D5E0001F"));
    EXPECT_FALSE(parse_request("retry"));
}

}  // namespace
