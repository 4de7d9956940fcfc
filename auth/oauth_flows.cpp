// Authorization code + PKCE and device code: URLs, forms and response parsing (see oauth_flows.hpp).
#include "auth/oauth_flows.hpp"

#include <stdexcept>

#include <boost/json.hpp>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "relay/core/base64.hpp"
#include "auth/token_endpoint.hpp"

namespace relay::auth {

using core::base64_decode;
using core::base64_encode;
using core::base64url_encode;
namespace {

namespace json = boost::json;

std::string random_base64url(std::size_t bytes) {
    std::string raw(bytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) != 1)
        throw std::runtime_error("RAND_bytes failed: no randomness available");
    return base64url_encode(raw);
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string_view query_of(std::string_view url_or_target) {
    url_or_target = url_or_target.substr(0, url_or_target.find('#'));
    const auto q = url_or_target.find('?');
    return q == std::string_view::npos ? std::string_view{} : url_or_target.substr(q + 1);
}

std::string string_field(const json::object& o, std::string_view key) {
    const json::value* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string{};
}

std::optional<std::int64_t> seconds_field(const json::object& o, std::string_view key) {
    const json::value* v = o.if_contains(key);
    if (!v) return std::nullopt;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
    if (v->is_string()) {  // Microsoft has sent these as strings in the past
        try {
            return std::stoll(std::string(v->as_string()));
        } catch (const std::exception&) {
            return std::nullopt;
        }
    }
    return std::nullopt;
}

}  // namespace

std::string pkce_s256_challenge(std::string_view verifier) {
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(verifier.data()), verifier.size(), digest);
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
}

Pkce make_pkce() {
    Pkce pkce;
    pkce.verifier = random_base64url(32);
    pkce.challenge = pkce_s256_challenge(pkce.verifier);
    return pkce;
}

std::string random_state() { return random_base64url(16); }

std::string build_authorize_url(const conf::Account& account, std::string_view redirect_uri,
                                std::string_view state, std::string_view code_challenge) {
    FormFields query{
        {"client_id", account.client_id},
        {"response_type", "code"},
        {"redirect_uri", std::string(redirect_uri)},
        {"response_mode", "query"},
        {"scope", account.scope},
        {"state", std::string(state)},
        {"code_challenge", std::string(code_challenge)},
        {"code_challenge_method", "S256"},
    };
    if (account.provider == conf::Provider::google) {
        query.emplace_back("access_type", "offline");
        query.emplace_back("prompt", "consent");
    }
    const char joiner = account.authorize_url.find('?') == std::string::npos ? '?' : '&';
    return account.authorize_url + joiner + url_encode_form(query);
}

std::string form_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            out += ' ';
        } else if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

std::optional<RedirectParameters> parse_redirect(std::string_view url_or_target) {
    std::string_view query = query_of(url_or_target);
    if (query.empty()) return std::nullopt;
    RedirectParameters p;
    while (!query.empty()) {
        const auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        const auto eq = pair.find('=');
        const std::string name = form_decode(pair.substr(0, eq));
        const std::string value = eq == std::string_view::npos ? "" : form_decode(pair.substr(eq + 1));
        if (name == "code") p.code = value;
        else if (name == "state") p.state = value;
        else if (name == "error") p.error = value;
        else if (name == "error_description") p.error_description = value;
    }
    if (p.code.empty() && p.error.empty()) return std::nullopt;
    return p;
}

std::string redirect_path(std::string_view url_or_target) {
    std::string_view s = url_or_target.substr(0, url_or_target.find_first_of("?#"));
    if (auto scheme = s.find("://"); scheme != std::string_view::npos) {
        s = s.substr(scheme + 3);
        const auto slash = s.find('/');
        s = slash == std::string_view::npos ? std::string_view{} : s.substr(slash);
    }
    return s.empty() ? "/" : std::string(s);
}

FormFields authorization_code_form(const conf::Account& account, std::string_view code,
                                   std::string_view code_verifier, std::string_view redirect_uri) {
    FormFields form{
        {"grant_type", "authorization_code"},
        {"client_id", account.client_id},
        {"code", std::string(code)},
        {"redirect_uri", std::string(redirect_uri)},   // RFC 6749 4.1.3: identical to the authorize request
        {"code_verifier", std::string(code_verifier)},
        {"scope", account.scope},
    };
    if (!account.client_secret.empty()) form.emplace_back("client_secret", account.client_secret.reveal());
    return form;
}

FormFields device_code_request_form(const conf::Account& account) {
    return {{"client_id", account.client_id}, {"scope", account.scope}};
}

DeviceAuthorization parse_device_authorization(long http_status, std::string_view body) {
    boost::system::error_code ec;
    json::value parsed = json::parse(body, ec);
    const json::object* object = (!ec && parsed.is_object()) ? &parsed.as_object() : nullptr;
    // Error replies have the token endpoint's shape (RFC 8628 3.2 refers to RFC 6749 5.2).
    if (http_status != 200 || !object || object->contains("error"))
        (void)parse_token_response(http_status, body, Clock::now());  // throws TokenError
    DeviceAuthorization d;
    d.device_code = string_field(*object, "device_code");
    d.user_code = string_field(*object, "user_code");
    d.verification_uri = string_field(*object, "verification_uri");
    if (d.verification_uri.empty()) d.verification_uri = string_field(*object, "verification_url");
    d.message = string_field(*object, "message");
    if (auto s = seconds_field(*object, "expires_in"); s && *s > 0) d.expires_in = std::chrono::seconds(*s);
    if (auto s = seconds_field(*object, "interval"); s && *s > 0) d.interval = std::chrono::seconds(*s);
    if (d.device_code.empty() || d.user_code.empty() || d.verification_uri.empty())
        throw TokenError(TokenFailure::other, "malformed_response",
                         "device code response lacks device_code, user_code or verification_uri", http_status);
    return d;
}

FormFields device_token_form(const conf::Account& account, std::string_view device_code) {
    FormFields form{
        {"grant_type", "urn:ietf:params:oauth:grant-type:device_code"},
        {"client_id", account.client_id},
        {"device_code", std::string(device_code)},
    };
    if (!account.client_secret.empty()) form.emplace_back("client_secret", account.client_secret.reveal());
    return form;
}

}  // namespace relay::auth
