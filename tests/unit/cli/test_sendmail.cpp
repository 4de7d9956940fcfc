// sendmail as Debian's programs call it (issue 12) and the header attacks of issue 13 item 5:
// Postfix's options accepted, Bcc:/Resent-Bcc: removed in every mode, no control characters through
// -f/-F, and local names resolved through [aliases], /etc/aliases and the default domain.
#include <gtest/gtest.h>

#include "conf/aliases.hpp"
#include "conf/config.hpp"
#include "relay/cli/maildrop.hpp"
#include "relay/cli/sendmail_message.hpp"
#include "../conf/config_test_support.hpp"

namespace {

using namespace relay;

sendmail::Options parsed(std::vector<std::string> args, std::string* problem = nullptr) {
    sendmail::Options o;
    std::string config;
    std::string p = sendmail::parse_arguments(args, o, config);
    if (problem) *problem = p;
    else EXPECT_EQ(p, "") << "for the arguments given";
    return o;
}

TEST(SendmailOptions, DebianCronBsdMailxAndPhpInvocations) {
    // cron (debian/patches: -FCronDaemon -i -B8BITMIME -oem), bsd-mailx (-oi -oem -t? -f), PHP (-t -i).
    auto cron = parsed({"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"});
    EXPECT_EQ(cron.full_name, "CronDaemon");
    EXPECT_TRUE(cron.ignore_dots);
    EXPECT_EQ(cron.recipients, (std::vector<std::string>{"root"}));
    auto mailx = parsed({"-oi", "-oem", "-N", "never", "-R", "hdrs", "-V", "envid-1", "-X", "/tmp/log", "-L", "cron",
                         "-h", "10", "-G", "-U", "-v", "-odb", "-oA/etc/aliases", "-C/etc/postfix", "--", "www-data"});
    EXPECT_EQ(mailx.recipients, (std::vector<std::string>{"www-data"}));
    EXPECT_EQ(mailx.mode, sendmail::Mode::submit);
    auto php = parsed({"-t", "-i", "-fapp@contoso.com"});
    EXPECT_TRUE(php.recipients_from_headers);
    EXPECT_EQ(php.from, "app@contoso.com");
    EXPECT_EQ(parsed({"-bs"}).mode, sendmail::Mode::smtp_on_stdin);
    EXPECT_EQ(parsed({"-bp"}).mode, sendmail::Mode::list_queue);
    EXPECT_EQ(parsed({"-bi"}).mode, sendmail::Mode::rebuild_aliases);
    EXPECT_EQ(parsed({"-I"}).mode, sendmail::Mode::rebuild_aliases);
    std::string problem;
    parsed({"-bd"}, &problem);
    EXPECT_NE(problem, "");
    parsed({"-z"}, &problem);
    EXPECT_NE(problem, "");
    parsed({"-B"}, &problem);
    EXPECT_NE(problem, "") << "-B without its value";
}

TEST(SendmailOptions, GroupedFlagsAreSplitAsGetoptDoes) {
    // Postfix parses with getopt(3): "-it" is -i -t. Taken as one flag it was -i alone (exit 64).
    for (auto args : {std::vector<std::string>{"-it"}, {"-ti"}, {"-oi", "-t"}}) {
        auto o = parsed(args);
        EXPECT_TRUE(o.recipients_from_headers) << args.front();
        EXPECT_TRUE(o.ignore_dots) << args.front();
    }
    auto with_value = parsed({"-tfcron@contoso.com", "--", "-it@x"});
    EXPECT_TRUE(with_value.recipients_from_headers);
    EXPECT_EQ(with_value.from, "cron@contoso.com");
    EXPECT_FALSE(with_value.ignore_dots) << "after --, '-it@x' is a recipient";
    EXPECT_EQ(with_value.recipients, (std::vector<std::string>{"-it@x"}));
    EXPECT_EQ(parsed({"-bv", "root"}).mode, sendmail::Mode::verify);
    EXPECT_EQ(parsed({"-oem"}).ignore_dots, false) << "-o takes its value, not grouped flags";
}

TEST(SendmailOptions, ControlCharactersInFAndFNameAreRefused) {
    std::string problem;
    parsed({"-F", "Cron\r\nBcc: victim@example.com", "a@x"}, &problem);
    EXPECT_NE(problem.find("-F"), std::string::npos);
    parsed({"-FCron\nX-Injected: 1", "a@x"}, &problem);
    EXPECT_NE(problem, "");
    parsed({"-F", "tab\there", "a@x"}, &problem);
    EXPECT_NE(problem, "");
    parsed({"-f", "me@x>\r\nRCPT TO:<victim@example.com", "a@x"}, &problem);
    EXPECT_NE(problem.find("-f"), std::string::npos);
    parsed({"-f", "me@x> SIZE=1", "a@x"}, &problem);
    EXPECT_NE(problem, "");
    parsed({"a@x\r\nDATA"}, &problem);
    EXPECT_NE(problem, "");
}

TEST(SendmailMessage, FullNameIsQuotedOrEncodedNeverInjected) {
    sendmail::Options o = parsed({"-F", "Cron \"the\" Daemon", "a@x"});
    auto p = sendmail::prepare("Subject: s\n\nbody\n", o, "me@x", "now");
    EXPECT_TRUE(p.message.starts_with("From: \"Cron \\\"the\\\" Daemon\" <me@x>\r\nDate: now\r\nSubject: s\r\n"))
        << p.message;
    EXPECT_EQ(sendmail::display_name("Jürgen"), "=?UTF-8?B?SsO8cmdlbg==?=");
}

TEST(SendmailMessage, BccAndResentBccAreRemovedInEveryMode) {
    const std::string input =
        "From: a@x\nTo: b@x\nBcc: hidden@x,\n\tsecret@x\nResent-From: r@x\nResent-To: c@x\nResent-Bcc: rb@x\n"
        "Subject: s\n\nBcc: in the body stays\n";
    sendmail::Options plain = parsed({"b@x"});
    auto without_t = sendmail::prepare(input, plain, "me@x", "now");
    EXPECT_EQ(without_t.message.find("hidden@x"), std::string::npos) << without_t.message;
    EXPECT_EQ(without_t.message.find("secret@x"), std::string::npos);
    EXPECT_EQ(without_t.message.find("Resent-Bcc"), std::string::npos);
    EXPECT_NE(without_t.message.find("\r\n\r\nBcc: in the body stays\r\n"), std::string::npos);
    EXPECT_EQ(without_t.recipients, (std::vector<std::string>{"b@x"}));

    // -t on a resent message: the Resent- recipients, and neither Bcc header is left.
    sendmail::Options t = parsed({"-t"});
    auto with_t = sendmail::prepare(input, t, "me@x", "now");
    EXPECT_EQ(with_t.recipients, (std::vector<std::string>{"c@x", "rb@x"}));
    EXPECT_EQ(with_t.message.find("rb@x"), std::string::npos) << with_t.message;
    EXPECT_EQ(with_t.message.find("hidden@x"), std::string::npos);
    EXPECT_NE(with_t.message.find("Resent-To: c@x\r\n"), std::string::npos);
}

TEST(SendmailMessage, DashTKeepsBareLocalNamesForAliasResolution) {
    EXPECT_EQ(sendmail::addresses_in("root, Web <www-data>, \"Ops\" <ops@x>, undisclosed-recipients:;"),
              (std::vector<std::string>{"root", "www-data", "ops@x"}));
}

TEST(SendmailMessage, AFromWithOnlyALocalNameBecomesTheSendersAddress) {
    // logwatch ("From: Logwatch") and unattended-upgrades ("From: root"): Exchange refuses such a From.
    sendmail::Options t;
    t.recipients_from_headers = true;
    auto logwatch = sendmail::prepare("To: root\nFrom: Logwatch\nSubject: Logwatch\n\nbody\n", t, "it@contoso.com", "D");
    EXPECT_NE(logwatch.message.find("From: \"Logwatch\" <it@contoso.com>\r\n"), std::string::npos) << logwatch.message;
    EXPECT_EQ(logwatch.message.find("From: Logwatch\r\n"), std::string::npos);
    // An address is the program's choice and stays as written.
    auto php = sendmail::prepare("To: a@x\nFrom: Shop <shop@contoso.com>\n\nbody\n", t, "it@contoso.com", "D");
    EXPECT_NE(php.message.find("From: Shop <shop@contoso.com>\r\n"), std::string::npos) << php.message;
    EXPECT_EQ(php.message.find("it@contoso.com"), std::string::npos);
}

TEST(Aliases, ConfigThenSystemFileThenDefaultDomain) {
    std::vector<std::string> skipped;
    conf::AliasTable system = conf::parse_alias_file(
        "# /etc/aliases\npostmaster: root\nroot: admin@contoso.com,\n  backup@contoso.com\n"
        "logs: |/usr/bin/logger, \"ops@contoso.com\"\nloop1: loop2\nloop2: loop1\n", &skipped);
    EXPECT_EQ(skipped, (std::vector<std::string>{"logs: |/usr/bin/logger"}));
    conf::AliasTable config{{"root", {"it@contoso.com"}}, {"www-data", {"web@contoso.com", "root"}}};
    conf::AliasResolver r{.config_aliases = &config, .system_aliases = &system, .default_domain = "contoso.com",
                          .local_domains = {"localhost", "relay.test"}};
    EXPECT_EQ(r.resolve("root"), (std::vector<std::string>{"it@contoso.com"}));   // [aliases] wins
    EXPECT_EQ(r.resolve("ROOT@localhost"), (std::vector<std::string>{"it@contoso.com"}));
    EXPECT_EQ(r.resolve("www-data"), (std::vector<std::string>{"web@contoso.com", "it@contoso.com"}));
    EXPECT_EQ(r.resolve("postmaster@relay.test"), (std::vector<std::string>{"it@contoso.com"}));
    EXPECT_EQ(r.resolve("logs"), (std::vector<std::string>{"ops@contoso.com"}));
    EXPECT_EQ(r.resolve("nobody"), (std::vector<std::string>{"nobody@contoso.com"}));
    EXPECT_EQ(r.resolve("boss@example.com"), (std::vector<std::string>{"boss@example.com"}));
    EXPECT_EQ(r.resolve("loop1"), (std::vector<std::string>{"loop1@contoso.com"}));
    conf::AliasResolver no_config;
    no_config.system_aliases = &system;
    no_config.default_domain = "contoso.com";
    EXPECT_EQ(no_config.resolve("root"), (std::vector<std::string>{"admin@contoso.com", "backup@contoso.com"}));
}

TEST(Aliases, ConfigTableAcceptsAStringOrAListAndRefusesJunk) {
    using conf::config_testing::errors_of;
    auto config = conf::parse_config("[aliases]\nroot = \"it@contoso.com\"\nWWW-Data = [\"web@contoso.com\", \"root\"]\n" +
                                         conf::config_testing::kAccount, "t.toml");
    EXPECT_EQ(config.aliases.at("root"), (std::vector<std::string>{"it@contoso.com"}));
    EXPECT_EQ(config.aliases.at("www-data"), (std::vector<std::string>{"web@contoso.com", "root"}));
    EXPECT_EQ(config.relay.alias_file, "/etc/aliases");
    auto printed = conf::print_config(config);
    EXPECT_NE(printed.find("[aliases]\n\"root\" = [\"it@contoso.com\"]\n"), std::string::npos) << printed;
    auto reprinted = conf::print_config(conf::parse_config(printed, "t.toml"));
    EXPECT_EQ(reprinted.substr(reprinted.find('\n')), printed.substr(printed.find('\n')));
    EXPECT_EQ(errors_of("[aliases]\nroot = \"a b@x\"\n" + conf::config_testing::kAccount).size(), 1u);
    EXPECT_EQ(errors_of("[aliases]\nroot = []\n" + conf::config_testing::kAccount).size(), 1u);
    EXPECT_EQ(errors_of("[aliases]\nroot = 5\n" + conf::config_testing::kAccount).size(), 1u);
    EXPECT_EQ(errors_of("aliases = 1\n" + conf::config_testing::kAccount).size(), 1u);
}

TEST(Maildrop, ArgumentsAndMessageSurviveTheFileExactly) {
    const std::vector<std::string> args{"-FCron\tDaemon%", "-i", "--", "root", ""};
    using namespace std::string_literals;
    const std::string message = "Subject: x\n\nbinary \r\0\xff bytes\n"s;
    ASSERT_EQ(message.size(), 29u);
    auto decoded = maildrop::decode(maildrop::encode(args, message));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->first, args);
    EXPECT_EQ(decoded->second, message);
    // One argument per line: a newline inside one cannot add another.
    EXPECT_EQ(maildrop::encode({"a\narg -t"}, "").find("\narg -t"), std::string::npos);
    EXPECT_FALSE(maildrop::decode("not a maildrop file\n\nbody"));
    EXPECT_FALSE(maildrop::decode("smtp-oauth2-relay maildrop 1\narg %G1\n\n"));
    EXPECT_FALSE(maildrop::decode("smtp-oauth2-relay maildrop 1\narg -i"));   // no end of the argument lines
}

}  // namespace
