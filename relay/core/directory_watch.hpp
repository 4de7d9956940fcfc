// One inotify watch on one directory, read by a coroutine on the I/O thread. The relay watches two
// directories (state_dir/tokens/ for token files, spool_dir/control/ for the queue tools'
// requests); both need the same careful parts: an event record copied out of an unaligned buffer,
// the kernel's queue overflow, a read loop that is logged and restarted when its handler throws,
// and a stop that is a close. They live here once.
#pragma once

#include <utility>  // GCC 12 + Boost 1.81: must precede asio/awaitable.hpp

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <boost/asio/any_io_executor.hpp>

namespace relay::core {

class DirectoryWatch {
public:
    // The names of the files the events were about; `overflow` when the kernel dropped events, so
    // any file may have changed.
    using Handler = std::function<void(const std::set<std::string>& names, bool overflow)>;

    // `what` names the watch in log lines ("token_file_watch"); `mask` is inotify's IN_* events.
    DirectoryWatch(boost::asio::any_io_executor io, std::filesystem::path dir, std::uint32_t mask, std::string what,
                   Handler on_events);
    ~DirectoryWatch();

    // Throws std::system_error when inotify is unavailable or the directory cannot be watched.
    void start();
    void stop();

    const std::filesystem::path& dir() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace relay::core
