// The pure parts of the two ways a person grants the relay a refresh token:
//  - the authorization code flow with PKCE (RFC 6749 section 4.1, RFC 7636) and a loopback redirect
//    (RFC 8252 section 7.3): authorize URL, the redirected URL's query, the code redemption form;
//  - the device authorization grant (RFC 8628): the device code request and its response, the poll form.
// No I/O here: `authorize` (auth/cmd_authorize.cpp) does the sockets and HTTP.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "auth/http_client.hpp"
#include "conf/config.hpp"

namespace relay::auth {

// RFC 7636 section 4.1/4.2: a high-entropy code_verifier and its S256 code_challenge.
struct Pkce {
    std::string verifier;
    std::string challenge;
};
// BASE64URL(SHA256(ASCII(verifier))), no padding.
std::string pkce_s256_challenge(std::string_view verifier);
// 32 random bytes as base64url (43 characters, within 43..128 of section 4.1).
Pkce make_pkce();
// An unguessable `state` (RFC 6749 section 10.12): 16 random bytes, base64url.
std::string random_state();

// The URL the person opens: authorize_url + response_type=code, client_id, redirect_uri, scope,
// state, code_challenge, code_challenge_method=S256 (+ Google's access_type=offline and
// prompt=consent, without which Google returns no refresh token).
std::string build_authorize_url(const conf::Account& account, std::string_view redirect_uri,
                                std::string_view state, std::string_view code_challenge);

// The query of the redirected request (RFC 6749 section 4.1.2 / 4.1.2.1).
struct RedirectParameters {
    std::string code;
    std::string state;
    std::string error;              // e.g. access_denied
    std::string error_description;
};
// Accepts a full URL ("http://localhost:8400/?code=...&state=...") or an HTTP request target
// ("/?code=..."). nullopt when there is no query or it carries neither code nor error.
std::optional<RedirectParameters> parse_redirect(std::string_view url_or_target);
// The path part of a request target or URL ("/" when empty), to tell the redirect from /favicon.ico.
std::string redirect_path(std::string_view url_or_target);

// application/x-www-form-urlencoded decoding of one value ('+' is a space).
std::string form_decode(std::string_view text);

// grant_type=authorization_code (RFC 6749 4.1.3 + RFC 7636 4.5), client_secret when configured.
FormFields authorization_code_form(const conf::Account& account, std::string_view code,
                                   std::string_view code_verifier, std::string_view redirect_uri);

// RFC 8628 section 3.1 request and 3.2 response.
FormFields device_code_request_form(const conf::Account& account);
struct DeviceAuthorization {
    std::string device_code;
    std::string user_code;
    std::string verification_uri;    // Google calls it verification_url
    std::string message;             // Microsoft's ready-made instruction, may be empty
    std::chrono::seconds expires_in{900};
    std::chrono::seconds interval{5};  // RFC 8628 3.2: default 5 s when absent
};
// Throws TokenError (as parse_token_response does) for an error reply or a malformed one.
DeviceAuthorization parse_device_authorization(long http_status, std::string_view body);
// grant_type=urn:ietf:params:oauth:grant-type:device_code (RFC 8628 section 3.4).
FormFields device_token_form(const conf::Account& account, std::string_view device_code);

}  // namespace relay::auth
