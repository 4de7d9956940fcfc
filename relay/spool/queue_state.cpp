// Sidecar files of queued messages; see queue_state.hpp.
#include "relay/spool/queue_state.hpp"

#include "relay/core/durable_file.hpp"

#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <system_error>
#include <unistd.h>

#include <fmt/format.h>

namespace relay {
namespace fs = std::filesystem;

fs::path state_path(const fs::path& queue_file) { return fs::path(queue_file.string() + ".state"); }
fs::path hold_path(const fs::path& queue_file) { return fs::path(queue_file.string() + ".hold"); }

bool is_sidecar_name(const std::string& file_name) { return file_name.find('.') != std::string::npos; }

std::string format_state(const MessageState& state) {
    std::string out = fmt::format("attempts {}\n", state.attempts);
    out += fmt::format("next_try {}\n", std::chrono::duration_cast<std::chrono::milliseconds>(
                                            state.next_try.time_since_epoch()).count());
    std::string reply = state.last_reply;
    for (char& c : reply)
        if (c == '\r' || c == '\n') c = ' ';
    out += "last_reply " + reply + "\n";
    for (const auto& rcpt : state.rcpt_left) out += "rcpt " + rcpt + "\n";
    return out;
}

MessageState parse_state(const std::string& text) {
    MessageState state;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        auto sp = line.find(' ');
        std::string key = line.substr(0, sp);
        std::string value = sp == std::string::npos ? "" : line.substr(sp + 1);
        try {
            if (key == "attempts") state.attempts = static_cast<unsigned>(std::stoul(value));
            else if (key == "next_try")
                state.next_try = std::chrono::system_clock::time_point(std::chrono::milliseconds(std::stoll(value)));
            else if (key == "last_reply") state.last_reply = value;
            else if (key == "rcpt" && !value.empty()) state.rcpt_left.push_back(value);
        } catch (const std::exception&) {
            // A damaged number only costs retry timing.
        }
    }
    return state;
}

std::optional<MessageState> read_state(const fs::path& queue_file) {
    auto text = read_small_file(state_path(queue_file));
    if (!text) return std::nullopt;
    return parse_state(*text);
}

void write_state(const fs::path& queue_file, const MessageState& state) {
    fs::path target = state_path(queue_file);
    fs::path temp = fs::path(target.string() + ".tmp");
    std::string text = format_state(state);
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + temp.string());
    ssize_t n = ::write(fd, text.data(), text.size());
    int err = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(text.size())) {
        ::unlink(temp.c_str());
        throw std::system_error(n < 0 ? err : EIO, std::generic_category(), "write " + temp.string());
    }
    if (::rename(temp.c_str(), target.c_str()) != 0)
        throw std::system_error(errno, std::generic_category(), "rename " + temp.string());
}

void remove_sidecars(const fs::path& queue_file) {
    std::error_code ec;
    fs::remove(state_path(queue_file), ec);
    fs::remove(hold_path(queue_file), ec);
}

}  // namespace relay
