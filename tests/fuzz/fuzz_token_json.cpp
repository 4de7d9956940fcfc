// Fuzzes the token endpoint's response parser with arbitrary bodies and HTTP statuses: it returns a
// TokenSet or throws a std::exception with a message, and a returned token set is usable (a
// non-empty access token, a lifetime in (0, kMaxExpiresIn]: issue 13 item 3, an expires_in that
// overflowed the clock).
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>

#include <fuzzer/FuzzedDataProvider.h>

#include "auth/token_endpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider provider(data, size);
    const long status = provider.ConsumeBool() ? 200 : provider.ConsumeIntegralInRange<long>(0, 999);
    const std::string body = provider.ConsumeRemainingBytesAsString();
    const auto now = relay::auth::Clock::now();
    try {
        relay::auth::TokenSet tokens = relay::auth::parse_token_response(status, body, now);
        if (tokens.access_token.empty()) std::abort();
        if (tokens.expires_at <= now) std::abort();
        if (tokens.expires_at - now > relay::auth::kMaxExpiresIn) std::abort();
    } catch (const std::exception& e) {
        if (std::string(e.what()).empty()) std::abort();
    }
    return 0;
}
