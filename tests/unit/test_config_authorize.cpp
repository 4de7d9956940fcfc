// Configuration for `authorize` and hashed local passwords: the sign-in endpoints come from the
// provider preset (Google has no device endpoint), overrides win, redirect_uri must be a loopback
// http:// URL, and a malformed password_hash is a config error at its line:col.
#include <gtest/gtest.h>

#include "conf/config.hpp"
#include "config_test_support.hpp"

using namespace relay::conf;
using relay::conf::config_testing::errors_of;
using relay::conf::config_testing::kAccount;

namespace {

}  // namespace

TEST(ConfigAuthorize, PresetsFillSignInEndpoints) {
    const Config c = parse_config(kAccount + R"(
[accounts.gmail]
provider = "google"
client_id = "g"
email = "me@gmail.com"

[accounts.own]
tenant = "t1"
client_id = "a"
email = "a@b.c"
redirect_uri = "http://127.0.0.1:8400/"
authorize_url = "http://127.0.0.1:9000/t1/oauth2/v2.0/authorize"
devicecode_url = "http://127.0.0.1:9000/t1/oauth2/v2.0/devicecode"
)", "t.toml");
    const Account& ms = c.accounts.at("office");
    EXPECT_EQ(ms.redirect_uri, "http://localhost");
    EXPECT_EQ(ms.authorize_url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize");
    EXPECT_EQ(ms.devicecode_url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode");
    const Account& g = c.accounts.at("gmail");
    EXPECT_EQ(g.authorize_url, "https://accounts.google.com/o/oauth2/auth");
    EXPECT_EQ(g.devicecode_url, "");
    const Account& own = c.accounts.at("own");
    EXPECT_EQ(own.redirect_uri, "http://127.0.0.1:8400/");
    EXPECT_EQ(own.authorize_url, "http://127.0.0.1:9000/t1/oauth2/v2.0/authorize");
    EXPECT_EQ(own.devicecode_url, "http://127.0.0.1:9000/t1/oauth2/v2.0/devicecode");
}

TEST(ConfigAuthorize, BadValuesAreReportedAtTheirPosition) {
    auto e = errors_of(kAccount + "redirect_uri = \"http://192.0.2.1/\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_TRUE(e[0].starts_with("t.toml:6:16: accounts.office.redirect_uri: \"http://192.0.2.1/\" must be an http:// URL on a loopback host")) << e[0];
    e = errors_of(kAccount + "authorize_url = \"http://login.example.com/a\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0], "t.toml:6:17: accounts.office.authorize_url: must be an https:// URL (http:// only for a loopback host)");
    e = errors_of(kAccount + "[[users]]\nname = \"u\"\npassword_hash = \"$6$x$y\"\naccount = \"office\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0], "t.toml:8:17: users[0].password_hash: expected \"$pbkdf2-sha256$<iterations>$<salt>$<hash>\" as "
                    "printed by `smtp-oauth2-relay hash-password`");
    e = errors_of(kAccount + "[[users]]\nname = \"u\"\npassword_hash = \"$pbkdf2-sha256$1000$MDEyMzQ1Njc4OWFiY2RlZg==$"
                             "9IKm/D2oGqCORwjotINSW1RpNjYCYef9ATg/oiwSEj4=\"\naccount = \"office\"\n");
    ASSERT_EQ(e.size(), 1u);
    EXPECT_NE(e[0].find("users[0].password_hash: the iteration count must be between 200000"), std::string::npos) << e[0];
}
