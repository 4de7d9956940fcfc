// The signed JWT an app presents instead of a client secret (RFC 7523 section 2.2 as the client
// authentication of RFC 7521 section 4.2; Microsoft identity platform "certificate credentials").
// The key never leaves this module; the certificate only contributes its thumbprints (x5t#S256
// and, for older Microsoft endpoints, x5t), which tell the server which registered key to verify with.
#pragma once

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>

namespace relay::auth {

// RFC 7521 section 4.2: the value of client_assertion_type for a JWT.
inline constexpr std::string_view kJwtBearerAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

// How long an assertion is valid; Microsoft recommends a few minutes.
inline constexpr std::chrono::minutes kAssertionLifetime{10};

// The certificate or key cannot be used. The message names the file and the reason, never key material.
class ClientCertificateError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Reads the PEM certificate and its (unencrypted) RSA private key, checks that they belong
// together, and returns a compact JWS (RS256) with header {alg, typ, x5t#S256, x5t} and claims
// aud = token_url, iss = sub = client_id, jti (random), nbf = iat = now, exp = now + 10 min.
// Blocking (file reads): call on the blocking pool.
std::string make_client_assertion(const std::filesystem::path& certificate_file,
                                  const std::filesystem::path& key_file, std::string_view client_id,
                                  std::string_view token_url, std::chrono::system_clock::time_point now);

}  // namespace relay::auth
