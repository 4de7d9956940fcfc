// Token endpoint requests and responses (RFC 6749 section 6 refresh grant, 5.1 success, 5.2 error).
// Classification follows the OAuth `error` field as Microsoft advises; AADSTS numbers only refine
// the admin's hint (AADSTS65001 = consent missing, which Microsoft reports as invalid_grant).
#include "auth/token_endpoint.hpp"

#include "auth/client_assertion.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace relay::auth {
namespace {

namespace json = boost::json;

std::string first_line(std::string_view text) {
    std::string_view line = text.substr(0, text.find_first_of("\r\n"));
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    return std::string(line);
}

std::string string_field(const json::object& o, std::string_view key) {
    const json::value* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

// expires_in is a number per RFC 6749 5.1, but some servers send it as a string ("3599"). Any
// value is turned into a count of seconds without overflow: huge ones saturate (clamped later),
// fractions and negatives are kept as they are so the caller can see them.
std::optional<long long> seconds_field(const json::object& o, std::string_view key) {
    constexpr long long kHuge = 1LL << 40;   // far beyond any lifetime, far from overflow
    const json::value* v = o.if_contains(key);
    if (!v) return std::nullopt;
    if (v->is_int64()) return std::clamp<long long>(v->as_int64(), -kHuge, kHuge);
    if (v->is_uint64()) return std::min<std::uint64_t>(v->as_uint64(), kHuge);
    if (v->is_double()) {
        const double d = v->as_double();
        if (!std::isfinite(d)) return std::nullopt;
        return static_cast<long long>(std::clamp(d, -static_cast<double>(kHuge), static_cast<double>(kHuge)));
    }
    if (v->is_string()) {
        std::string_view s = v->as_string();
        if (s.empty() || s.size() > 20) return std::nullopt;
        long long n = 0;
        for (char c : s) {
            if (c < '0' || c > '9') return std::nullopt;
            n = std::min(n * 10 + (c - '0'), kHuge);
        }
        return n;
    }
    return std::nullopt;
}

}  // namespace

std::chrono::seconds sane_expires_in(std::optional<long long> seconds) {
    if (!seconds || *seconds <= 0) return kDefaultExpiresIn;
    return std::min(std::chrono::seconds(*seconds), kMaxExpiresIn);
}

namespace {

TokenFailure classify(long status, const std::string& error, const std::string& description) {
    if (error == "consent_required" || description.find("AADSTS65001") != std::string::npos)
        return TokenFailure::consent_required;
    if (error == "invalid_grant") return TokenFailure::invalid_grant;
    if (error == "invalid_client" || error == "unauthorized_client") return TokenFailure::invalid_client;
    if (error == "temporarily_unavailable" || status >= 500 || status == 429) return TokenFailure::temporary;
    return TokenFailure::other;
}

std::string summary(const std::string& oauth_error, const std::string& description, long status) {
    std::string s = fmt::format("token request failed: {} (HTTP {})", oauth_error, status);
    if (!description.empty()) s += ": " + description;
    return s;
}

}  // namespace

TokenError::TokenError(TokenFailure kind, std::string oauth_error, std::string description, long http_status)
    : std::runtime_error(summary(oauth_error, description, http_status)),
      kind_(kind),
      oauth_error_(std::move(oauth_error)),
      description_(std::move(description)),
      http_status_(http_status) {}

std::optional<std::chrono::seconds> parse_retry_after_seconds(std::string_view value) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (value.empty() || value.size() > 9) return std::nullopt;
    long long n = 0;
    for (char c : value) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + (c - '0');
    }
    return std::chrono::seconds(n);
}

FormFields refresh_grant_form(const conf::Account& account, std::string_view refresh_token) {
    FormFields form{
        {"grant_type", "refresh_token"},
        {"client_id", account.client_id},
        {"refresh_token", std::string(refresh_token)},
        {"scope", account.scope},
    };
    // Public clients (device code / loopback flows) have no secret and must not send one.
    if (!account.client_secret.empty()) form.emplace_back("client_secret", account.client_secret.reveal());
    return form;
}

FormFields client_credentials_form(const conf::Account& account, Clock::time_point now) {
    FormFields form{
        {"grant_type", "client_credentials"},
        {"client_id", account.client_id},
        {"scope", account.scope},
    };
    if (account.client_certificate_file.empty()) {
        form.emplace_back("client_secret", account.client_secret.reveal());
        return form;
    }
    try {
        form.emplace_back("client_assertion_type", std::string(kJwtBearerAssertionType));
        form.emplace_back("client_assertion", make_client_assertion(account.client_certificate_file, account.client_key_file,
                                                                    account.client_id, account.token_url, now));
    } catch (const ClientCertificateError& e) {
        throw TokenError(TokenFailure::invalid_client, "client_certificate_unusable", e.what(), 0);
    }
    return form;
}

TokenSet parse_token_response(long http_status, std::string_view body, Clock::time_point now) {
    boost::system::error_code ec;
    json::value parsed = json::parse(body, ec);
    const json::object* object = (!ec && parsed.is_object()) ? &parsed.as_object() : nullptr;

    if (!object) {
        if (http_status >= 500 || http_status == 429)
            throw TokenError(TokenFailure::temporary, "http_error", "non-JSON response", http_status);
        throw TokenError(TokenFailure::other, http_status == 200 ? "malformed_response" : "http_error",
                         "token endpoint response is not a JSON object", http_status);
    }
    std::string error = string_field(*object, "error");
    if (http_status != 200 || !error.empty()) {
        std::string description = first_line(string_field(*object, "error_description"));
        if (error.empty()) error = "http_error";
        throw TokenError(classify(http_status, error, description), error, description, http_status);
    }

    TokenSet tokens;
    tokens.access_token = string_field(*object, "access_token");
    if (tokens.access_token.empty())
        throw TokenError(TokenFailure::other, "malformed_response", "token response lacks access_token", http_status);
    tokens.obtained_at = now;
    tokens.expires_at = now + sane_expires_in(seconds_field(*object, "expires_in"));
    tokens.refresh_token = string_field(*object, "refresh_token");
    return tokens;
}

TokenSet request_token(HttpClient& http, const conf::Account& account, const FormFields& form,
                       Clock::time_point now) {
    HttpResponse response;
    try {
        response = http.post_form(account.token_url, form);
    } catch (const HttpError& e) {
        // HttpError text names the URL and curl's reason only; safe to carry along.
        throw TokenError(TokenFailure::temporary, "transport_error", first_line(e.what()), 0);
    }
    try {
        return parse_token_response(response.status, response.body, now);
    } catch (TokenError& e) {
        e.set_retry_after(parse_retry_after_seconds(response.retry_after));
        throw;
    }
}

}  // namespace relay::auth
