// TokenStore: round trip, 0600/0700 modes, no temp files, clear errors for corrupt files that
// never quote the file's contents, and account names that cannot escape the tokens directory.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/token_store.hpp"

namespace fs = std::filesystem;
using namespace relay::auth;
using namespace std::chrono_literals;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "relay-store-XXXXXX").string();
        path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() { fs::remove_all(path); }
};

mode_t mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
}

}  // namespace

TEST(TokenStore, MissingFileIsNullopt) {
    TempDir dir;
    TokenStore store(dir.path);
    EXPECT_FALSE(store.load("office"));
    EXPECT_FALSE(store.stamp("office"));
}

TEST(TokenStore, RoundTripWithModesAndNoTempFiles) {
    TempDir dir;
    TokenStore store(dir.path);
    StoredTokens t;
    t.refresh_token = "0.AUcA-rt\"quoted\"";
    t.access_token = "eyJ.at";
    t.access_expires_at = std::chrono::system_clock::time_point(1'700'003'600s);
    t.access_obtained_at = std::chrono::system_clock::time_point(1'700'000'000s);
    t.last_refresh = t.access_obtained_at;
    store.save("office", t);
    store.save("office", t);

    EXPECT_EQ(store.path_for("office"), dir.path / "tokens" / "office.json");
    EXPECT_EQ(mode_of(dir.path / "tokens"), 0700u);
    EXPECT_EQ(mode_of(store.path_for("office")), 0600u);
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path / "tokens"), fs::directory_iterator()), 1);
    EXPECT_TRUE(store.stamp("office"));

    auto loaded = store.load("office");
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->refresh_token, t.refresh_token);
    EXPECT_EQ(loaded->access_token, t.access_token);
    EXPECT_EQ(loaded->access_expires_at, t.access_expires_at);
    EXPECT_EQ(loaded->access_obtained_at, t.access_obtained_at);
    EXPECT_EQ(loaded->last_refresh, t.last_refresh);
}

TEST(TokenStore, RefreshTokenOnlyFileIsAccepted) {
    TempDir dir;
    TokenStore store(dir.path);
    fs::create_directories(dir.path / "tokens");
    std::ofstream(dir.path / "tokens" / "g.json") << R"({"refresh_token":"1//0g-rt"})";
    auto loaded = store.load("g");
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->refresh_token, "1//0g-rt");
    EXPECT_TRUE(loaded->access_token.empty());
}

TEST(TokenStore, CorruptFileErrorNamesFileWithoutContents) {
    TempDir dir;
    TokenStore store(dir.path);
    fs::create_directories(dir.path / "tokens");
    for (const char* body : {R"({"refresh_token":"SECRET-RT", )", R"(["SECRET-RT"])",
                             R"({"refresh_token":["SECRET-RT"]})", R"({"refresh_token":"SECRET-RT","last_refresh":"x"})"}) {
        std::ofstream(dir.path / "tokens" / "office.json", std::ios::trunc) << body;
        try {
            store.load("office");
            FAIL() << body;
        } catch (const std::runtime_error& e) {
            std::string what = e.what();
            EXPECT_NE(what.find("office.json"), std::string::npos) << what;
            EXPECT_EQ(what.find("SECRET-RT"), std::string::npos) << what;
        }
    }
}

TEST(TokenStore, UnreadableFileIsAnErrorNotMissing) {
    // A directory where the file should be: exists, cannot be read (works even as root).
    TempDir dir;
    TokenStore store(dir.path);
    fs::create_directories(store.path_for("office"));
    EXPECT_THROW(store.load("office"), std::runtime_error);
}

TEST(TokenStore, RejectsAccountNamesThatEscape) {
    TempDir dir;
    TokenStore store(dir.path);
    for (const char* bad : {"", "..", ".", "../x", "a/b", ".hidden", "a\\b", "a b", "x\n"})
        EXPECT_THROW(store.path_for(bad), std::invalid_argument) << bad;
    EXPECT_NO_THROW(store.path_for("office-365_main.v2"));
}

// Issue 13, item 3: a relay that had stored a negative or overflowing expiry looped on token
// requests again after each restart. load() drops such a cached access token (so the next
// delivery refreshes) and rewrites the file; the refresh token survives.
TEST(TokenStore, NonsenseStoredExpiryIsRepairedOnLoad) {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string cases[] = {
        // negative lifetime (expires before it was obtained)
        R"("access_expires_at":)" + std::to_string(now - 7'000'000'000LL + 1'000'000'000LL) +
            R"(,"access_obtained_at":)" + std::to_string(now),
        // a lifetime of ten years
        R"("access_expires_at":)" + std::to_string(now + 315'360'000) + R"(,"access_obtained_at":)" + std::to_string(now),
        // beyond what the clock can hold
        R"("access_expires_at":9223372036854775807,"access_obtained_at":)" + std::to_string(now),
        R"("access_expires_at":18446744073709551615,"access_obtained_at":0)",
        R"("access_expires_at":-9223372036854775807,"access_obtained_at":)" + std::to_string(now),
    };
    for (const std::string& times : cases) {
        TempDir dir;
        TokenStore store(dir.path);
        fs::create_directories(dir.path / "tokens");
        {
            std::ofstream out(store.path_for("office"));
            out << R"({"refresh_token":"RT-keep","access_token":"AT-bad",)" << times << R"(,"last_refresh":0})";
        }
        auto loaded = store.load("office");
        ASSERT_TRUE(loaded) << times;
        EXPECT_TRUE(loaded->repaired) << times;
        EXPECT_EQ(loaded->refresh_token, "RT-keep");
        EXPECT_TRUE(loaded->access_token.empty()) << times;
        EXPECT_EQ(loaded->access_expires_at, std::chrono::system_clock::time_point{});
        auto again = store.load("office");   // the file itself was repaired
        ASSERT_TRUE(again);
        EXPECT_FALSE(again->repaired) << times;
        EXPECT_EQ(again->refresh_token, "RT-keep");
    }
    // A sane file is left alone.
    TempDir dir;
    TokenStore store(dir.path);
    StoredTokens t;
    t.refresh_token = "RT";
    t.access_token = "AT";
    t.access_obtained_at = std::chrono::system_clock::time_point(std::chrono::seconds(now));
    t.access_expires_at = t.access_obtained_at + 3600s;
    store.save("office", t);
    auto loaded = store.load("office");
    ASSERT_TRUE(loaded);
    EXPECT_FALSE(loaded->repaired);
    EXPECT_EQ(loaded->access_token, "AT");
}
