// Log sinks: text lines or JSON objects on stderr (one write(2) per line so lines from threads never
// interleave), or native journald entries over its datagram socket, falling back to stderr text
// when journald cannot take one (no socket, entry too large).
#include "relay/core/log.hpp"
#include "relay/core/untrusted_text.hpp"

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

namespace relay::log {
namespace {

std::atomic<int> g_level{static_cast<int>(Level::info)};
std::atomic<int> g_format{static_cast<int>(Format::text)};
std::atomic<Observer> g_observer{nullptr};
std::atomic<bool> g_log_recipients{true};

constexpr const char* kJournalSocket = "/run/systemd/journal/socket";
constexpr const char* kIdentifier = "smtp-oauth2-relay";

std::string_view level_name(Level level) {
    switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warning: return "warning";
    case Level::error: return "error";
    }
    return "info";
}

// syslog(3) priorities, which journald's PRIORITY field uses.
int priority_of(Level level) {
    switch (level) {
    case Level::debug: return 7;
    case Level::info: return 6;
    case Level::warning: return 4;
    case Level::error: return 3;
    }
    return 6;
}

bool needs_quotes(std::string_view v) {
    if (v.empty()) return true;
    for (unsigned char c : v)
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f) return true;
    return false;
}

// Quoted values escape '"' and '\\', and every byte a terminal or a log reader could trip on:
// controls (C0, DEL, C1) and bytes that are not well-formed UTF-8 become \xNN, so a line stays one
// line and stays valid UTF-8 (issue 13, item 7: bytes >= 0x80 passed as they were).
void append_value(std::string& out, std::string_view v) {
    if (!needs_quotes(v)) {
        out += v;
        return;
    }
    out += '"';
    for (std::size_t i = 0; i < v.size();) {
        const unsigned char c = static_cast<unsigned char>(v[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        char32_t cp = 0;
        const std::size_t n = core::utf8_sequence(v, i, &cp);
        if (n > 0 && !core::is_control(cp)) {
            out.append(v.substr(i, n));
            i += n;
            continue;
        }
        const std::size_t take = n == 0 ? 1 : n;   // a malformed byte, or every byte of a control
        for (std::size_t k = 0; k < take; ++k) out += fmt::format("\\x{:02x}", static_cast<unsigned char>(v[i + k]));
        i += take;
    }
    out += '"';
}

// RFC 8259 section 7: controls (C1 too) as \u00XX; a byte that is not well-formed UTF-8 becomes
// U+FFFD, so every JSON line is valid UTF-8 whatever a client sent.
void append_json_string(std::string& out, std::string_view v) {
    out += '"';
    for (std::size_t i = 0; i < v.size();) {
        const unsigned char c = static_cast<unsigned char>(v[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        char32_t cp = 0;
        const std::size_t n = core::utf8_sequence(v, i, &cp);
        if (n == 0) {
            out += "\\ufffd";
            ++i;
        } else if (core::is_control(cp)) {
            out += fmt::format("\\u{:04x}", static_cast<unsigned>(cp));
            i += n;
        } else {
            out.append(v.substr(i, n));
            i += n;
        }
    }
    out += '"';
}

// Journal field names: upper-case letters, digits and '_', not starting with '_' (those are trusted
// fields only journald may set).
std::string journal_field_name(std::string_view key) {
    // "from" alone reads as the sender's address in a text line; in the journal it is the envelope's.
    if (key == "from") return "MAIL_FROM";
    std::string name;
    for (unsigned char c : key) name += std::isalnum(c) ? static_cast<char>(std::toupper(c)) : '_';
    while (!name.empty() && name.front() == '_') name.erase(0, 1);
    return name.empty() ? "FIELD" : name;
}

// A value with a newline uses the binary form: name, '\n', 64-bit little-endian length, data, '\n'.
void append_journal_field(std::string& out, std::string_view name, std::string_view value) {
    out += name;
    if (value.find('\n') == std::string_view::npos) {
        out += '=';
        out += value;
    } else {
        out += '\n';
        std::uint64_t size = value.size();
        for (int i = 0; i < 8; ++i) out += static_cast<char>((size >> (8 * i)) & 0xff);
        out += value;
    }
    out += '\n';
}

// Field values as clients sent them would show as "[blob data]" or carry controls into
// journalctl's output: escaped as in text lines, except line breaks and tabs, which journald keeps
// (a multi-line value uses the binary form below).
std::string journal_value(std::string_view value) {
    std::string out;
    for (std::size_t at = 0; at <= value.size();) {
        std::size_t end = value.find('\n', at);
        if (end == std::string_view::npos) end = value.size();
        out += core::escape_for_terminal(value.substr(at, end - at), /*keep_tab=*/true);
        if (end < value.size()) out += '\n';
        at = end + 1;
    }
    return out;
}

std::string timestamp() {
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

void write_stderr(const std::string& line) {
    const char* p = line.data();
    std::size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) break;
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

// One datagram per entry; false when journald is not there or refused it.
bool send_journal(const std::string& entry) {
    // SMTP_OAUTH2_RELAY_JOURNAL_SOCKET lets the tests stand in for journald.
    const char* path = std::getenv("SMTP_OAUTH2_RELAY_JOURNAL_SOCKET");
    if (!path || !*path) path = kJournalSocket;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (std::strlen(path) >= sizeof address.sun_path) return false;
    std::strcpy(address.sun_path, path);
    static thread_local int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    ssize_t n = ::sendto(fd, entry.data(), entry.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&address),
                         sizeof address);
    return n == static_cast<ssize_t>(entry.size());
}

bool stderr_is_journal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (!stream) return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) return false;
    return fmt::format("{}:{}", st.st_dev, st.st_ino) == stream;
}

}  // namespace

void set_level(Level level) { g_level.store(static_cast<int>(level)); }
bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(); }

Format set_format(Format format) {
    if (format == Format::automatic)
        format = stderr_is_journal() ? Format::journal : Format::text;
    g_format.store(static_cast<int>(format));
    return format;
}

void set_observer(Observer observer) { g_observer.store(observer); }

Field::Field(std::string_view k, std::vector<std::string> addresses) : key(k), items(std::move(addresses)), list(true) {
    for (const auto& a : items) value += (value.empty() ? "<" : ",<") + a + ">";
}

void set_log_recipients(bool on) { g_log_recipients.store(on); }

Field recipients(const std::vector<std::string>& addresses) {
    Field f("to", addresses);
    f.omit = !g_log_recipients.load();
    return f;
}

std::string format_line(Level level, std::string_view name, std::initializer_list<Field> fields) {
    std::string line;
    line.reserve(160);
    line += level_name(level);
    line += ' ';
    line += name;
    for (const Field& f : fields) {
        if (f.omit) continue;
        line += ' ';
        line += f.key;
        line += '=';
        append_value(line, f.value);
    }
    return line;
}

std::string format_json(std::string_view time, Level level, std::string_view name, std::initializer_list<Field> fields) {
    std::string line = "{";
    if (!time.empty()) {
        line += "\"time\":";
        append_json_string(line, time);
        line += ',';
    }
    line += "\"level\":";
    append_json_string(line, level_name(level));
    line += ",\"event\":";
    append_json_string(line, name);
    for (const Field& f : fields) {
        if (f.omit) continue;
        line += ',';
        append_json_string(line, f.key);
        line += ':';
        if (f.list) {
            line += '[';
            for (std::size_t i = 0; i < f.items.size(); ++i) {
                if (i) line += ',';
                append_json_string(line, f.items[i]);
            }
            line += ']';
        } else if (f.number) {
            line += f.value;
        } else {
            append_json_string(line, f.value);
        }
    }
    line += '}';
    return line;
}

std::string format_journal(Level level, std::string_view name, std::initializer_list<Field> fields) {
    std::string entry;
    append_journal_field(entry, "MESSAGE", format_line(level, name, fields));
    append_journal_field(entry, "PRIORITY", std::to_string(priority_of(level)));
    append_journal_field(entry, "SYSLOG_IDENTIFIER", kIdentifier);
    append_journal_field(entry, "EVENT", name);
    for (const Field& f : fields)
        if (!f.omit) append_journal_field(entry, journal_field_name(f.key), journal_value(f.value));
    return entry;
}

void event(Level level, std::string_view name, std::initializer_list<Field> fields) {
    if (Observer observer = g_observer.load()) observer(name, fields);
    if (!enabled(level)) return;
    switch (static_cast<Format>(g_format.load())) {
    case Format::json:
        write_stderr(format_json(timestamp(), level, name, fields) + "\n");
        return;
    case Format::journal:
        if (send_journal(format_journal(level, name, fields))) return;
        break;
    default:
        break;
    }
    write_stderr(timestamp() + " " + format_line(level, name, fields) + "\n");
}

}  // namespace relay::log
