// The upstream's queue id in its 250 after DATA (relay/delivery/upstream_queue_id).
#include <gtest/gtest.h>

#include "relay/delivery/upstream_queue_id.hpp"

namespace {

using namespace relay;

TEST(UpstreamQueueId, ExchangePostfixAndGmailReplies) {
    EXPECT_EQ(upstream_queue_id("250 2.0.0 OK <4A5B@MN2PR11MB4048.namprd11.prod.outlook.com> [Hostname=MN2PR11MB4048]"),
              "4A5B@MN2PR11MB4048.namprd11.prod.outlook.com");
    EXPECT_EQ(upstream_queue_id("250 2.0.0 Ok: queued as 4Bc2Lk0mXz"), "4Bc2Lk0mXz");
    EXPECT_EQ(upstream_queue_id("250 2.0.0 OK  1700000000 a1-20020a17090a.123 - gsmtp"), "a1-20020a17090a.123");
    EXPECT_EQ(upstream_queue_id("250 OK"), "");
}

}  // namespace
