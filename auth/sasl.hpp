// SASL client responses for the upstream AUTH command: XOAUTH2 (Google/Microsoft), OAUTHBEARER
// (RFC 7628), PLAIN (RFC 4616). Each returns the raw (not yet base64-encoded) response.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace relay::auth {

// "user=" user "\x01auth=Bearer " token "\x01\x01"
std::string xoauth2_response(std::string_view user, std::string_view access_token);
// "n,a=" user "," "\x01host=" host "\x01port=" port "\x01auth=Bearer " token "\x01\x01"
std::string oauthbearer_response(std::string_view user, std::string_view host, std::uint16_t port,
                                 std::string_view access_token);
// "\0" user "\0" password
std::string plain_response(std::string_view user, std::string_view password);

}  // namespace relay::auth
