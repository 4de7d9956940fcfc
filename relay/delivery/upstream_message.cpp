// Queued message -> upstream bytes; see upstream_message.hpp.
#include "relay/delivery/upstream_message.hpp"

#include <algorithm>
#include <cstring>

#include "relay/core/log.hpp"
#include "relay/delivery/long_lines.hpp"

namespace relay {
namespace {

class StringBodyReader final : public BodyReader {
public:
    explicit StringBodyReader(const std::string& text) : text_(text) {}
    std::size_t read(char* buffer, std::size_t size) override {
        const std::size_t n = std::min(size, text_.size() - at_);
        std::memcpy(buffer, text_.data() + at_, n);
        at_ += n;
        return n;
    }
    void rewind() override { at_ = 0; }

private:
    const std::string& text_;
    std::size_t at_ = 0;
};

}  // namespace

std::string read_stored(const QueuedMessage& message, std::uint64_t limit) {
    SpoolBodyReader body(message);
    std::string text;
    text.resize(static_cast<std::size_t>(std::min(message.size, limit)));
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t n = body.read(text.data() + at, text.size() - at);
        if (n == 0) break;
        at += n;
    }
    text.resize(at);
    return text;
}


bool needs_rewrite(const QueuedMessage& message) { return message.long_lines; }

UpstreamMessage upstream_as_stored(const QueuedMessage& message) {
    UpstreamMessage out;
    out.size = message.size;
    out.eight_bit = message.envelope.eight_bit || message.eight_bit_data;
    return out;
}

UpstreamMessage prepare_upstream_message(const QueuedMessage& message) {
    UpstreamMessage out = upstream_as_stored(message);
    if (!needs_rewrite(message)) return out;
    // In memory: only messages with long lines get here, at most max_message_size (35 MiB by
    // default) plus the quoted-printable growth of the re-encoded parts.
    LongLineFix fix = fix_long_lines(read_stored(message));
    out.note = fix.note;
    out.parts_reencoded = fix.parts_reencoded;
    out.headers_folded = fix.headers_folded;
    out.size = fix.message.size();
    out.bytes = std::move(fix.message);
    out.rewritten = true;
    return out;
}

void log_rewrite(const QueuedMessage& message, const UpstreamMessage& prepared) {
    if (!prepared.rewritten) return;
    log::info("long_lines_reencoded",
              {{"queue_id", message.id}, {"parts", prepared.parts_reencoded},
               {"headers_folded", prepared.headers_folded ? "yes" : "no"},
               {"detail", !prepared.note.empty()          ? prepared.note
                          : prepared.parts_reencoded > 0 ? std::string("quoted-printable: recipients see the same text")
                                                         : std::string("only header lines folded")}});
}

std::unique_ptr<BodyReader> upstream_body(const QueuedMessage& message, const UpstreamMessage& prepared) {
    if (prepared.bytes) return std::make_unique<StringBodyReader>(*prepared.bytes);
    return std::make_unique<SpoolBodyReader>(message);
}

UpstreamMessage read_upstream_message(const QueuedMessage& message) {
    UpstreamMessage prepared = prepare_upstream_message(message);
    if (!prepared.bytes) prepared.bytes = read_stored(message);
    return prepared;
}

}  // namespace relay
