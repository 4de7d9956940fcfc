// Long lines made deliverable with GMime; see long_lines.hpp.
#include "relay/delivery/long_lines.hpp"

#include <memory>
#include <mutex>

#include <gmime/gmime.h>

namespace relay {
namespace {

constexpr std::size_t kMaxLine = 998;

void init_gmime() {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
}

// GObject references, released on every path out.
struct Unref {
    void operator()(gpointer object) const { g_object_unref(object); }
};
template <class T>
using Ref = std::unique_ptr<T, Unref>;

// GMime works on LF lines and writes LF lines: CRLF in, LF; LF out, CRLF. The spool holds CRLF
// lines only (intake refuses or normalises bare CR and LF), so the round trip changes no octet.
std::string to_lf(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i)
        if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) out += text[i];
    return out;
}

std::string to_crlf(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 32);
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
        out += text[i];
    }
    return out;
}

// A header field's first line: a name of printable ASCII but ':' (RFC 5322 3.6.8), then ':'.
bool is_field(std::string_view line) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    for (char c : line.substr(0, colon))
        if (c <= 32 || c >= 127) return false;
    return true;
}

// Where the header ends: just past the empty line that ends it, or the end of a header-only message;
// for a header that runs straight into text without the empty line, the first line that is neither
// a field nor a continuation, where readers (and Postfix's cleanup) start the body. `separated`: the
// empty line is there.
struct HeaderEnd {
    std::size_t at;
    bool separated;
};
HeaderEnd header_end(std::string_view message) {
    std::size_t at = 0;
    while (at < message.size()) {
        const std::size_t eol = message.find("\r\n", at);
        const std::string_view line = message.substr(at, eol == std::string_view::npos ? std::string_view::npos : eol - at);
        if (line.empty()) return {at + 2, true};
        const bool continuation = at > 0 && (line.front() == ' ' || line.front() == '\t');
        if (!continuation && !is_field(line)) return {at, false};
        if (eol == std::string_view::npos) break;
        at = eol + 2;
    }
    return {message.size(), false};
}

std::size_t body_start(std::string_view message) { return header_end(message).at; }

bool valid_utf8(std::string_view text) {
    return g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr);
}

// A header field of the top-level header block, by name (case-insensitive), as present or not.
bool has_field(std::string_view header, std::string_view name) {
    std::size_t at = 0;
    while (at < header.size()) {
        const std::size_t end = header.find("\r\n", at);
        const std::string_view line = header.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
        if (line.size() > name.size() && line[name.size()] == ':' &&
            g_ascii_strncasecmp(line.data(), std::string(name).c_str(), name.size()) == 0)
            return true;
        if (end == std::string_view::npos) break;
        at = end + 2;
    }
    return false;
}

struct Walk {
    int reencoded = 0;
};

std::string_view view(GByteArray* bytes) { return {reinterpret_cast<const char*>(bytes->data), bytes->len}; }

// A base64 or quoted-printable part written as unwrapped lines (some scripts put a whole attachment
// on one base64 line): decoded and encoded again the same way, which GMime wraps at 76 columns.
// Decoding gives back the same octets, so the attachment is unchanged.
bool rewrap_if_long(GMimePart* part, GMimeContentEncoding encoding) {
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    GMimeStream* raw = content ? g_mime_data_wrapper_get_stream(content) : nullptr;
    if (!raw) return false;
    Ref<GMimeStream> encoded(g_mime_stream_mem_new());
    g_mime_stream_reset(raw);
    g_mime_stream_write_to_stream(raw, encoded.get());
    g_mime_stream_reset(raw);
    if (!has_long_line(view(g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(encoded.get()))))) return false;
    Ref<GMimeStream> decoded(g_mime_stream_mem_new());
    g_mime_data_wrapper_write_to_stream(content, decoded.get());
    g_mime_stream_reset(decoded.get());
    Ref<GMimeDataWrapper> plain(g_mime_data_wrapper_new_with_stream(decoded.get(), GMIME_CONTENT_ENCODING_DEFAULT));
    g_mime_part_set_content(part, plain.get());
    g_mime_part_set_content_encoding(part, encoding);
    return true;
}

// g_mime_message_foreach visits every part, multiparts included; only leaves carry content.
void reencode_if_long(GMimeObject*, GMimeObject* object, gpointer data) {
    // A forwarded message (message/rfc822) is one object to the walk: its own parts are walked too.
    if (GMIME_IS_MESSAGE_PART(object)) {
        if (GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(object)))
            g_mime_message_foreach(inner, reencode_if_long, data);
        return;
    }
    if (!GMIME_IS_PART(object)) return;
    GMimePart* part = GMIME_PART(object);
    const GMimeContentEncoding encoding = g_mime_part_get_content_encoding(part);
    if (encoding == GMIME_CONTENT_ENCODING_BASE64 || encoding == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE) {
        if (rewrap_if_long(part, encoding)) ++static_cast<Walk*>(data)->reencoded;
        return;
    }
    if (encoding != GMIME_CONTENT_ENCODING_DEFAULT && encoding != GMIME_CONTENT_ENCODING_7BIT &&
        encoding != GMIME_CONTENT_ENCODING_8BIT && encoding != GMIME_CONTENT_ENCODING_BINARY)
        return;
    GMimeDataWrapper* content = g_mime_part_get_content(part);
    if (!content) return;
    Ref<GMimeStream> decoded(g_mime_stream_mem_new());
    g_mime_data_wrapper_write_to_stream(content, decoded.get());
    GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(decoded.get()));
    if (!has_long_line(std::string_view(reinterpret_cast<const char*>(bytes->data), bytes->len))) return;
    g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE);
    ++static_cast<Walk*>(data)->reencoded;
}

}  // namespace

bool has_long_line(std::string_view text) {
    std::size_t line = 0;
    for (char c : text) {
        if (c == '\n') {
            line = 0;
        } else if (c != '\r' && ++line > kMaxLine) {
            return true;
        }
    }
    return false;
}

std::string fold_long_header_lines(std::string_view message) {
    const std::size_t header_end = body_start(message);
    std::string out;
    out.reserve(message.size() + 64);
    std::size_t at = 0;
    while (at < header_end) {
        std::size_t end = message.find("\r\n", at);
        if (end == std::string_view::npos || end > header_end) end = header_end;
        std::string rest;   // what is left of a line cut where it had no whitespace, with its space
        std::string_view line = message.substr(at, end - at);
        // Fold at the last space or tab that keeps the piece within 998 octets; the whitespace starts
        // the continuation line, so unfolding (RFC 5322 2.2.3) gives back the original line.
        // Never right after "Name:": that leaves the field's first line empty and helps nothing.
        const std::size_t colon = line.find(':');
        std::size_t earliest = colon == std::string_view::npos ? 1 : colon + 2;
        while (line.size() > kMaxLine) {
            std::size_t cut = line.find_last_of(" \t", kMaxLine);
            if (cut == std::string_view::npos || cut < earliest) cut = line.find_first_of(" \t", kMaxLine);
            if (cut == std::string_view::npos || cut < earliest || cut > kMaxLine) {
                // Nowhere to fold within 998 octets (a long token or URL): cut at 998 and start the
                // continuation with a space, as Postfix's smtp_line_length_limit does. Unfolded, the
                // value has one space more; left whole, Exchange refuses the message the client was
                // told is accepted.
                out.append(line.substr(0, kMaxLine)).append("\r\n");
                rest = " " + std::string(line.substr(kMaxLine));
                line = rest;
                earliest = 1;
                continue;
            }
            earliest = 1;
            out.append(line.substr(0, cut)).append("\r\n");
            line.remove_prefix(cut);
        }
        out.append(line);
        if (end < message.size() && end + 2 <= message.size() && message.substr(end, 2) == "\r\n") {
            out.append("\r\n");
            at = end + 2;
        } else {
            at = end;
        }
    }
    out.append(message.substr(std::min(at, message.size())));
    return out;
}

LongLineFix fix_long_lines(std::string_view original) {
    LongLineFix fix;
    // Text right after the fields, without the empty line: it gets one, or its long line would be
    // folded as if it were a field (and GMime would not see it as the body it is).
    std::string separated(original);
    if (const HeaderEnd end = header_end(original); !end.separated && end.at < original.size())
        separated.insert(end.at, "\r\n");
    const std::string_view message = separated;
    const std::size_t header_end = body_start(message);
    const std::string_view header = message.substr(0, header_end);
    const std::string_view body = message.substr(header_end);
    std::string text(message);
    if (has_long_line(body)) {
        init_gmime();
        const std::string lf = to_lf(message);
        Ref<GMimeStream> input(g_mime_stream_mem_new_with_buffer(lf.data(), lf.size()));
        Ref<GMimeParser> parser(g_mime_parser_new_with_stream(input.get()));
        g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
        Ref<GMimeMessage> parsed(g_mime_parser_construct_message(parser.get(), nullptr));
        if (!parsed) {
            fix.note = "the message could not be parsed as MIME; sent with its long lines";
        } else {
            Walk walk;
            g_mime_message_foreach(parsed.get(), reencode_if_long, &walk);
            fix.parts_reencoded = walk.reencoded;
            GMimeObject* top = g_mime_message_get_mime_part(parsed.get());
            // No MIME header at all: the body was plain text to the reader; it stays that.
            if (walk.reencoded > 0 && top && !has_field(header, "Content-Type")) {
                if (valid_utf8(body)) g_mime_object_set_content_type_parameter(top, "charset", "utf-8");
                else fix.note = "the body is not valid UTF-8: no charset declared for the re-encoded text";
            }
            if (walk.reencoded > 0 && !has_field(header, "MIME-Version"))
                g_mime_object_set_header(GMIME_OBJECT(parsed.get()), "MIME-Version", "1.0", nullptr);
            if (walk.reencoded > 0) {
                Ref<GMimeStream> output(g_mime_stream_mem_new());
                g_mime_object_write_to_stream(GMIME_OBJECT(parsed.get()), nullptr, output.get());
                GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(output.get()));
                text = to_crlf(std::string_view(reinterpret_cast<const char*>(bytes->data), bytes->len));
            } else {
                fix.note = "the long lines are in a part that cannot be re-encoded (already encoded); sent as they are";
            }
        }
    }
    std::string folded = fold_long_header_lines(text);
    fix.headers_folded = folded.size() != text.size();
    fix.message = std::move(folded);
    return fix;
}

}  // namespace relay
