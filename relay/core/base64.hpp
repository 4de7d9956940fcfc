// Base64 (RFC 4648) and base64url, as SASL (RFC 4954) and PKCE/JWT (RFC 7636, 7515) need them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace relay::core {

std::string base64_encode(std::string_view bytes);
// Strict: rejects characters outside the alphabet and bad padding; ignores nothing.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64url_encode(std::string_view bytes);   // no padding

}  // namespace relay::core
