// The per-message state sidecar (relay/spool/queue_state).
#include <gtest/gtest.h>

#include "relay/spool/queue_state.hpp"

namespace {

using namespace relay;
using namespace std::chrono_literals;

TEST(QueueState, RoundTripAndSidecarNames) {
    MessageState s{3, std::chrono::system_clock::time_point(1700000000123ms), "432 4.3.2 busy\r\nx", {"a@x", "b@y"}};
    auto back = parse_state(format_state(s));
    EXPECT_EQ(back.attempts, 3u);
    EXPECT_EQ(back.next_try, s.next_try);
    EXPECT_EQ(back.last_reply, "432 4.3.2 busy  x");
    EXPECT_EQ(back.rcpt_left, s.rcpt_left);
    EXPECT_EQ(parse_state("attempts x\ngarbage\n").attempts, 0u);
    EXPECT_TRUE(is_sidecar_name("19AB3C44D5E0001F.state"));
    EXPECT_TRUE(is_sidecar_name("19AB3C44D5E0001F.hold"));
    EXPECT_FALSE(is_sidecar_name("19AB3C44D5E0001F"));
    EXPECT_EQ(state_path("/q/ID").string(), "/q/ID.state");
}

}  // namespace
