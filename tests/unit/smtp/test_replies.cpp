// The reply catalogue (relay/smtp/replies): every reply carries a code and an RFC 3463 enhanced
// code of the same class, the texts clients and admins see stay as they were, and no reply literal
// lives outside the catalogue.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "relay/smtp/replies.hpp"

namespace {

namespace replies = relay::smtp::replies;

// "550 5.7.1 text": the code, the enhanced code (class.subject.detail, RFC 3463 2), a text.
void expect_well_formed(std::string_view line) {
    static const std::regex shape(R"(([245])[0-9][0-9] ([245])\.[0-9]{1,3}\.[0-9]{1,3} \S.*)");
    std::cmatch m;
    ASSERT_TRUE(std::regex_match(line.begin(), line.end(), m, shape)) << line;
    EXPECT_EQ(m[1].str(), m[2].str()) << "the enhanced code's class must match the reply code's: " << line;
    EXPECT_EQ(line.find_first_of("\r\n"), std::string_view::npos) << line;
}

TEST(Replies, EveryFixedReplyHasAMatchingEnhancedCode) {
    ASSERT_GT(replies::all_fixed().size(), 50u);
    for (std::string_view line : replies::all_fixed()) {
        // RFC 2034 gives 2xx, 4xx and 5xx an enhanced code; an intermediate 3xx (354) has none.
        if (line.starts_with('3')) {
            EXPECT_FALSE(std::regex_search(std::string(line), std::regex(R"(^3[0-9][0-9] [0-9]\.)"))) << line;
            continue;
        }
        expect_well_formed(line);
    }
}

TEST(Replies, ParameterisedRepliesKeepTheirTexts) {
    EXPECT_EQ(replies::greeting("relay.test"), "220 relay.test ESMTP smtp-oauth2-relay ready");
    EXPECT_EQ(replies::too_many_errors("h"), "421 4.7.0 h Error: too many errors");
    EXPECT_EQ(replies::timeout("h"), "421 4.4.2 h Error: timeout exceeded");
    EXPECT_EQ(replies::shutting_down("h"), "421 4.3.2 h Service shutting down");
    EXPECT_EQ(replies::data_rate_too_low("h"), "421 4.4.2 h Error: data rate too low");
    EXPECT_EQ(replies::too_many_connections("h"), "421 4.7.0 h Error: too many connections");
    EXPECT_EQ(replies::too_many_connections_from_address("h"), "421 4.7.0 h Error: too many connections from your address");
    EXPECT_EQ(replies::talked_first("h"), "554 5.5.0 h Error: SMTP protocol synchronization");
    EXPECT_EQ(replies::queued("0123456789ABCDEF"), "250 2.0.0 Ok: queued as 0123456789ABCDEF");
    EXPECT_EQ(replies::helo("h"), "250 h");
    EXPECT_EQ(replies::ehlo({"h", "PIPELINING", "8BITMIME"}), "250-h\r\n250-PIPELINING\r\n250 8BITMIME\r\n");
    EXPECT_EQ(replies::ehlo({"h"}), "250 h\r\n");
    for (const std::string& line : {replies::too_many_errors("h"), replies::timeout("h"), replies::shutting_down("h"),
                                    replies::data_rate_too_low("h"), replies::too_many_connections("h"),
                                    replies::too_many_connections_from_address("h"), replies::talked_first("h"),
                                    replies::queued("ID")})
        expect_well_formed(line);
}

TEST(Replies, GenericEnhancedCodeFollowsTheReplyClass) {
    EXPECT_EQ(replies::class_enhanced_code(250), "2.0.0");
    EXPECT_EQ(replies::class_enhanced_code(354), "2.0.0");
    EXPECT_EQ(replies::class_enhanced_code(432), "4.0.0");
    EXPECT_EQ(replies::class_enhanced_code(554), "5.0.0");
    EXPECT_EQ(replies::line(550, "5.7.1", "no"), "550 5.7.1 no");
}

// The catalogue is the one place: a reply literal ("451 4.3.0 ...") in code anywhere else fails
// here with its file and line. Comments may quote replies.
TEST(Replies, NoReplyLiteralOutsideTheCatalogue) {
    namespace fs = std::filesystem;
    const std::regex literal(R"re("[245][0-9][0-9][ -][245]\.[0-9])re");
    std::vector<std::string> found;
    for (const char* top : {"relay", "auth", "conf"}) {
        for (const auto& entry : fs::recursive_directory_iterator(fs::path(RELAY_SOURCE_DIR) / top)) {
            const fs::path& path = entry.path();
            if (path.extension() != ".cpp" && path.extension() != ".hpp") continue;
            if (path.parent_path().filename() == "smtp" && path.stem() == "replies") continue;
            std::ifstream in(path);
            std::string line;
            for (int number = 1; std::getline(in, line); ++number) {
                const std::string code = line.substr(0, line.find("//"));
                if (std::regex_search(code, literal))
                    found.push_back(fs::relative(path, RELAY_SOURCE_DIR).string() + ":" + std::to_string(number) + ": " + line);
            }
        }
    }
    std::ostringstream all;
    for (const auto& f : found) all << f << "\n";
    EXPECT_TRUE(found.empty()) << "reply literals outside relay/smtp/replies:\n" << all.str();
}

}  // namespace
