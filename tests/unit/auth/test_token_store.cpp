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
