// The OAuth2 token endpoint conversation (RFC 6749 5.1/5.2 as Microsoft identity platform v2.0 and
// Google speak it): building grant requests and turning responses into tokens or classified errors.
// Decisions follow the OAuth `error` field, not AADSTS numbers, except to give the admin a better hint.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "auth/http_client.hpp"
#include "conf/config.hpp"

namespace relay::auth {

using Clock = std::chrono::system_clock;

struct TokenSet {
    std::string access_token;
    Clock::time_point expires_at{};     // obtained_at + expires_in
    Clock::time_point obtained_at{};
    std::string refresh_token;          // empty when the response carried none (keep the old one)
};

enum class TokenFailure {
    invalid_grant,      // refresh token expired/revoked/unknown: a person must authorize again
    invalid_client,     // wrong or expired client secret, wrong client id
    consent_required,   // AADSTS65001 and friends
    temporary,          // HTTP 5xx, temporarily_unavailable, transport failure: retry later
    other,              // anything else: invalid_request, unauthorized_client, malformed response
};

// True for the failures that only a person can fix (sign in again, fix the secret, grant consent):
// retrying adds nothing but sign-in failures. The one answer to "is this token failure permanent",
// used by the token manager (fail fast, log once) and by delivery (hold the account).
constexpr bool needs_person(TokenFailure kind) {
    return kind == TokenFailure::invalid_grant || kind == TokenFailure::invalid_client ||
           kind == TokenFailure::consent_required;
}

// A failed token request. what() is a one-line summary safe for logs: the OAuth error, its
// description with secrets impossible (the endpoint never echoes them) and no request body.
class TokenError : public std::runtime_error {
public:
    TokenError(TokenFailure kind, std::string oauth_error, std::string description, long http_status);
    TokenFailure kind() const { return kind_; }
    const std::string& oauth_error() const { return oauth_error_; }
    const std::string& description() const { return description_; }
    long http_status() const { return http_status_; }
    // The endpoint's Retry-After (delay-seconds) on a 429/5xx, when it sent one. The admin's hint
    // for any failure is in token_hints.hpp (one table for check, authorize and the log).
    std::optional<std::chrono::seconds> retry_after() const { return retry_after_; }
    void set_retry_after(std::optional<std::chrono::seconds> delay) { retry_after_ = delay; }

private:
    TokenFailure kind_;
    std::string oauth_error_;
    std::string description_;
    long http_status_;
    std::optional<std::chrono::seconds> retry_after_;
};

// Retry-After as delay-seconds (what the identity platform sends); nullopt when absent or in
// another form. Not bounded here: the token manager bounds it (token_retry.hpp).
std::optional<std::chrono::seconds> parse_retry_after_seconds(std::string_view value);

// grant_type=refresh_token with client_id, client_secret (when set), scope.
FormFields refresh_grant_form(const conf::Account& account, std::string_view refresh_token);

// grant_type=client_credentials (RFC 6749 4.4) for app-only accounts: client_id, scope and either
// client_secret or a JWT client assertion (RFC 7523 2.2) made from the account's certificate.
// Blocking when a certificate is used (reads it); a certificate problem is TokenError(invalid_client).
FormFields client_credentials_form(const conf::Account& account, Clock::time_point now);

// expires_in as the relay uses it (issue 13, item 3): a huge value once overflowed the clock and
// made every session stale at once. Longer than a day is clamped to a day (Microsoft issues about
// an hour, Google an hour); missing, unparsable, zero or negative gives a short default, so a
// broken endpoint is asked again soon but not in a loop.
inline constexpr std::chrono::seconds kMaxExpiresIn{24 * 3600};
inline constexpr std::chrono::seconds kDefaultExpiresIn{300};
std::chrono::seconds sane_expires_in(std::optional<long long> seconds);

// Parses a token endpoint response. 200 with access_token -> TokenSet; anything else -> TokenError.
TokenSet parse_token_response(long http_status, std::string_view body, Clock::time_point now);

// POSTs `form` to the account's token_url and parses the answer. Transport failures become
// TokenError(temporary). Blocking (uses `http`).
TokenSet request_token(HttpClient& http, const conf::Account& account, const FormFields& form,
                       Clock::time_point now);

}  // namespace relay::auth
