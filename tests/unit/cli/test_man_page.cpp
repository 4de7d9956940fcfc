// Issue 12 item 4: the man pages are generated from the example config and the commands' --help, and
// a key the example does not document is caught (the build's generator refuses it; so does this test).
#include <gtest/gtest.h>

#include "conf/known_keys.hpp"
#include "relay/cli/man_page.hpp"

namespace {

using namespace relay::cli;

TEST(ManPage, EveryLoaderKeyIsDocumentedByTheShippedExample) {
    const auto documented = documented_keys(kExampleConfig);
    EXPECT_EQ(undocumented_keys(documented), std::vector<std::string>{});
    EXPECT_GT(relay::conf::known_keys().size(), 60u);
}

TEST(ManPage, AKeyWithoutACommentIsReported) {
    // The same example with max_errors' line removed: the check must notice.
    std::string text(kExampleConfig);
    auto at = text.find("\nmax_errors = ");
    ASSERT_NE(at, std::string::npos);
    text.erase(at, text.find('\n', at + 1) - at);
    const auto missing = undocumented_keys(documented_keys(text));
    EXPECT_EQ(missing, std::vector<std::string>{"relay.max_errors"});
}

TEST(ManPage, KeysCarryTheirCommentDefaultAndExample) {
    const std::string example = "[relay]\n# Addresses to accept SMTP on.\nlisten = [\"127.0.0.1:2525\"]\n"
                                "# Retry schedule: first wait, longest wait.\nmin_backoff = \"300s\"\nmax_backoff = \"4000s\"\n"
                                "\n[[users]]\n# A hash (or password = \"...\" in clear text).\n# password_hash = \"x\"\n";
    const auto keys = documented_keys(example);
    ASSERT_EQ(keys.size(), 5u);
    EXPECT_EQ(keys[0].name, "listen");
    EXPECT_EQ(keys[0].text, "Addresses to accept SMTP on.");
    EXPECT_EQ(keys[2].name, "max_backoff");
    EXPECT_EQ(keys[2].text, "Retry schedule: first wait, longest wait.");   // shares the comment above
    EXPECT_EQ(keys[4].name, "password");                                     // named in the comment only
    const std::string page = render_config_page(".TH X 5\n.\\\" @KEYS@ in a comment stays\n@KEYS@\n.SH SEE ALSO\n", example);
    EXPECT_NE(page.find(".SH [relay]\n.TP\n.B listen\nAddresses to accept SMTP on.\nDefault: [\"127.0.0.1:2525\"].\n"),
              std::string::npos) << page;
    EXPECT_NE(page.find(".\\\" @KEYS@ in a comment stays\n"), std::string::npos);
    EXPECT_NE(page.find(".SH [[users]]\n"), std::string::npos);
}

TEST(ManPage, CommandHelpIsQuotedVerbatimAndEscaped) {
    const std::string page = render_command_page(".SH COMMANDS\n@COMMANDS@\n.SH LOGS\n",
                                                 {{"queue", "usage: queue --all\n.dot first\nback\\slash\n"}});
    EXPECT_EQ(page, ".SH COMMANDS\n.SS queue\n.nf\nusage: queue \\-\\-all\n\\&.dot first\nback\\eslash\n.fi\n.SH LOGS\n");
}

}  // namespace
