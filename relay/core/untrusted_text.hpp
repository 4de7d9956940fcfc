// Bytes from clients (headers, addresses, replies) shown to people and parsers (issue 13, item 7):
// a header with ESC, OSC 52 (clipboard write) or OSC 0 (window title) reached the admin's terminal
// through `queue show`, and log lines passed invalid UTF-8 into JSON. These helpers walk UTF-8
// strictly (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF) and say, byte by byte,
// what may pass. Pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace relay::core {

// Length of the well-formed UTF-8 sequence starting at text[at] (1 to 4), 0 when it is not one.
// `code_point` receives its value when not null.
std::size_t utf8_sequence(std::string_view text, std::size_t at, char32_t* code_point = nullptr);

// A code point a terminal may act on: C0 controls, DEL, C1 controls (U+0080..U+009F; 0x9B is a
// CSI on some terminals).
bool is_control(char32_t code_point);

// For terminals: printable text and well-formed non-control UTF-8 pass; every other byte becomes
// \xNN (a tab too when `keep_tab` is false). Nothing in the result can move the cursor, change
// the title or write the clipboard.
std::string escape_for_terminal(std::string_view bytes, bool keep_tab = true);

}  // namespace relay::core
