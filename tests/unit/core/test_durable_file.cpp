// write_file_durably / ensure_directory: contents replaced atomically, exact modes despite the
// umask, no temp files left behind, errors name the path and never the contents.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

#include "relay/core/durable_file.hpp"

namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "relay-durable-XXXXXX").string();
        path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() { fs::remove_all(path); }
};

std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

mode_t mode_of(const fs::path& p) {
    struct stat st {};
    EXPECT_EQ(::stat(p.c_str(), &st), 0);
    return st.st_mode & 07777;
}

std::size_t entries(const fs::path& dir) {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

}  // namespace

TEST(DurableFile, CreatesWithExactModeDespiteUmask) {
    TempDir dir;
    mode_t old = ::umask(0077);
    relay::write_file_durably(dir.path / "a", "hello", 0640);
    ::umask(old);
    EXPECT_EQ(read(dir.path / "a"), "hello");
    EXPECT_EQ(mode_of(dir.path / "a"), 0640u);
}

TEST(DurableFile, ReplacesExistingFileAndLeavesNoTemp) {
    TempDir dir;
    relay::write_file_durably(dir.path / "t.json", std::string(100000, 'x'), 0600);
    relay::write_file_durably(dir.path / "t.json", "second", 0600);
    EXPECT_EQ(read(dir.path / "t.json"), "second");
    EXPECT_EQ(entries(dir.path), 1u);
}

TEST(DurableFile, BinaryContentsRoundTrip) {
    TempDir dir;
    std::string bytes("a\0b\r\n\xff", 6);
    relay::write_file_durably(dir.path / "bin", bytes, 0600);
    EXPECT_EQ(read(dir.path / "bin"), bytes);
}

TEST(DurableFile, FailureNamesPathNotContentsAndKeepsOldFile) {
    TempDir dir;
    fs::path target = dir.path / "keep";
    relay::write_file_durably(target, "old", 0600);
    // A directory in the way of rename(2) makes the last step fail after the temp was written.
    fs::path blocked = dir.path / "blocked";
    fs::create_directory(blocked);
    fs::create_directory(blocked / "child");
    try {
        relay::write_file_durably(blocked, "SECRET-CONTENTS", 0600);
        FAIL() << "expected system_error";
    } catch (const std::system_error& e) {
        std::string what = e.what();
        EXPECT_NE(what.find(blocked.string()), std::string::npos) << what;
        EXPECT_EQ(what.find("SECRET-CONTENTS"), std::string::npos);
    }
    EXPECT_EQ(read(target), "old");
    EXPECT_EQ(entries(dir.path), 2u);  // "keep" and "blocked": the temp file was removed
}

TEST(DurableFile, MissingDirectoryThrowsNamingTarget) {
    TempDir dir;
    fs::path target = dir.path / "no" / "such" / "file";
    try {
        relay::write_file_durably(target, "x", 0600);
        FAIL() << "expected system_error";
    } catch (const std::system_error& e) {
        EXPECT_NE(std::string(e.what()).find(target.string()), std::string::npos);
        EXPECT_EQ(e.code().value(), ENOENT);
    }
}

TEST(DurableFile, EnsureDirectoryCreatesParentsWithMode) {
    TempDir dir;
    fs::path deep = dir.path / "a" / "b" / "tokens";
    mode_t old = ::umask(0022);
    relay::ensure_directory(deep, 0700);
    ::umask(old);
    EXPECT_TRUE(fs::is_directory(deep));
    EXPECT_EQ(mode_of(deep), 0700u);
    EXPECT_EQ(mode_of(dir.path / "a"), 0700u);
    relay::ensure_directory(deep, 0700);  // existing: no error
    relay::write_file_durably(dir.path / "file", "x", 0600);
    EXPECT_THROW(relay::ensure_directory(dir.path / "file", 0700), std::system_error);
}
