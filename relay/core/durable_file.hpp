// The one durable-commit path for every file that must survive a crash (token store, spool):
// write a temp file in the same directory, fsync it, rename it into place, fsync the directory.
// These calls block on the disk: never call them on an I/O thread. Also the two file-descriptor
// helpers every writer of the relay shares (the spool's writer, this file's temp file).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace relay {

// errno as an exception: std::system_error(err) with `what` as its text.
[[noreturn]] void throw_errno(int err, const std::string& what);
// The same, naming the file: "what path".
[[noreturn]] void throw_errno(int err, std::string_view what, const std::filesystem::path& path);

// Writes every byte to `fd`, across short writes and EINTR. Throws std::system_error naming `path`.
void write_all(int fd, std::string_view bytes, const std::filesystem::path& path);

// Atomically replaces `target` with `contents`, created with `mode` (e.g. 0600). Throws
// std::system_error naming the path on failure; on failure the old file is left untouched.
void write_file_durably(const std::filesystem::path& target, std::string_view contents, mode_t mode);

// fsync() of a directory, so renames and unlinks inside it are on disk.
void fsync_directory(const std::filesystem::path& dir);

// Creates `dir` (and parents) with `mode` when missing; throws std::system_error naming it.
void ensure_directory(const std::filesystem::path& dir, mode_t mode);

}  // namespace relay
