// The queue file's format, in one place: a magic line, typed records ("name value", one a line, in
// the order of the record table in queue_file.cpp), an empty line, then the body exactly as received.
// The "size" record comes first with fixed-width digits, so the writer can fill it in with one
// pwrite after the body (see spool.hpp for why that makes a torn file recognisable).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "relay/spool/spool.hpp"

namespace relay::queue_file {

inline constexpr std::string_view kMagic = "smtp-oauth2-relay-spool 1\n";
inline constexpr int kSizeDigits = 20;

// The header of `message` (id, envelope, received) with the size digits still zero, ending with
// the empty line. `size_offset` is set to where the size digits sit.
std::string format_header(const QueuedMessage& message, std::uint64_t& size_offset);
// The size digits to write at `size_offset` once the body is complete.
std::string format_size(std::uint64_t size);
// The "body" record follows "size" and is fixed width too ("8bit=0 longlines=0"): what the writer
// saw in the body (QueuedMessage::eight_bit_data, long_lines), written with the size.
std::string format_body_traits(const QueuedMessage& message);
std::uint64_t body_traits_offset(std::uint64_t size_offset);

// Parses the header at the start of `head` (the file's first bytes). Sets id, envelope, received,
// size and body_offset. Throws std::runtime_error for a file that is not a complete queue file header.
QueuedMessage parse_header(std::string_view head);

// The record names in file order (for tests and tools).
std::vector<std::string_view> record_names();

}  // namespace relay::queue_file
