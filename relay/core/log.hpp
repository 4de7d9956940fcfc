// Structured log events: one line per event, an event name plus key=value fields. The sink is
// chosen by log_format: text lines or JSON objects on stderr, or native journald entries whose
// fields are the keys upper-cased (QUEUE_ID=..., so `journalctl QUEUE_ID=...` finds a message).
// Every line about a message carries queue_id. Callers never pass secrets: fields are plain text
// and nothing here can tell a token from an address.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace relay::log {

enum class Level { debug, info, warning, error };
// automatic: journal when stderr is journald's stream ($JOURNAL_STREAM), else text.
enum class Format { automatic, text, json, journal };

struct Field {
    std::string_view key;
    std::string value;
    bool number = false;    // from an arithmetic value: a JSON number in json format
    bool omit = false;      // left out of every format (a switched-off field, see recipients())
    std::vector<std::string> items;   // a list: value is "<a>,<b>" in text, a JSON array in json
    bool list = false;
    Field(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
    Field(std::string_view k, std::string_view v) : key(k), value(v) {}
    Field(std::string_view k, const char* v) : key(k), value(v) {}
    template <class N, class = std::enable_if_t<std::is_arithmetic_v<N>>>
    Field(std::string_view k, N n) : key(k), value(std::to_string(n)), number(!std::is_same_v<N, bool>) {}
    // A list of addresses: text and journal write "<a>,<b>", JSON an array ["a","b"].
    Field(std::string_view k, std::vector<std::string> addresses);
};

// Issue 11, item 5: received, deferred, delivered and failed lines name every recipient as
// to=<a>,<b> so "did the mail to X go out?" is answered by the log. log_recipients = false in
// [relay] turns it off (privacy): recipients() then gives a field that no format writes.
void set_log_recipients(bool on);
Field recipients(const std::vector<std::string>& addresses);

void set_level(Level level);
bool enabled(Level level);

// text, json or journal; automatic picks journal when stderr is journald's stream (JOURNAL_STREAM
// names stderr's device:inode, see systemd.exec(5)), else text. Returns the format in effect.
Format set_format(Format format);

// Called for every event, whatever the level, before it is written (metrics count at the log points).
// May be called from any thread.
using Observer = void (*)(std::string_view name, std::initializer_list<Field> fields);
void set_observer(Observer observer);

// Writes one line: "<UTC time> <level> <event> key=value ...". Values with spaces or quotes are quoted.
void event(Level level, std::string_view name, std::initializer_list<Field> fields = {});

inline void debug(std::string_view name, std::initializer_list<Field> f = {}) { event(Level::debug, name, f); }
inline void info(std::string_view name, std::initializer_list<Field> f = {}) { event(Level::info, name, f); }
inline void warning(std::string_view name, std::initializer_list<Field> f = {}) { event(Level::warning, name, f); }
inline void error(std::string_view name, std::initializer_list<Field> f = {}) { event(Level::error, name, f); }

// The text form of one line without the timestamp, for tests.
std::string format_line(Level level, std::string_view name, std::initializer_list<Field> fields);
// The JSON form: {"time":...,"level":...,"event":...,"key":"value",...}; `time` empty: left out.
std::string format_json(std::string_view time, Level level, std::string_view name, std::initializer_list<Field> fields);
// The journald native-protocol datagram (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, EVENT, KEY=value...).
std::string format_journal(Level level, std::string_view name, std::initializer_list<Field> fields);

}  // namespace relay::log
