// Salted password hashes for local [[users]] (`password_hash`), so the config file need not hold
// the passwords printers and scripts log in with. The stored format lives in conf/password_hash_format.hpp.
// PBKDF2-HMAC-SHA256 (RFC 8018 section 5.2) with a 16-byte random salt and a 32-byte result, standard
// base64 (RFC 4648 section 4) with padding. PBKDF2 rather than scrypt: no memory cost to tune on
// small relay hosts, and OWASP's iteration advice for it is simple to follow.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "conf/password_hash_format.hpp"

namespace relay::auth {

using conf::kPbkdf2HashBytes;
using conf::kPbkdf2Iterations;
using conf::kPbkdf2MaxIterations;
using conf::kPbkdf2MinIterations;
using conf::parse_password_hash;
using conf::PasswordHash;

// A new hash of `password` with a random salt (RAND_bytes).
PasswordHash hash_password(std::string_view password, std::uint32_t iterations = kPbkdf2Iterations);
PasswordHash hash_password_with_salt(std::string_view password, std::string salt, std::uint32_t iterations);

// Runs the KDF and compares in constant time.
bool verify_password(const PasswordHash& stored, std::string_view password);

// verify_password with memory: after one KDF run for (user, stored hash) it remembers a salted
// SHA-256 of the password that matched (and of the last few that did not), so a device that logs in
// every minute, or keeps retrying a wrong password, costs one KDF run, not one per login. A new
// password, or a changed hash after a reload, runs the KDF again.
// Thread-safe; process-wide.
bool verify_password_cached(std::string_view user, std::string_view stored_text, std::string_view password);

// The cache alone, without a KDF run: true/false when this password was seen for (user, stored hash),
// nullopt when only verify_password_cached (slow: run it off the I/O thread) can tell.
std::optional<bool> cached_password_verdict(std::string_view user, std::string_view stored_text,
                                            std::string_view password);

// Equal timing for names that do not exist (issue 13, item 12): a hash of a random secret with
// `iterations` rounds, made once per process and iteration count. Checking an unknown user's
// password against it with the *_unknown functions below costs what a wrong password of a real
// user costs, cache included, so the reply's timing does not tell which names exist. The cache
// for unknown names is bounded (a scan of random names cannot grow it).
std::string dummy_password_hash(std::uint32_t iterations);
std::optional<bool> cached_unknown_user_verdict(std::string_view user, std::uint32_t iterations,
                                                std::string_view password);
void verify_unknown_user_cached(std::string_view user, std::uint32_t iterations, std::string_view password);

}  // namespace relay::auth
