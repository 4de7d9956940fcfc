// SASL initial client responses, byte for byte. XOAUTH2 is Google's/Microsoft's format (see
// /work/shared/PROVIDERS.md); OAUTHBEARER follows RFC 7628 section 3.1 (GS2 header "n,a=user,"
// then kvpairs separated by 0x01); PLAIN follows RFC 4616 section 2 with an empty authzid.
#include "auth/sasl.hpp"

namespace relay::auth {

std::string xoauth2_response(std::string_view user, std::string_view access_token) {
    std::string out;
    out.reserve(user.size() + access_token.size() + 24);
    out += "user=";
    out += user;
    out += "\x01" "auth=Bearer ";
    out += access_token;
    out += "\x01\x01";
    return out;
}

// RFC 7628 section 3.1: in the GS2 authzid, '=' and ',' must be escaped as "=3D" and "=2C"
// (RFC 5801 section 4).
static std::string gs2_escape(std::string_view user) {
    std::string out;
    for (char c : user) {
        if (c == '=') out += "=3D";
        else if (c == ',') out += "=2C";
        else out += c;
    }
    return out;
}

std::string oauthbearer_response(std::string_view user, std::string_view host, std::uint16_t port,
                                 std::string_view access_token) {
    std::string out = "n,a=";
    out += gs2_escape(user);
    out += ",\x01" "host=";
    out += host;
    out += "\x01" "port=";
    out += std::to_string(port);
    out += "\x01" "auth=Bearer ";
    out += access_token;
    out += "\x01\x01";
    return out;
}

std::string plain_response(std::string_view user, std::string_view password) {
    std::string out;
    out += '\0';
    out += user;
    out += '\0';
    out += password;
    return out;
}

SaslLogin sasl_login(const conf::Account& account, std::string_view access_token) {
    switch (account.upstream_auth) {
    case conf::UpstreamAuth::plain:
        return {"PLAIN", plain_response(account.upstream_user, account.upstream_password.reveal())};
    case conf::UpstreamAuth::login:
        return {"LOGIN", account.upstream_user + '\0' + account.upstream_password.reveal()};
    case conf::UpstreamAuth::oauthbearer:
        return {"OAUTHBEARER",
                oauthbearer_response(account.email, account.upstream.host, account.upstream.port, access_token)};
    case conf::UpstreamAuth::xoauth2:
        return {"XOAUTH2", xoauth2_response(account.email, access_token)};
    case conf::UpstreamAuth::none:
        break;
    }
    return {};
}

}  // namespace relay::auth
