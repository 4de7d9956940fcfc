// TokenFileWatcher: the one watcher of state_dir/tokens/. Real inotify on a temporary directory:
// a new file renamed into place, a chmod (IN_ATTRIB: the admin fixing permissions) and a deletion
// each name the account; the store's temporary files name none.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include <boost/asio/io_context.hpp>

#include "auth/token_file_watcher.hpp"

namespace fs = std::filesystem;
using relay::auth::TokenFileWatcher;
using namespace std::chrono_literals;

namespace {

struct Watched : ::testing::Test {
    fs::path dir;
    boost::asio::io_context io;
    std::set<std::string> seen;
    std::unique_ptr<TokenFileWatcher> watcher;

    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "token-watch-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir = pattern;
        watcher = std::make_unique<TokenFileWatcher>(io.get_executor(), dir,
                                                     [this](const std::set<std::string>& accounts, bool) {
                                                         seen.insert(accounts.begin(), accounts.end());
                                                     });
        watcher->start();
    }
    void TearDown() override {
        watcher.reset();
        fs::remove_all(dir);
    }
    // Runs the I/O loop until `account` was reported or a second passed.
    bool reported(const std::string& account) {
        for (int i = 0; i < 100 && !seen.count(account); ++i) io.run_for(10ms);
        return seen.count(account) > 0;
    }
    void write(const fs::path& file) { std::ofstream(file) << "{}"; }
};

}  // namespace

TEST(TokenFileWatcherNames, AccountOfAFileName) {
    EXPECT_EQ(TokenFileWatcher::account_of("office.json"), "office");
    EXPECT_EQ(TokenFileWatcher::account_of(".office.json.tmp.ab12"), "");   // the store's temp file
    EXPECT_EQ(TokenFileWatcher::account_of(".json"), "");
    EXPECT_EQ(TokenFileWatcher::account_of("notes.txt"), "");
}

TEST_F(Watched, NoticesAFileRenamedIntoPlace) {
    write(dir / ".office.json.tmp.1");
    fs::rename(dir / ".office.json.tmp.1", dir / "office.json");
    EXPECT_TRUE(reported("office"));
    EXPECT_EQ(seen, std::set<std::string>{"office"});
}

TEST_F(Watched, NoticesChmodAndChown) {
    write(dir / "office.json");
    ASSERT_TRUE(reported("office"));
    seen.clear();
    ASSERT_EQ(::chmod((dir / "office.json").c_str(), 0600), 0);
    EXPECT_TRUE(reported("office")) << "a permission fix must wake the account (IN_ATTRIB)";
    seen.clear();
    ASSERT_EQ(::chown((dir / "office.json").c_str(), ::geteuid(), ::getegid()), 0);
    EXPECT_TRUE(reported("office")) << "an ownership fix must wake the account (IN_ATTRIB)";
}

TEST_F(Watched, NoticesADeletedFile) {
    write(dir / "office.json");
    ASSERT_TRUE(reported("office"));
    seen.clear();
    fs::remove(dir / "office.json");
    EXPECT_TRUE(reported("office"));
}

TEST_F(Watched, StopsReportingAfterStop) {
    watcher->stop();
    write(dir / "office.json");
    EXPECT_FALSE(reported("office"));
}
