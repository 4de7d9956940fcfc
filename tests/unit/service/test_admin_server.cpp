// The /metrics HTTP responder (relay/service/admin_server).
#include <gtest/gtest.h>

#include "relay/service/admin_server.hpp"

namespace {

using namespace relay;

TEST(MetricsHttp, OnlyGetMetrics) {
    auto body = [] { return std::string("x 1\n"); };
    auto ok = http_response("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", body);
    EXPECT_TRUE(ok.starts_with("HTTP/1.1 200 OK\r\n")) << ok;
    EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
    EXPECT_TRUE(ok.ends_with("\r\n\r\nx 1\n"));
    EXPECT_TRUE(http_response("HEAD /metrics HTTP/1.1\r\n\r\n", body).ends_with("\r\n\r\n"));
    EXPECT_TRUE(http_response("GET / HTTP/1.1\r\n\r\n", body).starts_with("HTTP/1.1 404"));
    EXPECT_TRUE(http_response("POST /metrics HTTP/1.1\r\n\r\n", body).starts_with("HTTP/1.1 405"));
    EXPECT_TRUE(http_response("hello\r\n\r\n", body).starts_with("HTTP/1.1 400"));
}

}  // namespace
