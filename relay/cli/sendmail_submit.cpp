// See sendmail_submit.hpp.
#include "relay/cli/sendmail_submit.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "conf/aliases.hpp"
#include "relay/spool/received_header.hpp"

namespace relay::sendmail {
namespace {

// A blocking line-oriented SMTP client over one socket.
class Client {
public:
    ~Client() {
        if (fd_ >= 0) ::close(fd_);
    }

    std::string connect(const conf::HostPort& to) {
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICSERV;
        addrinfo* found = nullptr;
        if (int rc = ::getaddrinfo(to.host.c_str(), std::to_string(to.port).c_str(), &hints, &found); rc != 0)
            return gai_strerror(rc);
        std::string error = "no address";
        for (addrinfo* a = found; a; a = a->ai_next) {
            fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
            if (fd_ < 0) continue;
            timeval timeout{300, 0};   // RFC 5321 4.5.3.2: a client waits minutes, not seconds
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
            ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
            if (::connect(fd_, a->ai_addr, a->ai_addrlen) == 0) break;
            error = std::strerror(errno);
            ::close(fd_);
            fd_ = -1;
        }
        ::freeaddrinfo(found);
        return fd_ >= 0 ? std::string() : error;
    }

    bool send(std::string_view data) {
        while (!data.empty()) {
            ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            data.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    // A whole (possibly multi-line) reply; code 0 when the connection broke.
    std::pair<int, std::string> reply() {
        std::string text;
        for (;;) {
            auto nl = buffer_.find("\r\n");
            if (nl == std::string::npos) {
                char chunk[1024];
                ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) return {0, text.empty() ? "connection closed" : text};
                buffer_.append(chunk, static_cast<std::size_t>(n));
                continue;
            }
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 2);
            text += (text.empty() ? "" : " / ") + line;
            if (line.size() < 4 || line[3] != '-') {
                int code = line.size() >= 3 ? std::atoi(line.substr(0, 3).c_str()) : 0;
                return {code, text};
            }
        }
    }

    std::pair<int, std::string> command(const std::string& line) {
        if (!send(line + "\r\n")) return {0, "connection closed"};
        return reply();
    }

    int fd() const { return fd_; }

private:
    int fd_ = -1;
    std::string buffer_;
};

// 4xx and a broken connection: try later. 5xx: refused (552: too large -> data error).
int exit_for(int code) {
    if (code == 0 || (code >= 400 && code < 500)) return EX_TEMPFAIL_;
    if (code == 552 || code == 554 || code == 501) return EX_DATAERR_;
    if (code >= 500) return EX_UNAVAILABLE_;
    return EX_PROTOCOL_;
}

std::string rfc5322_date() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char buffer[64];
    std::strftime(buffer, sizeof buffer, "%a, %d %b %Y %H:%M:%S %z", &tm);
    return buffer;
}

}  // namespace

conf::HostPort relay_address(const conf::Config& config) {
    conf::HostPort server = config.relay.listen.front();
    if (server.host == "0.0.0.0") server.host = "127.0.0.1";
    if (server.host == "::") server.host = "::1";
    return server;
}

std::vector<std::string> resolve_aliases(const conf::Config& config, const std::vector<std::string>& recipients) {
    conf::AliasTable system;
    if (!config.relay.alias_file.empty()) {
        std::ifstream in(config.relay.alias_file);
        if (in) {
            std::stringstream text;
            text << in.rdbuf();
            system = conf::parse_alias_file(text.str());
        }
    }
    conf::AliasResolver resolver;
    resolver.config_aliases = &config.aliases;
    resolver.system_aliases = &system;
    const conf::Account* account = config.relay.default_account ? config.find_account(*config.relay.default_account) : nullptr;
    if (!account && !config.accounts.empty()) account = &config.accounts.begin()->second;
    if (account && account->email.find('@') != std::string::npos)
        resolver.default_domain = account->email.substr(account->email.rfind('@') + 1);
    else
        resolver.default_domain = config.relay.hostname;
    resolver.local_domains = {"localhost", "localhost.localdomain", config.relay.hostname};
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0 && host[0]) resolver.local_domains.emplace_back(host);
    for (auto& d : resolver.local_domains)
        for (auto& c : d) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::vector<std::string> out;
    for (const auto& r : recipients) {
        for (auto& a : resolver.resolve(r)) {
            if (std::none_of(out.begin(), out.end(), [&](const std::string& o) { return o == a; })) out.push_back(std::move(a));
        }
    }
    return out;
}

// The caller speaks SMTP itself (PHP's Symfony Mailer does, by default); we only carry bytes
// between stdin/stdout and the relay, so the relay's replies and codes reach it unchanged.
int smtp_on_stdin(const conf::HostPort& server, bool* reached) {
    Client client;
    if (auto error = client.connect(server); !error.empty()) {
        if (reached) {
            *reached = false;
            return EX_TEMPFAIL_;
        }
        std::fprintf(stderr, "sendmail: cannot connect to the relay at %s: %s; try again later\n",
                     server.to_string().c_str(), error.c_str());
        return EX_TEMPFAIL_;
    }
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {client.fd(), POLLIN, 0}};
    char buffer[65536];
    bool stdin_open = true;
    for (;;) {
        fds[0].fd = stdin_open ? STDIN_FILENO : -1;
        const int ready = ::poll(fds, 2, 300000);
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) {
            std::fputs("sendmail: no traffic for 300 s\n", stderr);
            return EX_TEMPFAIL_;
        }
        if (fds[1].revents) {
            ssize_t n = ::recv(client.fd(), buffer, sizeof buffer, 0);
            if (n <= 0) return 0;   // the relay closed the session (after QUIT, or on an error it reported)
            for (ssize_t done = 0; done < n;) {
                ssize_t w = ::write(STDOUT_FILENO, buffer + done, static_cast<std::size_t>(n - done));
                if (w <= 0) return EX_TEMPFAIL_;
                done += w;
            }
        }
        if (stdin_open && fds[0].revents) {
            ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
            if (n <= 0) {
                stdin_open = false;
                ::shutdown(client.fd(), SHUT_WR);
            } else if (!client.send(std::string_view(buffer, static_cast<std::size_t>(n)))) {
                return EX_TEMPFAIL_;
            }
        }
    }
}


SubmitResult submit_message(const conf::Config& config, Options options, std::string_view input, const std::string& user) {
    SubmitResult out;
    auto fail = [&](int code, std::string problem) {
        out.exit_code = code;
        out.problem = std::move(problem);
        return out;
    };
    if (config.relay.listen.empty()) return fail(EX_CONFIG_, "the configuration has no listen address");
    if (input.size() > config.relay.max_message_size + 65536)
        return fail(EX_DATAERR_, fmt::format("message larger than max_message_size ({} bytes)", config.relay.max_message_size));
    // Office 365 accepts only the mailbox's own address (or one it may send as) as the sender, so
    // the default is the default account's mailbox rather than the traditional user@host.
    std::string default_from = user + "@" + config.relay.hostname;
    if (config.relay.default_account)
        if (const conf::Account* account = config.find_account(*config.relay.default_account)) default_from = account->email;
    // A bare -f name ("-f root", "-r www-data") is no mailbox Office 365 would accept as the sender.
    if (options.from.find('@') == std::string::npos) options.from.clear();
    const std::string from = options.from.empty() ? default_from : options.from;
    auto prepared = prepare(input, options, from, rfc5322_date());
    prepared.recipients = resolve_aliases(config, prepared.recipients);
    if (config.relay.add_received_header) {
        // The local hop, as Exim writes it ("from local (user NAME) ... with local"): the relay's own
        // Received for the SMTP hop over loopback (with the queue id) then goes on top of it.
        Envelope local;
        local.helo = user;
        local.rcpt_to = prepared.recipients;
        prepared.message.insert(0, received_header(local, config.relay.hostname, "", std::chrono::system_clock::now()));
    }
    out.recipients = prepared.recipients;
    if (prepared.recipients.empty())
        return fail(EX_USAGE_, options.recipients_from_headers ? "no recipients in the arguments or To:/Cc:/Bcc:"
                                                                : "no recipients given (use -t to read them from the headers)");
    for (const auto& r : prepared.recipients)
        if (std::any_of(r.begin(), r.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }) ||
            r.find_first_of("<>") != std::string::npos)
            return fail(EX_USAGE_, "malformed recipient address in the message header");
    if (from.find_first_of("\r\n<> ") != std::string::npos) return fail(EX_USAGE_, "malformed sender address");

    const conf::HostPort server = relay_address(config);
    Client client;
    if (auto error = client.connect(server); !error.empty())
        return fail(EX_TEMPFAIL_, fmt::format("cannot connect to the relay at {}: {}; try again later", server.to_string(), error));
    auto greeting = client.reply();
    out.reached_relay = greeting.first != 0;
    auto step = [&](std::pair<int, std::string> r, int expected, const char* what) -> int {
        if (r.first / 100 == expected / 100) return 0;
        out.problem = fmt::format("{}: {}", what, r.second);
        client.command("QUIT");
        return exit_for(r.first);
    };
    if ((out.exit_code = step(greeting, 220, "greeting"))) return out;
    if ((out.exit_code = step(client.command("EHLO localhost"), 250, "EHLO"))) return out;
    if ((out.exit_code = step(client.command("MAIL FROM:<" + from + ">"), 250, "MAIL FROM"))) return out;
    std::size_t accepted = 0;
    int rejected_code = 0;
    for (const auto& r : prepared.recipients) {
        auto reply = client.command("RCPT TO:<" + r + ">");
        if (reply.first / 100 == 2) {
            ++accepted;
        } else {
            out.problem += fmt::format("{}recipient {} refused: {}", out.problem.empty() ? "" : "; ", r, reply.second);
            rejected_code = reply.first;
        }
    }
    if (accepted == 0) {
        client.command("QUIT");
        out.exit_code = rejected_code / 100 == 5 ? EX_NOUSER_ : exit_for(rejected_code);
        return out;
    }
    if ((out.exit_code = step(client.command("DATA"), 354, "DATA"))) return out;
    if (!client.send(dot_stuff(prepared.message))) return fail(EX_TEMPFAIL_, "connection lost while sending");
    if ((out.exit_code = step(client.reply(), 250, "message refused"))) return out;
    client.command("QUIT");
    return out;
}

}  // namespace relay::sendmail
