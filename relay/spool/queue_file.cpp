// The queue file's records: one table names each record and says how it is written and read.
#include "relay/spool/queue_file.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

#include <fmt/format.h>

namespace relay::queue_file {
namespace {

std::int64_t to_unix_ms(SystemClock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Values are single-line by construction (the SMTP parser refuses CR/LF in paths and EHLO names);
// this guard keeps a bug elsewhere from corrupting the header.
std::string record_value(std::string_view v) {
    std::string out(v);
    std::replace_if(out.begin(), out.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
    return out;
}

void add(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append(" ").append(record_value(value)).append("\n");
}

struct Record {
    std::string_view name;
    // Appends this record's lines (none, one, or one per recipient). Null for "size", which the
    // writer places itself so that it knows the offset of its digits.
    void (*write)(const QueuedMessage& m, std::string_view name, std::string& out);
    void (*read)(QueuedMessage& m, const std::string& value);
};

// The table. Readers skip names they do not know: a newer version may add records.
constexpr std::array<Record, 12> kRecords{{
    {"size", nullptr, [](QueuedMessage& m, const std::string& v) { m.size = std::stoull(v); }},
    {"body",       // right after "size" (body_traits_offset): rewritten in place at the end
     [](const QueuedMessage& m, std::string_view n, std::string& out) {
         out.append(n).append(" ").append(format_body_traits(m)).append("\n");
     },
     [](QueuedMessage& m, const std::string& v) {
         m.eight_bit_data = v.find("8bit=1") != std::string::npos;
         m.long_lines = v.find("longlines=1") != std::string::npos;
     }},
    {"id", [](const QueuedMessage& m, std::string_view n, std::string& out) { add(out, n, m.id); },
     [](QueuedMessage& m, const std::string& v) { m.id = v; }},
    {"account", [](const QueuedMessage& m, std::string_view n, std::string& out) { add(out, n, m.envelope.account); },
     [](QueuedMessage& m, const std::string& v) { m.envelope.account = v; }},
    {"from", [](const QueuedMessage& m, std::string_view n, std::string& out) { add(out, n, m.envelope.mail_from); },
     [](QueuedMessage& m, const std::string& v) { m.envelope.mail_from = v; }},
    {"rcpt",
     [](const QueuedMessage& m, std::string_view n, std::string& out) {
         for (const auto& rcpt : m.envelope.rcpt_to) add(out, n, rcpt);
     },
     [](QueuedMessage& m, const std::string& v) { m.envelope.rcpt_to.push_back(v); }},
    {"user",
     [](const QueuedMessage& m, std::string_view n, std::string& out) {
         if (!m.envelope.user.empty()) add(out, n, m.envelope.user);
     },
     [](QueuedMessage& m, const std::string& v) { m.envelope.user = v; }},
    {"client", [](const QueuedMessage& m, std::string_view n, std::string& out) { add(out, n, m.envelope.client_address); },
     [](QueuedMessage& m, const std::string& v) { m.envelope.client_address = v; }},
    {"helo",
     [](const QueuedMessage& m, std::string_view n, std::string& out) {
         if (!m.envelope.helo.empty()) add(out, n, m.envelope.helo);
     },
     [](QueuedMessage& m, const std::string& v) { m.envelope.helo = v; }},
    {"received",   // milliseconds since the Unix epoch
     [](const QueuedMessage& m, std::string_view n, std::string& out) {
         out += fmt::format("{} {}\n", n, to_unix_ms(m.received));
     },
     [](QueuedMessage& m, const std::string& v) {
         m.received = SystemClock::time_point(std::chrono::milliseconds(std::stoll(v)));
     }},
    {"8bit",       // BODY=8BITMIME (RFC 6152): 1 or 0
     [](const QueuedMessage& m, std::string_view n, std::string& out) {
         out.append(n).append(m.envelope.eight_bit ? " 1\n" : " 0\n");
     },
     [](QueuedMessage& m, const std::string& v) { m.envelope.eight_bit = v == "1"; }},
    {"dsn",        // a bounce made by the relay: written only when set
     [](const QueuedMessage& m, std::string_view n, std::string& out) {
         if (m.envelope.dsn) out.append(n).append(" 1\n");
     },
     [](QueuedMessage& m, const std::string& v) { m.envelope.dsn = v == "1"; }},
}};

}  // namespace

std::string format_header(const QueuedMessage& message, std::uint64_t& size_offset) {
    std::string out(kMagic);
    for (const Record& record : kRecords) {
        if (record.write) {
            record.write(message, record.name, out);
            continue;
        }
        out.append(record.name).append(" ");
        size_offset = out.size();
        out.append(std::string(kSizeDigits, '0')).append("\n");
    }
    out += "\n";
    return out;
}

std::string format_size(std::uint64_t size) { return fmt::format("{:0{}}", size, kSizeDigits); }

std::string format_body_traits(const QueuedMessage& message) {
    return fmt::format("8bit={} longlines={}", message.eight_bit_data ? 1 : 0, message.long_lines ? 1 : 0);
}

std::uint64_t body_traits_offset(std::uint64_t size_offset) { return size_offset + kSizeDigits + 1 + 5; }

QueuedMessage parse_header(std::string_view head) {
    if (!head.starts_with(kMagic)) throw std::runtime_error("not a spool file");
    auto end = head.find("\n\n");
    if (end == std::string_view::npos) throw std::runtime_error("header not terminated");
    QueuedMessage m;
    m.body_offset = end + 2;
    bool have_size = false;
    std::string_view rest = head.substr(kMagic.size(), end + 1 - kMagic.size());
    while (!rest.empty()) {
        auto nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(nl + 1);
        auto sp = line.find(' ');
        std::string_view key = line.substr(0, sp);
        std::string value(sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1));
        for (const Record& record : kRecords) {
            if (record.name != key) continue;
            record.read(m, value);
            if (key == "size") have_size = true;
            break;
        }
    }
    if (!have_size || m.id.empty() || m.envelope.rcpt_to.empty() || m.envelope.account.empty())
        throw std::runtime_error("header incomplete");
    return m;
}

std::vector<std::string_view> record_names() {
    std::vector<std::string_view> names;
    for (const Record& record : kRecords) names.push_back(record.name);
    return names;
}

}  // namespace relay::queue_file
