// `status`: asks the running relay over its control socket (relay.control_socket, default
// state_dir/control.sock, mode 0600: run it as root or as the relay's user) and prints listening
// addresses, queue depth by state, the oldest message's age and each account's token and hold state.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "relay/core/states.hpp"

#include "relay/cli/cli.hpp"
#include "relay/service/status.hpp"

namespace relay::cli {
namespace {

constexpr const char* kStatusHelpHead = R"(usage: smtp-oauth2-relay status [--json] [--config FILE]

  status   asks the running relay (over relay.control_socket) for listening addresses, queue depth
           by state, the oldest message's age, and per account: its state, the hold reason and what
           to do, the last error, token validity and last refresh. --json prints the raw snapshot.
           Exit 1 when the relay cannot be reached.
)";

// The help with the state words (relay/core/states.hpp), the same in queue list and metrics.
const std::string& status_help() {
    static const std::string help = [] {
        std::string text = std::string(kStatusHelpHead) + "\n  message states:\n";
        for (const auto& s : state::kMessageStates) text += fmt::format("    {:<18} {}\n", s.name, s.meaning);
        text += "  account states:\n";
        for (const auto& s : state::kAccountStates) text += fmt::format("    {:<18} {}\n", s.name, s.meaning);
        return text;
    }();
    return help;
}

// One request, the whole answer (the relay closes after writing it).
std::optional<std::string> ask(const std::string& path, std::string& error) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = std::strerror(errno);
        return std::nullopt;
    }
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::send(fd, "status\n", 7, MSG_NOSIGNAL) != 7) {
        error = std::strerror(errno);
        ::close(fd);
        return std::nullopt;
    }
    std::string answer;
    char buffer[4096];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            error = std::strerror(errno);
            ::close(fd);
            return std::nullopt;
        }
        if (n == 0) break;
        answer.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return answer;
}

}  // namespace

int run_status(const std::vector<std::string>& args) {
    auto options = parse_options("status", args, {{"--json", false}}, status_help().c_str());
    if (!options) return kUsageError;
    if (options->help) return kOk;
    if (!options->positional.empty()) {
        std::fprintf(stderr, "smtp-oauth2-relay status: unexpected argument '%s'\n\n%s",
                     options->positional[0].c_str(), status_help().c_str());
        return kUsageError;
    }
    auto config = load_config_or_report(*options);
    if (!config) return kUsageError;
    const std::string path = config->relay.control_socket.string();
    std::string error;
    auto answer = ask(path, error);
    if (!answer) {
        std::fprintf(stderr, "smtp-oauth2-relay status: cannot reach the relay at %s: %s (is it running? "
                     "the socket is readable by the relay's user and root only)\n", path.c_str(), error.c_str());
        return kRuntimeError;
    }
    boost::system::error_code ec;
    boost::json::value snapshot = boost::json::parse(*answer, ec);
    if (ec || !snapshot.is_object()) {
        std::fprintf(stderr, "smtp-oauth2-relay status: unexpected answer from %s\n", path.c_str());
        return kRuntimeError;
    }
    if (options->has("--json")) std::printf("%s\n", answer->c_str());
    else std::fputs(render_status(snapshot.as_object()).c_str(), stdout);
    return kOk;
}

}  // namespace relay::cli
