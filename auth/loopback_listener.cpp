// One-shot loopback HTTP listener for the authorization code redirect (see loopback_listener.hpp).
// It reads only a request head (GET has no body), with a size limit and a per-connection deadline so
// a stray client cannot stall it, and replies with Connection: close.
#include "auth/loopback_listener.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

namespace relay::auth {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxRequestHead = 16384;
constexpr auto kPerConnection = std::chrono::seconds(10);

int bind_socket(int family, const std::string& address, std::uint16_t port) {
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error(fmt::format("socket(): {}", std::strerror(errno)));
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (family == AF_INET) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        ::inet_pton(AF_INET, address.c_str(), &sin->sin_addr);
        length = sizeof *sin;
    } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        ::inet_pton(AF_INET6, address.c_str(), &sin6->sin6_addr);
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        length = sizeof *sin6;
    }
    if (::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 || ::listen(fd, 8) != 0) {
        const int saved = errno;
        ::close(fd);
        throw std::runtime_error(fmt::format("cannot listen on {}:{}: {}", address, port, std::strerror(saved)));
    }
    return fd;
}

std::uint16_t bound_port(int fd) {
    sockaddr_storage storage{};
    socklen_t length = sizeof storage;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length);
    if (storage.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
    return ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
}

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 60000));
}

std::string html_escape(std::string_view text) {
    std::string out;
    for (char c : text) {
        switch (c) {
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '&': out += "&amp;"; break;
        case '"': out += "&quot;"; break;
        default: out += c;
        }
    }
    return out;
}

std::string page(std::string_view title, std::string_view text) {
    return fmt::format("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>smtp-oauth2-relay: {0}</title></head>\n"
                       "<body style=\"font-family:sans-serif;margin:3em\"><h1>{0}</h1><p>{1}</p></body></html>\n",
                       html_escape(title), html_escape(text));
}

void send_response(int fd, int status, std::string_view reason, const std::string& body) {
    std::string response = fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n"
        "Cache-Control: no-store\r\nConnection: close\r\n\r\n{}", status, reason, body.size(), body);
    std::size_t sent = 0;
    while (sent < response.size()) {
        ssize_t n = ::send(fd, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return;
        }
        sent += static_cast<std::size_t>(n);
    }
}

// A connection whose request head is still arriving. Browsers open speculative connections that
// never send anything, so several are read side by side instead of one after another.
struct Pending {
    int fd;
    Clock::time_point give_up;
    std::string head;
};

}  // namespace

LoopbackListener::LoopbackListener(const conf::LoopbackRedirect& redirect)
    : path_(redirect.path.empty() ? "/" : redirect.path) {
    if (redirect.host == "localhost" || redirect.host == "localhost.") {
        sockets_.push_back(bind_socket(AF_INET, "127.0.0.1", redirect.port));
        port_ = bound_port(sockets_.front());
        try {
            sockets_.push_back(bind_socket(AF_INET6, "::1", port_));
        } catch (const std::exception&) {
            // No IPv6 loopback here (or the port is taken on it): 127.0.0.1 is enough.
        }
    } else {
        const bool v6 = redirect.host.find(':') != std::string::npos;
        sockets_.push_back(bind_socket(v6 ? AF_INET6 : AF_INET, redirect.host, redirect.port));
        port_ = bound_port(sockets_.front());
    }
}

LoopbackListener::~LoopbackListener() {
    for (int fd : sockets_) ::close(fd);
}

std::optional<RedirectOutcome> LoopbackListener::wait(Clock::time_point deadline, const std::string& expected_state) {
    std::vector<Pending> pending;
    auto close_all = [&] {
        for (const auto& p : pending) ::close(p.fd);
    };
    while (Clock::now() < deadline) {
        std::vector<pollfd> polls;
        for (int fd : sockets_) polls.push_back(pollfd{fd, POLLIN, 0});
        auto wake = deadline;
        for (const auto& p : pending) {
            polls.push_back(pollfd{p.fd, POLLIN, 0});
            wake = std::min(wake, p.give_up);
        }
        int ready = ::poll(polls.data(), polls.size(), remaining_ms(wake));
        if (ready < 0 && errno != EINTR) break;
        for (std::size_t i = 0; i < sockets_.size(); ++i) {
            if (!(polls[i].revents & POLLIN)) continue;
            int client = ::accept4(sockets_[i], nullptr, nullptr, SOCK_CLOEXEC);
            if (client >= 0) pending.push_back(Pending{client, Clock::now() + kPerConnection, {}});
        }
        for (std::size_t i = sockets_.size(); i < polls.size(); ++i) {
            Pending& p = pending[i - sockets_.size()];
            if (polls[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                char buffer[4096];
                ssize_t n = ::recv(p.fd, buffer, sizeof buffer, 0);
                if (n > 0) p.head.append(buffer, static_cast<std::size_t>(n));
                else if (n == 0 || errno != EINTR) p.give_up = Clock::now();  // closed or broken
            }
            if (p.head.find("\r\n\r\n") == std::string::npos) {
                if (p.head.size() > kMaxRequestHead) p.give_up = Clock::now();
                continue;
            }
            auto outcome = answer(p.fd, p.head, expected_state);
            p.give_up = Clock::now();
            p.head.clear();
            if (outcome) {
                close_all();
                return outcome;
            }
        }
        // Drop answered, closed and silent connections.
        const auto now = Clock::now();
        std::erase_if(pending, [&](const Pending& p) {
            if (p.give_up > now) return false;
            ::close(p.fd);
            return true;
        });
    }
    close_all();
    return std::nullopt;
}

std::optional<RedirectOutcome> LoopbackListener::answer(int client, const std::string& head,
                                                        const std::string& expected_state) const {
    const std::string request_line = head.substr(0, head.find("\r\n"));
    const auto first_space = request_line.find(' ');
    const auto second_space = request_line.find(' ', first_space + 1);
    if (first_space == std::string::npos || second_space == std::string::npos) {
        send_response(client, 400, "Bad Request", page("Bad request", "This is not an HTTP request."));
        return std::nullopt;
    }
    const std::string method = request_line.substr(0, first_space);
    const std::string target = request_line.substr(first_space + 1, second_space - first_space - 1);
    std::optional<RedirectParameters> parameters;
    if (method != "GET") {
        send_response(client, 405, "Method Not Allowed", page("Method not allowed", "Only GET is served here."));
        return std::nullopt;
    }
    if (redirect_path(target) != path_) {
        send_response(client, 404, "Not Found", page("Not found", "This is not the sign-in redirect address."));
        return std::nullopt;
    }
    if (!(parameters = parse_redirect(target))) {
        send_response(client, 400, "Bad Request",
                      page("No authorization code", "This request carries neither a code nor an error."));
        return std::nullopt;
    }
    RedirectOutcome outcome{*parameters, parameters->state == expected_state};
    if (!parameters->error.empty())
        send_response(client, 200, "OK",
                      page("Sign-in failed", "The provider answered " + parameters->error +
                                                 (parameters->error_description.empty() ? "" : ": " + parameters->error_description) +
                                                 ". See the terminal for what to do."));
    else if (!outcome.state_matches)
        send_response(client, 400, "Bad Request",
                      page("Sign-in refused", "The state parameter does not match the one this authorization started "
                                              "with, so the code was not used. Run authorize again."));
    else
        send_response(client, 200, "OK", page("Done", "smtp-oauth2-relay received the authorization. "
                                                      "You can close this tab and go back to the terminal."));
    return outcome;
}

}  // namespace relay::auth
