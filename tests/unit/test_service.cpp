// The pure parts of issue 5: the effective-config printer (round trip, secrets masked), the new
// keys, JSON and journald log encodings, the /metrics HTTP responder, Prometheus rendering, and
// sendmail's message preparation (-t, Bcc, -i, dot-stuffing).
#include <gtest/gtest.h>

#include <cstdlib>

#include <boost/json.hpp>

#include "conf/config.hpp"
#include "relay/service/admin_server.hpp"
#include "relay/core/log.hpp"
#include "relay/service/metrics.hpp"
#include "relay/cli/sendmail_message.hpp"
#include "relay/delivery/upstream_queue_id.hpp"

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

TEST(LogJson, FieldsAreEscapedAndNumbersStayNumbers) {
    const std::string line = log::format_json("2026-01-01T00:00:00.000Z", log::Level::warning, "deferred",
                                              {{"queue_id", "AB"}, {"upstream_reply", "451 \"busy\"\r\n"}, {"attempt", 2}});
    const auto v = boost::json::parse(line).as_object();
    EXPECT_EQ(v.at("event").as_string(), "deferred");
    EXPECT_EQ(v.at("level").as_string(), "warning");
    EXPECT_EQ(v.at("upstream_reply").as_string(), "451 \"busy\"\r\n");
    EXPECT_EQ(v.at("attempt").as_int64(), 2);
}

TEST(LogJournal, UpperCaseFieldsPriorityAndBinarySafeValues) {
    const std::string entry = log::format_journal(log::Level::error, "failed",
                                                  {{"queue_id", "AB"}, {"from", "a@b"}, {"upstream_reply", "550 x\nmore"}});
    EXPECT_NE(entry.find("PRIORITY=3\n"), std::string::npos);
    EXPECT_NE(entry.find("QUEUE_ID=AB\n"), std::string::npos);
    EXPECT_NE(entry.find("MAIL_FROM=a@b\n"), std::string::npos);
    EXPECT_NE(entry.find("EVENT=failed\n"), std::string::npos);
    EXPECT_NE(entry.find("SYSLOG_IDENTIFIER=smtp-oauth2-relay\n"), std::string::npos);
    // A value with a newline: name, '\n', 64-bit little-endian length, bytes, '\n'.
    const std::string binary = std::string("UPSTREAM_REPLY\n") + std::string("\x0a\0\0\0\0\0\0\0", 8) + "550 x\nmore\n";
    EXPECT_NE(entry.find(binary), std::string::npos);
}

TEST(MetricsHttp, OnlyGetMetrics) {
    auto body = [] { return std::string("x 1\n"); };
    auto ok = http_response("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", body);
    EXPECT_TRUE(ok.starts_with("HTTP/1.1 200 OK\r\n")) << ok;
    EXPECT_NE(ok.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
    EXPECT_TRUE(ok.ends_with("\r\n\r\nx 1\n"));
    EXPECT_TRUE(http_response("HEAD /metrics HTTP/1.1\r\n\r\n", body).ends_with("\r\n\r\n"));
    EXPECT_TRUE(http_response("GET / HTTP/1.1\r\n\r\n", body).starts_with("HTTP/1.1 404"));
    EXPECT_TRUE(http_response("POST /metrics HTTP/1.1\r\n\r\n", body).starts_with("HTTP/1.1 405"));
    EXPECT_TRUE(http_response("hello\r\n\r\n", body).starts_with("HTTP/1.1 400"));
}

TEST(Metrics, CountsFromLogEventsAndRendersAHistogram) {
    metrics::reset();
    metrics::observe("received", {{"queue_id", "A"}, {"account", "office"}});
    metrics::observe("delivered", {{"account", "office"}, {"upstream_reply", "250 2.0.0 OK"}, {"delay_ms", 300}});
    metrics::observe("deferred", {{"account", "office"}, {"upstream_reply", "451 4.3.0 busy"}});
    metrics::observe("deferred", {{"account", "office"}, {"upstream_reply", "connect: refused"}});
    metrics::observe("token_refreshed", {{"account", "office"}});
    metrics::observe("connect", {{"client", "1.2.3.4"}});   // not counted
    const std::string text = metrics::render({{"q", "help", {{"{state=\"ready\"}", 2}}}});
    EXPECT_NE(text.find("smtp_oauth2_relay_messages_received_total{account=\"office\"} 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("smtp_oauth2_relay_messages_deferred_total{account=\"office\"} 2\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_upstream_replies_total{account=\"office\",class=\"4xx\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_upstream_replies_total{account=\"office\",class=\"none\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_delivery_latency_seconds_bucket{account=\"office\",le=\"0.25\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_delivery_latency_seconds_bucket{account=\"office\",le=\"0.5\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_delivery_latency_seconds_bucket{account=\"office\",le=\"+Inf\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("smtp_oauth2_relay_token_refreshes_total{account=\"office\"} 1\n"), std::string::npos);
    EXPECT_NE(text.find("# TYPE q gauge\nq{state=\"ready\"} 2\n"), std::string::npos);
    metrics::reset();
}

TEST(Sendmail, ArgumentsInSendmailStyle) {
    sendmail::Options o;
    std::string config;
    EXPECT_EQ(sendmail::parse_arguments({"-t", "-oi", "-fme@x", "-F", "Cron Daemon", "-odi", "--config", "c.toml",
                                         "<a@b>", "--", "-odd@x"}, o, config), "");
    EXPECT_TRUE(o.recipients_from_headers);
    EXPECT_TRUE(o.ignore_dots);
    EXPECT_EQ(o.from, "me@x");
    EXPECT_EQ(o.full_name, "Cron Daemon");
    EXPECT_EQ(config, "c.toml");
    EXPECT_EQ(o.recipients, (std::vector<std::string>{"a@b", "-odd@x"}));
    sendmail::Options bad;
    EXPECT_NE(sendmail::parse_arguments({"-bd"}, bad, config), "");   // daemon mode: not a submission
    EXPECT_NE(sendmail::parse_arguments({"-f"}, bad, config), "");
}

TEST(Sendmail, AddressesInHeaderValues) {
    EXPECT_EQ(sendmail::addresses_in(" A <a@x>, \"Doe, J\" <j@x> (boss, really), b@y, undisclosed-recipients:;"),
              (std::vector<std::string>{"a@x", "j@x", "b@y"}));
    EXPECT_EQ(sendmail::addresses_in("team: c@x, d@y;"), (std::vector<std::string>{"c@x", "d@y"}));
}

TEST(Sendmail, DashTTakesHeaderRecipientsAndDropsBcc) {
    sendmail::Options o;
    o.recipients_from_headers = true;
    o.ignore_dots = true;
    o.recipients = {"extra@x"};
    auto p = sendmail::prepare("To: a@x\nCc: b@x,\n\tc@x\nBcc: hidden@x,\n secret@x\nSubject: s\n\nbody\n.\nend\n", o,
                               "me@host", "Mon, 1 Jan 2026 00:00:00 +0000");
    EXPECT_EQ(p.recipients, (std::vector<std::string>{"extra@x", "a@x", "b@x", "c@x", "hidden@x", "secret@x"}));
    EXPECT_EQ(p.message, "From: me@host\r\nDate: Mon, 1 Jan 2026 00:00:00 +0000\r\nTo: a@x\r\nCc: b@x,\r\n\tc@x\r\n"
                         "Subject: s\r\n\r\nbody\r\n.\r\nend\r\n");
    EXPECT_TRUE(sendmail::dot_stuff(p.message).ends_with("\r\n\r\nbody\r\n..\r\nend\r\n.\r\n"));
}

TEST(Sendmail, WithoutDashIALoneDotEndsTheInput) {
    sendmail::Options o;
    o.recipients = {"a@x"};
    auto p = sendmail::prepare("From: x@y\nDate: d\n\nbefore\n.\nafter\n", o, "me@host", "now");
    EXPECT_EQ(p.message, "From: x@y\r\nDate: d\r\n\r\nbefore\r\n");
    EXPECT_EQ(sendmail::dot_stuff(".x\r\n"), "..x\r\n.\r\n");
    EXPECT_EQ(sendmail::dot_stuff("no newline"), "no newline\r\n.\r\n");
}

TEST(UpstreamQueueId, ExchangePostfixAndGmailReplies) {
    EXPECT_EQ(upstream_queue_id("250 2.0.0 OK <4A5B@MN2PR11MB4048.namprd11.prod.outlook.com> [Hostname=MN2PR11MB4048]"),
              "4A5B@MN2PR11MB4048.namprd11.prod.outlook.com");
    EXPECT_EQ(upstream_queue_id("250 2.0.0 Ok: queued as 4Bc2Lk0mXz"), "4Bc2Lk0mXz");
    EXPECT_EQ(upstream_queue_id("250 2.0.0 OK  1700000000 a1-20020a17090a.123 - gsmtp"), "a1-20020a17090a.123");
    EXPECT_EQ(upstream_queue_id("250 OK"), "");
}

}  // namespace
