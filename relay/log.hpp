// Structured log events: one line per event, an event name plus key=value fields, to stderr.
// Every line about a message carries queue_id. Callers never pass secrets: fields are plain text
// and nothing here can tell a token from an address.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "conf/config.hpp"

namespace relay::log {

using Level = conf::LogLevel;

struct Field {
    std::string_view key;
    std::string value;
    Field(std::string_view k, std::string v) : key(k), value(std::move(v)) {}
    Field(std::string_view k, std::string_view v) : key(k), value(v) {}
    Field(std::string_view k, const char* v) : key(k), value(v) {}
    template <class N, class = std::enable_if_t<std::is_arithmetic_v<N>>>
    Field(std::string_view k, N n) : key(k), value(std::to_string(n)) {}
};

void set_level(Level level);
bool enabled(Level level);

// Writes one line: "<UTC time> <level> <event> key=value ...". Values with spaces or quotes are quoted.
void event(Level level, std::string_view name, std::initializer_list<Field> fields = {});

inline void debug(std::string_view name, std::initializer_list<Field> f = {}) { event(Level::debug, name, f); }
inline void info(std::string_view name, std::initializer_list<Field> f = {}) { event(Level::info, name, f); }
inline void warning(std::string_view name, std::initializer_list<Field> f = {}) { event(Level::warning, name, f); }
inline void error(std::string_view name, std::initializer_list<Field> f = {}) { event(Level::error, name, f); }

// The text form of one line without the timestamp, for tests.
std::string format_line(Level level, std::string_view name, std::initializer_list<Field> fields);

}  // namespace relay::log
