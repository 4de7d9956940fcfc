// Configuration loader: good files give the expected structs and defaults, each bad file gives an
// error at the right line:col with a helpful text, all errors of a file come together, presets fill
// and overrides win, and the value grammars (durations, host:port, CIDR) hold at their edges. The
// policy keys (hostile-client limits, delivery policy, senders) are tested in test_config_policy.cpp.
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
using relay::conf::config_testing::kAccount;
using namespace std::chrono_literals;
namespace ip = boost::asio::ip;

std::string joined(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
}

// A scratch directory removed at the end of the test.
struct TempDir {
    fs::path path = fs::temp_directory_path() / ("conf-test-" + std::to_string(::getpid()) + "-" +
                                                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
    TempDir() { fs::create_directories(path); }
    ~TempDir() { fs::remove_all(path); }
    fs::path write(const std::string& name, const std::string& content) const {
        std::ofstream(path / name, std::ios::binary) << content;
        return path / name;
    }
};

TEST(ConfigLoad, MinimalFileGetsEveryDefault) {
    const Config c = parse_config(kAccount, "t.toml");
    EXPECT_EQ(c.source, fs::path("t.toml"));
    ASSERT_EQ(c.relay.listen.size(), 1u);
    EXPECT_EQ(c.relay.listen[0].to_string(), "127.0.0.1:2525");
    ASSERT_EQ(c.relay.allow_networks.size(), 2u);
    EXPECT_EQ(c.relay.allow_networks[0].to_string(), "127.0.0.0/8");
    EXPECT_EQ(c.relay.allow_networks[1].to_string(), "::1/128");
    EXPECT_EQ(c.relay.spool_dir, fs::path("/var/spool/smtp-oauth2-relay"));
    EXPECT_EQ(c.relay.state_dir, fs::path("/var/lib/smtp-oauth2-relay"));
    EXPECT_EQ(c.relay.max_message_size, 36700160u);
    EXPECT_FALSE(c.relay.default_account.has_value());
    EXPECT_FALSE(c.relay.require_auth);
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    EXPECT_EQ(c.relay.hostname, host);
    EXPECT_EQ(c.relay.min_backoff, 300s);
    EXPECT_EQ(c.relay.max_backoff, 4000s);
    EXPECT_EQ(c.relay.max_queue_lifetime, std::chrono::seconds(5 * 86400));
    EXPECT_EQ(c.relay.log_level, LogLevel::info);
    EXPECT_TRUE(c.users.empty());

    const Account* a = c.find_account("office");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->name, "office");
    EXPECT_EQ(a->provider, Provider::microsoft);
    EXPECT_EQ(a->client_id, "cid");
    EXPECT_TRUE(a->client_secret.empty());
    EXPECT_EQ(a->email, "scanner@contoso.com");
    EXPECT_EQ(a->token_url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
    EXPECT_EQ(a->scope, "https://outlook.office.com/SMTP.Send offline_access");
    EXPECT_EQ(a->upstream.to_string(), "smtp.office365.com:587");
    EXPECT_EQ(a->upstream_tls, UpstreamTls::starttls);
    EXPECT_TRUE(a->upstream_ca_file.empty());
    EXPECT_EQ(a->upstream_auth, UpstreamAuth::xoauth2);
    EXPECT_EQ(a->max_connections, 3u);
    EXPECT_EQ(c.find_account("other"), nullptr);
}

TEST(ConfigLoad, EveryKeySetIsRead) {
    const Config c = parse_config(R"(
[relay]
listen = ["0.0.0.0:25", "[::]:25", "localhost:2526"]
allow_networks = ["10.1.2.3/8", "192.0.2.7"]
spool_dir = "/srv/spool"
state_dir = "state"
max_message_size = 1024
default_account = "gmail"
require_auth = true
hostname = "relay.example"
min_backoff = 60
max_backoff = "2h"
max_queue_lifetime = "1d"
log_level = "debug"

[[users]]
name = "scanner"
password = "pw1"
account = "gmail"

[[users]]
name = "printer"
password_hash = "$pbkdf2-sha256$200000$MDEyMzQ1Njc4OWFiY2RlZg==$9IKm/D2oGqCORwjotINSW1RpNjYCYef9ATg/oiwSEj4="
account = "gmail"

[accounts.gmail]
provider = "google"
client_id = "gid"
client_secret = "gsecret"
email = "me@gmail.com"
upstream = "smtp.gmail.com:465"
upstream_tls = "implicit"
upstream_auth = "oauthbearer"
max_connections = 100
)", "/etc/relay/t.toml");
    ASSERT_EQ(c.relay.listen.size(), 3u);
    EXPECT_EQ(c.relay.listen[1].host, "::");
    EXPECT_EQ(c.relay.listen[1].to_string(), "[::]:25");
    EXPECT_EQ(c.relay.listen[2].to_string(), "localhost:2526");
    EXPECT_EQ(c.relay.allow_networks[0].to_string(), "10.0.0.0/8");  // host bits cleared
    EXPECT_EQ(c.relay.allow_networks[1].to_string(), "192.0.2.7/32");
    EXPECT_EQ(c.relay.spool_dir, fs::path("/srv/spool"));
    EXPECT_EQ(c.relay.state_dir, fs::path("/etc/relay/state"));  // relative to the file
    EXPECT_EQ(c.relay.max_message_size, 1024u);
    EXPECT_EQ(c.relay.default_account, "gmail");
    EXPECT_TRUE(c.relay.require_auth);
    EXPECT_EQ(c.relay.hostname, "relay.example");
    EXPECT_EQ(c.relay.min_backoff, 60s);
    EXPECT_EQ(c.relay.max_backoff, 7200s);
    EXPECT_EQ(c.relay.max_queue_lifetime, 86400s);
    EXPECT_EQ(c.relay.log_level, LogLevel::debug);
    ASSERT_EQ(c.users.size(), 2u);
    EXPECT_EQ(c.users[0].password.reveal(), "pw1");
    EXPECT_TRUE(c.users[0].password_hash.empty());
    EXPECT_TRUE(c.users[1].password.empty());
    EXPECT_TRUE(c.users[1].password_hash.starts_with("$pbkdf2-sha256$200000$"));
    EXPECT_EQ(c.find_user("printer"), &c.users[1]);
    EXPECT_EQ(c.find_user("nobody"), nullptr);
    const Account& g = c.accounts.at("gmail");
    EXPECT_EQ(g.provider, Provider::google);
    EXPECT_EQ(g.client_secret.reveal(), "gsecret");
    EXPECT_EQ(g.client_secret.masked(), "********");
    EXPECT_EQ(g.token_url, "https://oauth2.googleapis.com/token");
    EXPECT_EQ(g.scope, "https://mail.google.com/");
    EXPECT_EQ(g.upstream.to_string(), "smtp.gmail.com:465");  // override wins over the preset
    EXPECT_EQ(g.upstream_tls, UpstreamTls::implicit);
    EXPECT_EQ(g.upstream_auth, UpstreamAuth::oauthbearer);
    EXPECT_EQ(g.max_connections, 100u);
}

TEST(ConfigLoad, PresetsFillAndOverridesWin) {
    const Config c = parse_config(R"(
[accounts.ms]
tenant = "organizations"
client_id = "a"
email = "a@b.c"
scope = "https://outlook.office365.com/.default"

[accounts.gov]
client_id = "a"
email = "a@b.c"
token_url = "https://login.microsoftonline.us/t/oauth2/v2.0/token"
upstream = "smtp.office365.us:587"

[accounts.test]
provider = "custom"
client_id = "a"
email = "a@b.c"
token_url = "http://127.0.0.1:8080/token"
scope = "x"
upstream = "[::1]:2500"
upstream_tls = "none"
upstream_auth = "none"
)", "t.toml");
    const Account& ms = c.accounts.at("ms");
    EXPECT_EQ(ms.token_url, "https://login.microsoftonline.com/organizations/oauth2/v2.0/token");
    EXPECT_EQ(ms.scope, "https://outlook.office365.com/.default");
    EXPECT_EQ(ms.upstream.to_string(), "smtp.office365.com:587");
    const Account& gov = c.accounts.at("gov");  // no tenant needed once token_url is given
    EXPECT_EQ(gov.token_url, "https://login.microsoftonline.us/t/oauth2/v2.0/token");
    EXPECT_EQ(gov.scope, "https://outlook.office.com/SMTP.Send offline_access");
    EXPECT_EQ(gov.upstream.to_string(), "smtp.office365.us:587");
    const Account& test = c.accounts.at("test");
    EXPECT_EQ(test.provider, Provider::custom);
    EXPECT_EQ(test.token_url, "http://127.0.0.1:8080/token");
    EXPECT_EQ(test.upstream.to_string(), "[::1]:2500");
    EXPECT_EQ(test.upstream_tls, UpstreamTls::none);
    EXPECT_EQ(test.upstream_auth, UpstreamAuth::none);
}

TEST(ConfigLoad, ExampleFileParsesOnceItsPlaceholderClientIdIsReplaced) {
    const fs::path example = fs::path(RELAY_SOURCE_DIR) / "conf/config.example.toml";
    // As shipped it is refused, with one error naming the placeholder (issue 12: no silent zero id).
    try {
        load_config(example);
        ADD_FAILURE() << "the shipped placeholder client_id was accepted";
    } catch (const ConfigError& e) {
        ASSERT_EQ(e.errors().size(), 1u) << joined(e.errors());
        EXPECT_NE(e.errors()[0].find("client_id: 00000000-0000-0000-0000-000000000000 is the example's placeholder"),
                  std::string::npos) << e.errors()[0];
    }
    std::ifstream in(example);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find("00000000-0000-0000-0000-000000000000"), 36, "3f1c2a5e-8d4b-4c1e-9a7f-2b6d0e9c4a11");
    const Config c = parse_config(text, example);
    EXPECT_EQ(c.relay.default_account, "office");
    EXPECT_TRUE(c.users.empty());   // no working login as shipped
    EXPECT_EQ(c.accounts.at("office").upstream.to_string(), "smtp.office365.com:587");
    EXPECT_EQ(c.relay.spool_dir, fs::path("/var/spool/smtp-oauth2-relay"));
}

struct BadCase {
    const char* what;
    std::string text;
    std::string expected;  // the complete error line
};

class ConfigBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigBad, ReportsPositionAndText) {
    const auto errors = errors_of(GetParam().text);
    ASSERT_EQ(errors.size(), 1u) << joined(errors);
    EXPECT_EQ(errors[0], GetParam().expected);
}

// Each text puts its mistake on a known line; kAccount (lines 2-5 when first) keeps the file otherwise valid.
INSTANTIATE_TEST_SUITE_P(Table, ConfigBad, ::testing::Values(
    BadCase{"unknown key", "[relay]\nlistn = []\n" + kAccount,
            "t.toml:2:1: unknown key 'listn' in [relay]; did you mean 'listen'?"},
    BadCase{"unknown key far from any", "[relay]\nbanana = 1\n" + kAccount, "t.toml:2:1: unknown key 'banana' in [relay]"},
    BadCase{"unknown top level", "relai = 1\n" + kAccount,
            "t.toml:1:1: unknown key 'relai' at the top level (expected [relay], [[users]], [accounts.NAME] or [aliases]); "
            "did you mean 'relay'?"},
    BadCase{"wrong type", "[relay]\nmax_message_size = \"big\"\n" + kAccount,
            "t.toml:2:20: relay.max_message_size: expected an integer"},
    BadCase{"below bound", "[relay]\nmax_message_size = 1023\n" + kAccount,
            "t.toml:2:20: relay.max_message_size: 1023 is out of range 1024..2147483648"},
    BadCase{"bool", "[relay]\nrequire_auth = \"yes\"\n" + kAccount, "t.toml:2:16: relay.require_auth: expected true or false"},
    BadCase{"enum", "[relay]\nlog_level = \"verbose\"\n" + kAccount,
            "t.toml:2:13: relay.log_level: expected one of debug, info, warning, error (got \"verbose\")"},
    BadCase{"duration", "[relay]\nmin_backoff = \"5 minutes\"\n" + kAccount,
            "t.toml:2:15: relay.min_backoff: expected a duration: seconds as an integer, or a string like \"300s\", "
            "\"5m\", \"1h\", \"2d\""},
    BadCase{"duration bound", "[relay]\nmin_backoff = 0\n" + kAccount,
            "t.toml:2:15: relay.min_backoff: 0s is out of range 1s..86400s"},
    BadCase{"backoff order", "[relay]\nmin_backoff = \"2h\"\nmax_backoff = \"1h\"\n" + kAccount,
            "t.toml:3:15: relay.max_backoff (3600s) must not be less than relay.min_backoff (7200s)"},
    BadCase{"listen no port", "[relay]\nlisten = [\"127.0.0.1\"]\n" + kAccount,
            "t.toml:2:11: relay.listen: \"127.0.0.1\" is not host:port; expected \"host:port\" with port 1-65535 "
            "(IPv6 as \"[::1]:port\")"},
    BadCase{"listen port 0", "[relay]\nlisten = [\"127.0.0.1:25\", \"127.0.0.1:0\"]\n" + kAccount,
            "t.toml:2:27: relay.listen: \"127.0.0.1:0\" is not host:port; expected \"host:port\" with port 1-65535 "
            "(IPv6 as \"[::1]:port\")"},
    BadCase{"listen bare v6", "[relay]\nlisten = [\"::1:25\"]\n" + kAccount,
            "t.toml:2:11: relay.listen: \"::1:25\" is not host:port; expected \"host:port\" with port 1-65535 "
            "(IPv6 as \"[::1]:port\")"},
    BadCase{"listen twice", "[relay]\nlisten = [\"[::1]:25\", \"[0:0::1]:25\"]\n" + kAccount,
            "t.toml:2:23: relay.listen: [::1]:25 is listed twice"},
    BadCase{"listen empty", "[relay]\nlisten = []\n" + kAccount, "t.toml:2:10: relay.listen: needs at least one address"},
    BadCase{"cidr prefix", "[relay]\nallow_networks = [\"10.0.0.0/33\"]\n" + kAccount,
            "t.toml:2:19: relay.allow_networks: \"10.0.0.0/33\" is not valid; expected an address or CIDR block such "
            "as \"192.0.2.0/24\" or \"2001:db8::/32\""},
    BadCase{"default account", "[relay]\ndefault_account = \"ofice\"\n" + kAccount,
            "t.toml:2:19: relay.default_account: no account \"ofice\" in [accounts]; did you mean 'office'?"},
    BadCase{"hostname", "[relay]\nhostname = \"bad host\"\n" + kAccount,
            "t.toml:2:12: relay.hostname: \"bad host\" is not a host name"},
    BadCase{"require_auth without users", "[relay]\nrequire_auth = true\n" + kAccount,
            "t.toml:2:16: relay.require_auth: true, but no [[users]] are defined to log in"},
    BadCase{"no accounts", "[relay]\n", "t.toml:1:1: no account configured: add an [accounts.NAME] table (at least one is needed)"},
    BadCase{"missing required", "[accounts.office]\ntenant = \"t\"\nemail = \"a@b.c\"\n",
            "t.toml:1:1: accounts.office: missing required key 'client_id' in [accounts.office]"},
    BadCase{"missing tenant", "[accounts.office]\nclient_id = \"c\"\nemail = \"a@b.c\"\n",
            "t.toml:1:1: accounts.office: missing required key 'tenant' in [accounts.office] (the Microsoft token URL "
            "needs it, e.g. \"contoso.onmicrosoft.com\"; or set token_url)"},
    BadCase{"custom without scope", "[accounts.x]\nprovider = \"custom\"\nclient_id = \"c\"\nemail = \"a@b.c\"\n"
                                    "token_url = \"https://t/\"\nupstream = \"h:25\"\n",
            "t.toml:1:1: accounts.x: missing required key 'scope' in [accounts.x] (provider \"custom\" has no preset)"},
    BadCase{"account name", "[accounts.\"../x\"]\ntenant = \"t\"\nclient_id = \"c\"\nemail = \"a@b.c\"\n",
            "t.toml:1:11: \"../x\": account names may use only letters, digits, '-', '_' and '.'"},
    BadCase{"account not a table", "accounts.office = 5\n",
            "t.toml:1:19: accounts.office: expected a table [accounts.office]"},
    BadCase{"plain text to a remote upstream", kAccount + "upstream_tls = \"none\"\n",
            "t.toml:6:16: accounts.office.upstream_tls: \"none\" would send the access token and mail unencrypted; it "
            "is allowed only for a loopback upstream (127.0.0.0/8, ::1, localhost), not smtp.office365.com"},
    BadCase{"http token url", kAccount + "token_url = \"http://login.example/token\"\n",
            "t.toml:6:13: accounts.office.token_url: must be an https:// URL (http:// only for a loopback host)"},
    BadCase{"tls enum", kAccount + "upstream_tls = \"ssl\"\n",
            "t.toml:6:16: accounts.office.upstream_tls: expected one of starttls, implicit, none (got \"ssl\")"},
    BadCase{"connections bound", kAccount + "max_connections = 101\n",
            "t.toml:6:19: accounts.office.max_connections: 101 is out of range 1..100"},
    BadCase{"email", kAccount + "upstream = \"smtp.office365.com:587\"\n[accounts.two]\ntenant = \"t\"\nclient_id = \"c\"\nemail = \"me\"\n",
            "t.toml:10:9: accounts.two.email: expected a mailbox address such as user@example.com"},
    BadCase{"wrong type reported once", "[accounts.x]\ntenant = \"t\"\nclient_id = \"c\"\nemail = 5\n",
            "t.toml:4:9: accounts.x.email: expected a string"},
    BadCase{"tenant", "[accounts.x]\ntenant = \"a/b\"\nclient_id = \"c\"\nemail = \"a@b.c\"\n",
            "t.toml:2:10: accounts.x.tenant: \"a/b\" is not a tenant name or id"},
    BadCase{"secret and secret file", kAccount + "client_secret = \"x\"\nclient_secret_file = \"" RELAY_SOURCE_DIR "/README.md\"\n",
            "t.toml:7:22: accounts.office: set client_secret or client_secret_file, not both"},
    BadCase{"unreadable secret file", kAccount + "client_secret_file = \"/nonexistent/secret\"\n",
            "t.toml:6:22: accounts.office.client_secret_file: cannot read /nonexistent/secret: No such file or directory"},
    BadCase{"unreadable ca file", kAccount + "upstream_ca_file = \"/nonexistent/ca.pem\"\n",
            "t.toml:6:20: accounts.office.upstream_ca_file: cannot read /nonexistent/ca.pem: No such file or directory"},
    BadCase{"user unknown account", kAccount + "[[users]]\nname = \"u\"\npassword = \"p\"\naccount = \"offce\"\n",
            "t.toml:9:11: users[0].account: no account \"offce\" in [accounts]; did you mean 'office'?"},
    BadCase{"user without password", kAccount + "[[users]]\nname = \"u\"\naccount = \"office\"\n",
            "t.toml:6:1: users[0]: missing required key 'password' (or 'password_hash') in [[users]]"},
    BadCase{"user with both", kAccount + "[[users]]\nname = \"u\"\npassword = \"p\"\npassword_hash = \"h\"\naccount = \"office\"\n",
            "t.toml:9:17: users[0]: set password or password_hash, not both"},
    BadCase{"user missing name", kAccount + "[[users]]\npassword = \"p\"\naccount = \"office\"\n",
            "t.toml:6:1: users[0]: missing required key 'name' in [[users]]"},
    BadCase{"duplicate user", kAccount + "[[users]]\nname = \"u\"\npassword = \"p\"\naccount = \"office\"\n"
                                         "[[users]]\nname = \"u\"\npassword = \"q\"\naccount = \"office\"\n",
            "t.toml:11:8: users[1].name: duplicate user \"u\" (first defined on line 7)"},
    BadCase{"empty string", kAccount + "scope = \"\"\n", "t.toml:6:9: accounts.office.scope: must not be empty"}),
    [](const auto& info) {
        std::string name = info.param.what;
        for (char& c : name) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
        return name;
    });

TEST(ConfigErrors, AllErrorsOfAFileComeTogetherInLineOrder) {
    const std::string text = "[relay]\nlistn = 1\nmax_message_size = 1\n" + kAccount +
                             "upstream_tls = \"sometimes\"\n[[users]]\nname = \"u\"\npassword = \"p\"\naccount = \"x\"\n";
    try {
        parse_config(text, "dir/t.toml");
        FAIL() << "accepted";
    } catch (const ConfigError& e) {
        ASSERT_EQ(e.errors().size(), 4u) << e.what();
        EXPECT_TRUE(e.errors()[0].starts_with("dir/t.toml:2:1: unknown key 'listn'"));
        EXPECT_TRUE(e.errors()[1].starts_with("dir/t.toml:3:20: relay.max_message_size: 1 is out of range"));
        EXPECT_TRUE(e.errors()[2].starts_with("dir/t.toml:9:16: accounts.office.upstream_tls: expected one of"));
        EXPECT_TRUE(e.errors()[3].starts_with("dir/t.toml:13:11: users[0].account: no account \"x\""));
        EXPECT_EQ(std::string(e.what()), e.errors()[0] + "\n" + e.errors()[1] + "\n" + e.errors()[2] + "\n" + e.errors()[3]);
    }
}

TEST(ConfigErrors, SecretsNeverAppearInErrors) {
    const std::string text = kAccount + "client_secret = \"TOPSECRET-1\"\nclient_secret_file = \"/nonexistent\"\n"
                             "upstream_tls = \"none\"\n[[users]]\nname = \"u\"\npassword = \"TOPSECRET-2\"\n"
                             "password_hash = \"TOPSECRET-3\"\naccount = \"nope\"\n[[users]]\nname = \"u\"\n"
                             "password = 7\naccount = \"office\"\n";
    const auto errors = errors_of(text);
    EXPECT_GE(errors.size(), 6u) << joined(errors);
    EXPECT_EQ(joined(errors).find("TOPSECRET"), std::string::npos) << joined(errors);
}

TEST(ConfigErrors, SyntaxErrorNamesLineAndColumnAndStops) {
    const auto errors = errors_of("[relay]\nlistn = 1\nmax_message_size = = 3\n");
    ASSERT_EQ(errors.size(), 1u) << joined(errors);
    EXPECT_TRUE(errors[0].starts_with("t.toml:3:20: ")) << errors[0];
}

TEST(ConfigFiles, SecretFileIsReadRelativeToTheConfigAndTrimmed) {
    TempDir dir;
    dir.write("office.secret", "s3cr3t value\r\n\n");
    const fs::path file = dir.write("config.toml", kAccount + "client_secret_file = \"office.secret\"\n"
                                                   "upstream_ca_file = \"office.secret\"\n");
    const Config c = load_config(file);
    EXPECT_EQ(c.accounts.at("office").client_secret.reveal(), "s3cr3t value");
    EXPECT_EQ(c.accounts.at("office").upstream_ca_file, dir.path / "office.secret");
}

TEST(ConfigFiles, EmptySecretFileAndDirectoryAreRefused) {
    TempDir dir;
    dir.write("empty", "\n");
    const auto errors = errors_of(kAccount + "client_secret_file = \"" + (dir.path / "empty").string() + "\"\n" +
                                  "upstream_ca_file = \"" + dir.path.string() + "\"\n");
    ASSERT_EQ(errors.size(), 2u) << joined(errors);
    EXPECT_EQ(errors[0], "t.toml:6:22: accounts.office.client_secret_file: " + (dir.path / "empty").string() + " is empty");
    EXPECT_EQ(errors[1], "t.toml:7:20: accounts.office.upstream_ca_file: cannot read " + dir.path.string() +
                             ": Is a directory");
}

TEST(ConfigFiles, MissingConfigFileIsAConfigError) {
    try {
        load_config("/nonexistent/config.toml");
        FAIL() << "accepted";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), "/nonexistent/config.toml: cannot read: No such file or directory");
    }
}

TEST(ConfigRules, PlainTextUpstreamOnlyOnLoopback) {
    for (const char* host : {"127.0.0.1:25", "127.8.9.10:25", "[::1]:25", "localhost:25", "LOCALHOST:25"}) {
        const auto errors = errors_of(kAccount + "upstream = \"" + host + "\"\nupstream_tls = \"none\"\n");
        EXPECT_TRUE(errors.empty()) << host << "\n" << joined(errors);
    }
    for (const char* host : {"128.0.0.1:25", "[::2]:25", "localhost.example:25", "10.0.0.1:25"}) {
        const auto errors = errors_of(kAccount + "upstream = \"" + host + "\"\nupstream_tls = \"none\"\n");
        ASSERT_EQ(errors.size(), 1u) << host;
        EXPECT_NE(errors[0].find("allowed only for a loopback upstream"), std::string::npos) << errors[0];
    }
}

}  // namespace
