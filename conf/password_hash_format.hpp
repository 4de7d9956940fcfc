// The `password_hash` value of a [[users]] table, parsed at config load (see auth/password_hash.hpp
// for the KDF that checks passwords against it). Format, in the style of passlib's modular crypt:
//   $pbkdf2-sha256$<iterations>$<base64 salt>$<base64 hash>
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace relay::conf {

// OWASP (2021) recommends at least 310,000 iterations of PBKDF2-HMAC-SHA256.
constexpr std::uint32_t kPbkdf2Iterations = 310000;
// Below this a stored hash is refused at config load: it would be too cheap to brute-force.
constexpr std::uint32_t kPbkdf2MinIterations = 200000;
constexpr std::uint32_t kPbkdf2MaxIterations = 10000000;
constexpr std::size_t kPbkdf2HashBytes = 32;

struct PasswordHash {
    std::uint32_t iterations = 0;
    std::string salt;    // raw bytes
    std::string hash;    // raw bytes
    std::string to_string() const;
};

// nullopt with `why` set when `text` is not a well-formed hash of this format.
std::optional<PasswordHash> parse_password_hash(std::string_view text, std::string* why = nullptr);

}  // namespace relay::conf
