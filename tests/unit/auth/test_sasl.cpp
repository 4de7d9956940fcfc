// base64 (RFC 4648 section 10 test vectors, strictness) and the SASL responses byte for byte.
#include <gtest/gtest.h>

#include "relay/core/base64.hpp"
#include "auth/sasl.hpp"

using namespace relay::auth;
using namespace relay::core;

TEST(Base64, Rfc4648Vectors) {
    const std::pair<const char*, const char*> vectors[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (auto [plain, encoded] : vectors) {
        EXPECT_EQ(base64_encode(plain), encoded);
        EXPECT_EQ(base64_decode(encoded), std::optional<std::string>(plain)) << encoded;
    }
}

TEST(Base64, AllByteValuesRoundTrip) {
    std::string all;
    for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
    for (std::size_t n = 0; n <= all.size(); n += 17) {
        auto decoded = base64_decode(base64_encode(all.substr(0, n)));
        ASSERT_TRUE(decoded);
        EXPECT_EQ(*decoded, all.substr(0, n));
    }
}

TEST(Base64, StrictDecodingRejectsMalformedInput) {
    for (const char* bad : {"Zg", "Zg=", "Zm9v\r\n", " Zm9v", "Zm9v====", "Z===", "=Zm9", "Zm=v",
                            "Zg==Zg==", "Zh==", "Zm9=", "Zm-v", "Zm_v", "Zm9v!A=="}) {
        EXPECT_FALSE(base64_decode(bad)) << bad;
    }
}

TEST(Base64, UrlAlphabetWithoutPadding) {
    EXPECT_EQ(base64url_encode("\xfb\xff\xbf"), "-_-_");
    EXPECT_EQ(base64url_encode("f"), "Zg");
    EXPECT_EQ(base64url_encode("fo"), "Zm8");
    // RFC 7636 appendix B: the PKCE verifier's SHA-256 challenge uses exactly this encoding.
    const unsigned char digest[] = {19, 211, 30, 150, 26, 26, 216, 236, 47, 22, 177, 12, 76, 152, 46, 8,
                                    118, 168, 120, 173, 109, 241, 68, 86, 110, 225, 137, 74, 203, 112, 249, 195};
    EXPECT_EQ(base64url_encode(std::string(reinterpret_cast<const char*>(digest), sizeof digest)),
              "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

TEST(Sasl, Xoauth2MatchesProviderFormat) {
    std::string r = xoauth2_response("relay@contoso.com", "EwBAA1");
    EXPECT_EQ(r, std::string("user=relay@contoso.com\x01" "auth=Bearer EwBAA1\x01\x01"));
    // Google's documented example: user=someuser@example.com, token ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg
    EXPECT_EQ(base64_encode(xoauth2_response("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")),
              "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==");
}

TEST(Sasl, OauthbearerMatchesRfc7628Example) {
    // RFC 7628 section 4.1.
    EXPECT_EQ(oauthbearer_response("user@example.com", "server.example.com", 143, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="),
              std::string("n,a=user@example.com,\x01" "host=server.example.com\x01" "port=143\x01"
                          "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"));
    EXPECT_EQ(base64_encode(oauthbearer_response("user@example.com", "server.example.com", 143,
                                                 "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==")),
              "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyI"
              "HZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB");
    // RFC 5801 section 4: ',' and '=' in the authzid are escaped.
    EXPECT_EQ(oauthbearer_response("a,b=c", "h", 1, "t").substr(0, 14), "n,a=a=2Cb=3Dc,");
}

TEST(Sasl, PlainHasEmptyAuthzidAndNulSeparators) {
    EXPECT_EQ(plain_response("tim", "tanstaaftanstaaf"), std::string("\0tim\0tanstaaftanstaaf", 21));
    // RFC 4616 section 4 style check through base64.
    EXPECT_EQ(base64_encode(plain_response("tim", "tanstaaftanstaaf")), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
}
