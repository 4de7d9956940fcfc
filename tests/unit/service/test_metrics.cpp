// Counters from log events and Prometheus rendering (relay/service/metrics).
#include <gtest/gtest.h>

#include "relay/service/metrics.hpp"

namespace {

using namespace relay;

TEST(Metrics, CountsFromLogEventsAndRendersAHistogram) {
    metrics::reset();
    metrics::observe("received", {{"queue_id", "A"}, {"account", "office"}});
    metrics::observe("delivered", {{"account", "office"}, {"upstream_reply", "250 2.0.0 OK"}, {"delay_ms", 300}});
    metrics::observe("deferred", {{"account", "office"}, {"upstream_reply", "451 4.3.0 busy"}});
    metrics::observe("deferred", {{"account", "office"}, {"upstream_reply", "connect: refused"}});
    metrics::observe("token_refreshed", {{"account", "office"}});
    metrics::observe("connect", {{"client", "1.2.3.4"}});   // not counted
    const std::string text = metrics::render({{"q", "help", {{"{state=\"ready\"}", 2}}}});
    EXPECT_NE(text.find("smtp_oauth2_relay_messages_received_total{account=\"office\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("smtp_oauth2_relay_messages_deferred_total{account=\"office\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_upstream_replies_total{account=\"office\",class=\"4xx\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_upstream_replies_total{account=\"office\",class=\"none\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_delivery_latency_seconds_bucket{account=\"office\",le=\"0.25\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_delivery_latency_seconds_bucket{account=\"office\",le=\"0.5\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_delivery_latency_seconds_bucket{account=\"office\",le=\"+Inf\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_token_refreshes_total{account=\"office\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("# TYPE q gauge\nq{state=\"ready\"} 2\n"), std::string::npos);
    metrics::reset();
}

}  // namespace
