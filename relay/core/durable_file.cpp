// The durable-commit primitive: temp file in the target's directory, write, fsync, rename, fsync
// the directory. Same-directory temp files keep rename(2) atomic (one filesystem); the directory
// fsync makes the rename itself survive a power cut (ext4/xfs only persist it on dir fsync).
#include "relay/core/durable_file.hpp"

#include <cerrno>
#include <fcntl.h>
#include <random>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace relay {
namespace {

// Unique enough within one directory; O_EXCL catches the rare collision and we try again.
std::string random_suffix() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    std::string s(12, '0');
    for (char& c : s) c = digits[rng() % 36];
    return s;
}

// Closes and unlinks the temp file unless the commit got through.
struct TempFile {
    std::filesystem::path path;
    int fd = -1;
    bool committed = false;
    ~TempFile() {
        if (fd >= 0) ::close(fd);
        if (!committed) ::unlink(path.c_str());
    }
};

}  // namespace

void throw_errno(int err, const std::string& what) { throw std::system_error(err, std::generic_category(), what); }

void throw_errno(int err, std::string_view what, const std::filesystem::path& path) {
    throw_errno(err, std::string(what) + " " + path.string());
}

void write_all(int fd, std::string_view bytes, const std::filesystem::path& path) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(errno, "cannot write", path);
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

void write_file_durably(const std::filesystem::path& target, std::string_view contents, mode_t mode) {
    std::filesystem::path dir = target.parent_path();
    if (dir.empty()) dir = ".";
    TempFile temp;
    for (int attempt = 0;; ++attempt) {
        temp.path = dir / ("." + target.filename().string() + ".tmp." + random_suffix());
        temp.fd = ::open(temp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (temp.fd >= 0) break;
        if (errno != EEXIST || attempt == 8) {
            temp.committed = true;  // nothing was created, nothing to unlink
            throw_errno(errno, "cannot create temporary file for", target);
        }
    }
    // open(2) applies the umask; the caller's mode is what the file must have (0600 tokens etc.).
    if (::fchmod(temp.fd, mode) != 0) throw_errno(errno, "cannot chmod temporary file for", target);
    write_all(temp.fd, contents, target);
    if (::fsync(temp.fd) != 0) throw_errno(errno, "cannot fsync", target);
    int fd = temp.fd;
    temp.fd = -1;
    if (::close(fd) != 0) throw_errno(errno, "cannot close", target);
    if (::rename(temp.path.c_str(), target.c_str()) != 0) throw_errno(errno, "cannot rename into", target);
    temp.committed = true;
    fsync_directory(dir);
}

void fsync_directory(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw_errno(errno, "cannot open directory", dir);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) throw_errno(err, "cannot fsync directory", dir);
}

void ensure_directory(const std::filesystem::path& dir, mode_t mode) {
    if (dir.empty()) return;
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) throw_errno(ENOTDIR, "not a directory:", dir);
        return;
    }
    if (errno != ENOENT) throw_errno(errno, "cannot stat", dir);
    std::filesystem::path parent = dir.parent_path();
    if (!parent.empty() && parent != dir) ensure_directory(parent, mode);
    if (::mkdir(dir.c_str(), mode) != 0) {
        if (errno == EEXIST) return;  // created concurrently
        throw_errno(errno, "cannot create directory", dir);
    }
    // mkdir(2) applies the umask; the directory must have exactly `mode` (0700 for tokens).
    if (::chmod(dir.c_str(), mode) != 0) throw_errno(errno, "cannot chmod directory", dir);
    // The new entry lives in the parent directory; make it durable too.
    fsync_directory(parent.empty() ? std::filesystem::path(".") : parent);
}

}  // namespace relay
