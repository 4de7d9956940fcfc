// PBKDF2 password hashes (see password_hash.hpp): OpenSSL's PKCS5_PBKDF2_HMAC for the KDF,
// CRYPTO_memcmp for comparisons that must not leak how many bytes matched.
#include "auth/password_hash.hpp"

#include <charconv>
#include <deque>
#include <iterator>
#include <map>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>


namespace relay::auth {

namespace {

constexpr std::size_t kSaltBytes = 16;
constexpr std::size_t kHashBytes = kPbkdf2HashBytes;

std::string pbkdf2(std::string_view password, std::string_view salt, std::uint32_t iterations, std::size_t size) {
    std::string out(size, '\0');
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                          static_cast<int>(iterations), EVP_sha256(), static_cast<int>(size),
                          reinterpret_cast<unsigned char*>(out.data())) != 1)
        throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
    return out;
}

bool equal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// What the cache keeps instead of the password: SHA-256(salt || password).
std::string quick_digest(std::string_view salt, std::string_view password) {
    std::string input = std::string(salt) + std::string(password);
    std::string out(SHA256_DIGEST_LENGTH, '\0');
    SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(),
           reinterpret_cast<unsigned char*>(out.data()));
    OPENSSL_cleanse(input.data(), input.size());
    return out;
}

struct CacheEntry {
    std::string stored_text;            // the hash string these results belong to
    std::string success;                // quick_digest of the password that matched; empty: none yet
    std::deque<std::string> failures;   // quick_digests of recent wrong passwords
};
// A device configured with a wrong password retries it forever: remember a few wrong ones too.
constexpr std::size_t kRememberedFailures = 8;

std::mutex cache_mutex;
std::map<std::string, CacheEntry, std::less<>> cache;

// Unknown names are kept under "\x01<name>": no configured user name starts with a control byte,
// and the ordered map keeps them in one range that is easy to count and drop.
constexpr char kUnknownPrefix = '\x01';
constexpr std::size_t kRememberedUnknownNames = 1024;

std::string unknown_key(std::string_view user) { return kUnknownPrefix + std::string(user); }

// With cache_mutex held: forgets every unknown name once there are too many.
void bound_unknown_names() {
    auto first = cache.lower_bound(std::string(1, kUnknownPrefix));
    auto last = cache.lower_bound(std::string(1, static_cast<char>(kUnknownPrefix + 1)));
    if (static_cast<std::size_t>(std::distance(first, last)) > kRememberedUnknownNames) cache.erase(first, last);
}

}  // namespace

PasswordHash hash_password_with_salt(std::string_view password, std::string salt, std::uint32_t iterations) {
    PasswordHash h;
    h.iterations = iterations;
    h.hash = pbkdf2(password, salt, iterations, kHashBytes);
    h.salt = std::move(salt);
    return h;
}

PasswordHash hash_password(std::string_view password, std::uint32_t iterations) {
    std::string salt(kSaltBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) != 1)
        throw std::runtime_error("RAND_bytes failed: no randomness for the salt");
    return hash_password_with_salt(password, std::move(salt), iterations);
}

bool verify_password(const PasswordHash& stored, std::string_view password) {
    return equal(pbkdf2(password, stored.salt, stored.iterations, stored.hash.size()), stored.hash);
}

std::optional<bool> cached_password_verdict(std::string_view user, std::string_view stored_text,
                                            std::string_view password) {
    auto stored = parse_password_hash(stored_text);
    if (!stored) return false;
    const std::string digest = quick_digest(stored->salt, password);
    std::lock_guard lock(cache_mutex);
    auto it = cache.find(user);
    if (it == cache.end() || it->second.stored_text != stored_text) return std::nullopt;
    if (!it->second.success.empty() && equal(it->second.success, digest)) return true;
    for (const auto& failed : it->second.failures)
        if (equal(failed, digest)) return false;
    return std::nullopt;
}

bool verify_password_cached(std::string_view user, std::string_view stored_text, std::string_view password) {
    if (auto verdict = cached_password_verdict(user, stored_text, password)) return *verdict;
    auto stored = parse_password_hash(stored_text);
    if (!stored) return false;
    const std::string digest = quick_digest(stored->salt, password);
    const bool ok = verify_password(*stored, password);
    std::lock_guard lock(cache_mutex);
    CacheEntry& entry = cache[std::string(user)];
    if (entry.stored_text != stored_text) entry = CacheEntry{std::string(stored_text), {}, {}};
    if (ok) {
        entry.success = digest;
    } else {
        entry.failures.push_back(digest);
        if (entry.failures.size() > kRememberedFailures) entry.failures.pop_front();
    }
    return ok;
}

namespace {
std::mutex dummy_mutex;
std::map<std::uint32_t, std::string> dummies;   // by iteration count

std::optional<std::string> made_dummy(std::uint32_t iterations) {
    std::lock_guard lock(dummy_mutex);
    auto it = dummies.find(iterations);
    if (it == dummies.end()) return std::nullopt;
    return it->second;
}
}  // namespace

std::string dummy_password_hash(std::uint32_t iterations) {
    if (auto made = made_dummy(iterations)) return *made;
    // A secret nobody knows, so no password can match; one KDF run, once per iteration count.
    std::string secret(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(secret.data()), static_cast<int>(secret.size())) != 1)
        throw std::runtime_error("RAND_bytes failed: no randomness for the dummy hash");
    std::string text = hash_password(secret, iterations).to_string();
    OPENSSL_cleanse(secret.data(), secret.size());
    std::lock_guard lock(dummy_mutex);
    return dummies.emplace(iterations, std::move(text)).first->second;
}

std::optional<bool> cached_unknown_user_verdict(std::string_view user, std::uint32_t iterations,
                                                std::string_view password) {
    // Not made yet: only the slow path (on a worker thread) may spend the KDF run that makes it.
    auto dummy = made_dummy(iterations);
    if (!dummy) return std::nullopt;
    return cached_password_verdict(unknown_key(user), *dummy, password);
}

void verify_unknown_user_cached(std::string_view user, std::uint32_t iterations, std::string_view password) {
    verify_password_cached(unknown_key(user), dummy_password_hash(iterations), password);
    std::lock_guard lock(cache_mutex);
    bound_unknown_names();
}

}  // namespace relay::auth
