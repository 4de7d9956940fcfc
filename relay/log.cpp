// Text log lines to stderr; one write(2) per line so lines from threads never interleave.
#include "relay/log.hpp"

#include <atomic>
#include <chrono>
#include <ctime>
#include <unistd.h>

#include <fmt/format.h>

namespace relay::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::info)};

std::string_view level_name(Level level) {
    switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warning: return "warning";
    case Level::error: return "error";
    }
    return "info";
}

bool needs_quotes(std::string_view v) {
    if (v.empty()) return true;
    for (unsigned char c : v)
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) return true;
    return false;
}

void append_value(std::string& out, std::string_view v) {
    if (!needs_quotes(v)) {
        out += v;
        return;
    }
    out += '"';
    for (unsigned char c : v) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < ' ' || c == 0x7f) {
            out += fmt::format("\\x{:02x}", c);  // control bytes from clients stay on one line
        } else {
            out += static_cast<char>(c);
        }
    }
    out += '"';
}

}  // namespace

void set_level(Level level) { g_level.store(static_cast<int>(level)); }
bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(); }

std::string format_line(Level level, std::string_view name, std::initializer_list<Field> fields) {
    std::string line;
    line.reserve(160);
    line += level_name(level);
    line += ' ';
    line += name;
    for (const Field& f : fields) {
        line += ' ';
        line += f.key;
        line += '=';
        append_value(line, f.value);
    }
    return line;
}

void event(Level level, std::string_view name, std::initializer_list<Field> fields) {
    if (!enabled(level)) return;
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::string line = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z ", tm.tm_year + 1900,
                                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
    line += format_line(level, name, fields);
    line += '\n';
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) break;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

}  // namespace relay::log
