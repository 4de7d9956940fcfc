// Provider presets and the account auth modes of issue 3: each Microsoft cloud fills its own login
// host, scopes and SMTP host; app-only accounts get the .default scope and need exactly one client
// credential; basic upstream auth needs a password and no OAuth settings; every preset value can be
// overridden; token upkeep settings default to 60 days / 7 days.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "conf/config.hpp"
#include "config_test_support.hpp"

namespace {

namespace fs = std::filesystem;
using namespace relay::conf;
using relay::conf::config_testing::errors_of;
using namespace std::chrono_literals;

Account only_account(const std::string& text) { return parse_config(text, "t.toml").accounts.begin()->second; }

TEST(ConfigPresets, MicrosoftCloudsFillHostsAndScopes) {
    struct Case {
        const char* cloud;
        const char* token_url;
        const char* scope;
        const char* app_scope;
        const char* upstream;
    };
    const Case cases[] = {
        {"global", "https://login.microsoftonline.com/t1/oauth2/v2.0/token",
         "https://outlook.office.com/SMTP.Send offline_access", "https://outlook.office365.com/.default",
         "smtp.office365.com:587"},
        {"usgov", "https://login.microsoftonline.us/t1/oauth2/v2.0/token",
         "https://outlook.office365.us/SMTP.Send offline_access", "https://outlook.office365.us/.default",
         "smtp.office365.us:587"},
        {"china", "https://login.partner.microsoftonline.cn/t1/oauth2/v2.0/token",
         "https://partner.outlook.cn/SMTP.Send offline_access", "https://partner.outlook.cn/.default",
         "smtp.partner.outlook.cn:587"},
    };
    for (const auto& c : cases) {
        const std::string base = std::string("[accounts.a]\ntenant = \"t1\"\nclient_id = \"c\"\nemail = \"a@b.c\"\n") +
                                 "client_secret = \"s\"\ncloud = \"" + c.cloud + "\"\n";
        const Account delegated = only_account(base);
        EXPECT_EQ(delegated.auth, AuthMode::delegated) << c.cloud;
        EXPECT_EQ(delegated.token_url, c.token_url) << c.cloud;
        EXPECT_EQ(delegated.scope, c.scope) << c.cloud;
        EXPECT_EQ(delegated.upstream.to_string(), c.upstream) << c.cloud;
        const Account app = only_account(base + "auth = \"client_credentials\"\n");
        EXPECT_EQ(app.auth, AuthMode::client_credentials) << c.cloud;
        EXPECT_EQ(app.token_url, c.token_url) << c.cloud;
        EXPECT_EQ(app.scope, c.app_scope) << c.cloud;
        EXPECT_EQ(app.upstream.to_string(), c.upstream) << c.cloud;
    }
}

TEST(ConfigPresets, GoogleAndCustomAndOverrides) {
    const Account g = only_account("[accounts.g]\nprovider = \"google\"\nclient_id = \"c\"\nemail = \"a@gmail.com\"\n");
    EXPECT_EQ(g.token_url, "https://oauth2.googleapis.com/token");
    EXPECT_EQ(g.scope, "https://mail.google.com/");
    EXPECT_EQ(g.upstream.to_string(), "smtp.gmail.com:587");

    // Every preset value can be overridden, also in a national cloud.
    const Account o = only_account(R"(
[accounts.o]
tenant = "t"
cloud = "usgov"
client_id = "c"
email = "a@b.c"
token_url = "https://login.example/t/token"
scope = "custom-scope"
upstream = "smtp.example:2525"
)");
    EXPECT_EQ(o.token_url, "https://login.example/t/token");
    EXPECT_EQ(o.scope, "custom-scope");
    EXPECT_EQ(o.upstream.to_string(), "smtp.example:2525");

    const Account custom = only_account(R"(
[accounts.x]
provider = "custom"
auth = "client_credentials"
client_id = "c"
client_secret = "s"
email = "a@b.c"
token_url = "https://idp.example/token"
scope = "mail"
upstream = "mail.example:587"
)");
    EXPECT_EQ(custom.scope, "mail");
    EXPECT_EQ(custom.auth, AuthMode::client_credentials);
}

TEST(ConfigPresets, UpkeepDefaultsAndBasicAuth) {
    const Account d = only_account("[accounts.a]\ntenant = \"t\"\nclient_id = \"c\"\nemail = \"a@b.c\"\n");
    EXPECT_EQ(d.refresh_token_warn_days, 60u);
    EXPECT_EQ(d.keepalive_refresh, 7 * 24h);
    EXPECT_EQ(d.cloud, Cloud::global);
    EXPECT_EQ(d.upstream_user, "a@b.c");

    // Basic auth needs no OAuth settings at all, only the upstream and a password.
    const Account b = only_account(R"(
[accounts.basic]
provider = "custom"
email = "a@b.c"
upstream = "mail.example:587"
upstream_auth = "login"
upstream_user = "legacy"
upstream_password = "pw"
keepalive_refresh = "2s"
refresh_token_warn_days = 1
)");
    EXPECT_EQ(b.upstream_auth, UpstreamAuth::login);
    EXPECT_EQ(b.upstream_user, "legacy");
    EXPECT_EQ(b.upstream_password.reveal(), "pw");
    EXPECT_EQ(b.keepalive_refresh, 2s);
    EXPECT_EQ(b.refresh_token_warn_days, 1u);
    EXPECT_TRUE(b.client_id.empty());
}

TEST(ConfigPresets, CertificateFilesAreRead) {
    const fs::path dir = fs::temp_directory_path() / ("conf-presets-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "app.crt") << "-----BEGIN CERTIFICATE-----\n";
    std::ofstream(dir / "app.key") << "-----BEGIN PRIVATE KEY-----\n";
    const std::string text = "[accounts.app]\ntenant = \"t\"\nclient_id = \"c\"\nemail = \"a@b.c\"\n"
                             "auth = \"client_credentials\"\nclient_certificate_file = \"app.crt\"\n"
                             "client_key_file = \"app.key\"\n";
    std::ofstream(dir / "c.toml") << text;
    const Config c = load_config(dir / "c.toml");
    EXPECT_EQ(c.accounts.at("app").client_certificate_file, dir / "app.crt");
    EXPECT_EQ(c.accounts.at("app").client_key_file, dir / "app.key");
    fs::remove(dir / "app.key");
    EXPECT_NE(errors_of(text).size(), 0u);
    fs::remove_all(dir);
}

struct BadCase {
    const char* name;
    std::string text;
    std::string expected;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class ConfigAuthErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigAuthErrors, ReportsOneClearError) {
    const auto errors = errors_of(GetParam().text);
    ASSERT_EQ(errors.size(), 1u) << GetParam().name << ": " << (errors.empty() ? "" : errors[0]);
    EXPECT_EQ(errors[0], GetParam().expected);
}

const std::string kMs = "[accounts.a]\ntenant = \"t\"\nclient_id = \"c\"\nemail = \"a@b.c\"\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigAuthErrors,
    ::testing::Values(
        BadCase{"app without credential", kMs + "auth = \"client_credentials\"\n",
                "t.toml:5:8: accounts.a: auth = \"client_credentials\" needs client_secret (or client_secret_file) "
                "or client_certificate_file + client_key_file"},
        BadCase{"app with both", kMs + "auth = \"client_credentials\"\nclient_secret = \"s\"\n"
                                       "client_certificate_file = \"/etc/hostname\"\nclient_key_file = \"/etc/hostname\"\n",
                "t.toml:7:27: accounts.a: set client_secret or a client certificate, not both"},
        BadCase{"cert without key", kMs + "auth = \"client_credentials\"\nclient_certificate_file = \"/etc/hostname\"\n",
                "t.toml:6:27: accounts.a: client_certificate_file and client_key_file go together (the certificate "
                "and its private key)"},
        BadCase{"cert for delegated", kMs + "client_certificate_file = \"/etc/hostname\"\nclient_key_file = \"/etc/hostname\"\n",
                "t.toml:5:27: accounts.a: a client certificate is used only with auth = \"client_credentials\""},
        BadCase{"google app", "[accounts.g]\nprovider = \"google\"\nclient_id = \"c\"\nemail = \"a@b.c\"\n"
                              "client_secret = \"s\"\nauth = \"client_credentials\"\n",
                "t.toml:6:8: accounts.g.auth: Google offers no client credentials grant for Gmail; use auth = \"delegated\""},
        BadCase{"cloud for google", "[accounts.g]\nprovider = \"google\"\nclient_id = \"c\"\nemail = \"a@b.c\"\ncloud = \"usgov\"\n",
                "t.toml:5:9: accounts.g.cloud: only provider \"microsoft\" has national clouds"},
        BadCase{"bad cloud", kMs + "cloud = \"mars\"\n",
                "t.toml:5:9: accounts.a.cloud: expected one of global, usgov, china (got \"mars\")"},
        BadCase{"bad auth", kMs + "auth = \"app\"\n",
                "t.toml:5:8: accounts.a.auth: expected one of delegated, client_credentials (got \"app\")"},
        BadCase{"plain without password", kMs + "upstream_auth = \"plain\"\n",
                "t.toml:5:17: accounts.a: upstream_auth = \"plain\" needs upstream_password or upstream_password_file"},
        BadCase{"password for xoauth2", kMs + "upstream_password = \"pw\"\n",
                "t.toml:5:21: accounts.a: upstream_user and upstream_password are used only with upstream_auth "
                "\"plain\" or \"login\""},
        BadCase{"oauth needs client_id", "[accounts.a]\ntenant = \"t\"\nemail = \"a@b.c\"\n",
                "t.toml:1:1: accounts.a: missing required key 'client_id' in [accounts.a]"},
        BadCase{"keepalive bound", kMs + "keepalive_refresh = \"0s\"\n",
                "t.toml:5:21: accounts.a.keepalive_refresh: 0s is out of range 1s..31536000s"}),
    [](const auto& info) {
        std::string n = info.param.name;
        for (char& ch : n)
            if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
        return n;
    });

// The sign-in endpoints `authorize` needs: presets fill them, the loader checks them.
using relay::conf::config_testing::kAccount;

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

}  // namespace
