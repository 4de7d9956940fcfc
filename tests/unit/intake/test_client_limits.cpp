// ClientLimits' per-address and total connection caps (AUTH lockout: auth_attempts), driven with an explicit clock
// (relay/intake/client_limits).
#include <gtest/gtest.h>

#include "relay/intake/client_limits.hpp"

namespace {

using namespace relay;
using namespace std::chrono_literals;

TEST(ClientLimits, PerAddressAndTotalCaps) {
    ClientLimits limits({.max_clients = 3, .max_clients_per_ip = 2});
    EXPECT_EQ(limits.admit("10.0.0.1"), ClientLimits::Admission::ok);
    EXPECT_EQ(limits.admit("10.0.0.1"), ClientLimits::Admission::ok);
    EXPECT_EQ(limits.admit("10.0.0.1"), ClientLimits::Admission::too_many_from_address);
    EXPECT_EQ(limits.admit("10.0.0.2"), ClientLimits::Admission::ok);
    EXPECT_EQ(limits.admit("10.0.0.3"), ClientLimits::Admission::too_many_clients);
    limits.release("10.0.0.1");
    EXPECT_EQ(limits.clients(), 2u);
    EXPECT_EQ(limits.admit("10.0.0.3"), ClientLimits::Admission::ok);
    limits.release("10.0.0.9");   // never admitted: ignored
    EXPECT_EQ(limits.clients(), 3u);
}

}  // namespace
