// Parsing and printing the `password_hash` format (see password_hash_format.hpp).
#include "conf/password_hash_format.hpp"

#include <charconv>

#include <fmt/format.h>

#include "relay/core/base64.hpp"

namespace relay::conf {
namespace {
constexpr std::string_view kPrefix = "$pbkdf2-sha256$";
}  // namespace

using core::base64_decode;
using core::base64_encode;

std::string PasswordHash::to_string() const {
    return fmt::format("{}{}${}${}", kPrefix, iterations, base64_encode(salt), base64_encode(hash));
}

std::optional<PasswordHash> parse_password_hash(std::string_view text, std::string* why) {
    auto fail = [&](std::string reason) -> std::optional<PasswordHash> {
        if (why) *why = std::move(reason);
        return std::nullopt;
    };
    if (!text.starts_with(kPrefix))
        return fail("expected \"$pbkdf2-sha256$<iterations>$<salt>$<hash>\" as printed by `smtp-oauth2-relay hash-password`");
    std::string_view rest = text.substr(kPrefix.size());
    const auto d1 = rest.find('$');
    const auto d2 = d1 == std::string_view::npos ? d1 : rest.find('$', d1 + 1);
    if (d2 == std::string_view::npos || rest.find('$', d2 + 1) != std::string_view::npos)
        return fail("expected four '$'-separated parts after \"$pbkdf2-sha256$\"");
    PasswordHash h;
    std::string_view count = rest.substr(0, d1);
    auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), h.iterations);
    if (count.empty() || ec != std::errc{} || end != count.data() + count.size())
        return fail("the iteration count is not a number");
    if (h.iterations < kPbkdf2MinIterations || h.iterations > kPbkdf2MaxIterations)
        return fail(fmt::format("the iteration count must be between {} and {} (hash-password uses {})",
                                kPbkdf2MinIterations, kPbkdf2MaxIterations, kPbkdf2Iterations));
    auto salt = base64_decode(rest.substr(d1 + 1, d2 - d1 - 1));
    auto hash = base64_decode(rest.substr(d2 + 1));
    if (!salt || salt->size() < 8) return fail("the salt is not base64 of at least 8 bytes");
    if (!hash || hash->size() != kPbkdf2HashBytes) return fail("the hash is not base64 of 32 bytes");
    h.salt = std::move(*salt);
    h.hash = std::move(*hash);
    return h;
}

}  // namespace relay::conf
