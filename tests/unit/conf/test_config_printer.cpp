// The effective-config printer (conf/config_printer): every key, secrets masked, and it parses back.
#include <gtest/gtest.h>

#include "conf/config.hpp"

namespace {

using namespace relay;

const std::string kConfig = R"([relay]
listen = ["127.0.0.1:2525", "[::1]:2526"]
default_account = "office"
metrics_listen = "127.0.0.1:9925"
log_format = "json"

[[users]]
name = "scanner"
password = "pass-Secret-1"
account = "office"

[accounts.office]
tenant = "contoso.onmicrosoft.com"
client_id = "cid"
client_secret = "client-Secret-2"
email = "scanner@contoso.com"
)";

TEST(ConfigPrint, EveryKeyWithDefaultsAndSecretsMaskedAndItParsesBack) {
    const conf::Config config = conf::parse_config(kConfig, "t.toml");
    EXPECT_EQ(config.relay.log_format, conf::LogFormat::json);
    EXPECT_EQ(config.relay.metrics_listen.to_string(), "127.0.0.1:9925");
    EXPECT_EQ(config.relay.control_socket, std::filesystem::path("/var/lib/smtp-oauth2-relay/control.sock"));
    const std::string printed = conf::print_config(config);
    EXPECT_EQ(printed.find("pass-Secret-1"), std::string::npos);
    EXPECT_EQ(printed.find("client-Secret-2"), std::string::npos);
    EXPECT_NE(printed.find("client_secret = \"********\""), std::string::npos) << printed;
    EXPECT_NE(printed.find("max_backoff = \"4000s\""), std::string::npos) << printed;
    EXPECT_NE(printed.find("token_url = \"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token\""),
              std::string::npos) << printed;
    // The printout is a valid configuration that loads to the same settings (secrets aside).
    const conf::Config again = conf::parse_config(printed, "printed.toml");
    EXPECT_EQ(again.relay.listen.size(), 2u);
    EXPECT_EQ(again.relay.listen[1].to_string(), "[::1]:2526");
    EXPECT_EQ(again.relay.max_queue_lifetime, config.relay.max_queue_lifetime);
    EXPECT_EQ(again.relay.control_socket, config.relay.control_socket);
    EXPECT_EQ(again.accounts.at("office").scope, config.accounts.at("office").scope);
}

TEST(ConfigPrint, LogFormatAndMetricsErrorsArePositioned) {
    try {
        conf::parse_config("[relay]\nlog_format = \"xml\"\nmetrics_listen = \"nope\"\n" + kConfig.substr(kConfig.find("[accounts")),
                           "t.toml");
        FAIL() << "expected errors";
    } catch (const conf::ConfigError& e) {
        ASSERT_EQ(e.errors().size(), 2u);
        EXPECT_TRUE(e.errors()[0].starts_with("t.toml:2:")) << e.errors()[0];
        EXPECT_TRUE(e.errors()[1].starts_with("t.toml:3:")) << e.errors()[1];
    }
}

TEST(ConfigPrint, CredentialsDirectoryIsExpanded) {
    ::unsetenv("CREDENTIALS_DIRECTORY");
    const std::string text = "[accounts.a]\ntenant = \"t\"\nclient_id = \"c\"\nemail = \"a@b\"\n"
                             "client_secret_file = \"${CREDENTIALS_DIRECTORY}/a.secret\"\n";
    try {
        conf::parse_config(text, "t.toml");
        FAIL() << "expected an error";
    } catch (const conf::ConfigError& e) {
        EXPECT_NE(e.errors()[0].find("CREDENTIALS_DIRECTORY"), std::string::npos) << e.errors()[0];
        EXPECT_NE(e.errors()[0].find("LoadCredential"), std::string::npos) << e.errors()[0];
    }
}

}  // namespace
