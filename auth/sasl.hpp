// SASL client responses for the upstream AUTH command: XOAUTH2 (Google/Microsoft), OAUTHBEARER
// (RFC 7628), PLAIN (RFC 4616). Each returns the raw (not yet base64-encoded) response.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "conf/config.hpp"

namespace relay::auth {

// "user=" user "\x01auth=Bearer " token "\x01\x01"
std::string xoauth2_response(std::string_view user, std::string_view access_token);
// "n,a=" user "," "\x01host=" host "\x01port=" port "\x01auth=Bearer " token "\x01\x01"
std::string oauthbearer_response(std::string_view user, std::string_view host, std::uint16_t port,
                                 std::string_view access_token);
// "\0" user "\0" password
std::string plain_response(std::string_view user, std::string_view password);

// The AUTH command for an account: the mechanism named by its upstream_auth and the raw client
// response. The one place that maps upstream_auth to SASL (delivery's SMTP transport and `check`).
// `access_token` is used by XOAUTH2 and OAUTHBEARER; PLAIN and LOGIN use the configured password
// (LOGIN's response is "user\0password", split by the SMTP client into its two steps).
// Empty mechanism for upstream_auth = "none". The response holds a secret: never log it.
struct SaslLogin {
    std::string mechanism;
    std::string response;
};
SaslLogin sasl_login(const conf::Account& account, std::string_view access_token);

}  // namespace relay::auth
