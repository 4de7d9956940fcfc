// `sendmail` (also when the binary is invoked as "sendmail"): a /usr/sbin/sendmail for programs that
// do not speak SMTP. Reads the message on stdin and submits it over SMTP to the relay's first listen
// address (from --config, $SMTP_OAUTH2_RELAY_CONFIG or the default file), so it is spooled and
// delivered like any other. Exit codes are sendmail's (sysexits.h): 0 queued, 64 usage, 65 bad
// message, 66 no input, 67 recipient refused, 69 refused, 75 try again later, 76 protocol error,
// 78 configuration error. A short blocking client: this runs once per message, not in the daemon.
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
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "relay/cli/cli.hpp"
#include "relay/cli/sendmail_message.hpp"
#include "conf/aliases.hpp"

namespace relay::cli {
namespace {

constexpr int EX_USAGE_ = 64, EX_DATAERR_ = 65, EX_NOINPUT_ = 66, EX_NOUSER_ = 67, EX_UNAVAILABLE_ = 69,
              EX_TEMPFAIL_ = 75, EX_PROTOCOL_ = 76, EX_CONFIG_ = 78;

constexpr const char* kSendmailHelp = R"(usage: smtp-oauth2-relay sendmail [-t] [-i] [-f FROM] [-F NAME] [--config FILE] [RCPT...]
       sendmail [-t] [-i] [-f FROM] [-F NAME] [RCPT...]     (the binary invoked as "sendmail")
       sendmail -bs | -bp | -bi;  mailq;  newaliases

Reads a message on stdin and submits it to the local relay (its first listen address) over SMTP.
  -t        also take recipients from the To:, Cc: and Bcc: headers (Resent-To/Cc/Bcc: when the
            message has them); Bcc: and Resent-Bcc: are removed in every mode
  -i, -oi   a line with a single "." does not end the message
  -f FROM   envelope sender (default: the default account's email, else USER@hostname); -r is the same
  -F NAME   full name for the From: header added when the message has none
  -bm       submit (the default); -bs: SMTP on stdin/stdout; -bp: the queue (mailq); -bi, -I: newaliases
  -B, -C, -N, -R, -V, -X, -L, -h (with a value), -o..., -v, -U, -G, -n, -m, -q: accepted and ignored
A bare recipient (root, www-data, root@localhost) resolves through [aliases] in the config, then
the alias_file (/etc/aliases), then gets the domain of the default account's email.
The configuration comes from --config, $SMTP_OAUTH2_RELAY_CONFIG or /etc/smtp-oauth2-relay/config.toml.
exit codes (sysexits.h): 0 queued, 64 usage, 65 message refused as malformed or too large,
66 no input, 67 recipients refused, 69 refused, 75 relay unreachable or busy: try later,
76 unexpected reply, 78 configuration error
)";

int fail(int code, const std::string& message) {
    std::fprintf(stderr, "sendmail: %s\n", message.c_str());
    return code;
}

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

// Bare names and local domains through [aliases], the alias_file and the default domain.
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

// -bs: the caller speaks SMTP itself (PHP's Symfony Mailer does, by default); we only carry bytes
// between stdin/stdout and the relay, so the relay's replies and codes reach it unchanged.
int smtp_on_stdin(const conf::HostPort& server) {
    Client client;
    if (auto error = client.connect(server); !error.empty())
        return fail(EX_TEMPFAIL_, fmt::format("cannot connect to the relay at {}: {}; try again later", server.to_string(), error));
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {client.fd(), POLLIN, 0}};
    char buffer[65536];
    bool stdin_open = true;
    for (;;) {
        fds[0].fd = stdin_open ? STDIN_FILENO : -1;
        if (::poll(fds, 2, 300000) <= 0) {
            if (errno == EINTR) continue;
            return fail(EX_TEMPFAIL_, "no traffic for 300 s");
        }
        if (fds[1].revents) {
            ssize_t n = ::recv(client.fd(), buffer, sizeof buffer, 0);
            if (n <= 0) return kOk;   // the relay closed the session (after QUIT, or on an error it reported)
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

}  // namespace

int run_sendmail(const std::vector<std::string>& args) {
    for (const auto& a : args) {
        if (a == "--help") {   // not -h: that is sendmail's hop count
            std::fputs(kSendmailHelp, stdout);
            return kOk;
        }
    }
    sendmail::Options options;
    std::string config_path;
    if (auto problem = sendmail::parse_arguments(args, options, config_path); !problem.empty()) {
        std::fprintf(stderr, "sendmail: %s\n\n%s", problem.c_str(), kSendmailHelp);
        return EX_USAGE_;
    }
    if (config_path.empty()) {
        const char* env = std::getenv("SMTP_OAUTH2_RELAY_CONFIG");
        config_path = env && *env ? env : kDefaultConfig;
    }
    if (options.mode == sendmail::Mode::rebuild_aliases) {
        // Nothing to compile: [aliases] and the alias_file are read at each submission.
        std::printf("newaliases: nothing to rebuild; smtp-oauth2-relay reads [aliases] in %s and its alias_file "
                    "(/etc/aliases by default) each time a message is submitted\n", config_path.c_str());
        return kOk;
    }
    if (options.mode == sendmail::Mode::list_queue) return run_queue({"list", "--config", config_path});
    ParsedOptions config_option;
    config_option.values["--config"] = config_path;
    auto config = load_config_or_report(config_option);
    if (!config) return EX_CONFIG_;
    if (config->relay.listen.empty()) return fail(EX_CONFIG_, "the configuration has no listen address");
    conf::HostPort server = config->relay.listen.front();
    // A wildcard listen address is reached over loopback.
    if (server.host == "0.0.0.0") server.host = "127.0.0.1";
    if (server.host == "::") server.host = "::1";
    if (options.mode == sendmail::Mode::smtp_on_stdin) return smtp_on_stdin(server);

    std::string input;
    char chunk[65536];
    for (;;) {
        std::size_t n = std::fread(chunk, 1, sizeof chunk, stdin);
        input.append(chunk, n);
        if (n < sizeof chunk) break;
        if (input.size() > config->relay.max_message_size + 65536)
            return fail(EX_DATAERR_, fmt::format("message larger than max_message_size ({} bytes)",
                                                 config->relay.max_message_size));
    }
    if (std::ferror(stdin)) return fail(EX_NOINPUT_, std::string("cannot read the message on stdin: ") + std::strerror(errno));

    std::string user = "nobody";
    if (const passwd* pw = ::getpwuid(::getuid())) user = pw->pw_name;
    // Office 365 accepts only the mailbox's own address (or one it may send as) as the sender, so
    // the default is the default account's mailbox rather than the traditional user@host.
    std::string default_from = user + "@" + config->relay.hostname;
    if (config->relay.default_account)
        if (const conf::Account* account = config->find_account(*config->relay.default_account)) default_from = account->email;
    // A bare -f name ("-f root", "-r www-data") is no mailbox Office 365 would accept as the sender.
    if (options.from.find('@') == std::string::npos) options.from.clear();
    std::string from = options.from.empty() ? default_from : options.from;
    auto prepared = sendmail::prepare(input, options, from, rfc5322_date());
    prepared.recipients = resolve_aliases(*config, prepared.recipients);
    if (prepared.recipients.empty())
        return fail(EX_USAGE_, options.recipients_from_headers ? "no recipients in the arguments or To:/Cc:/Bcc:"
                                                                : "no recipients given (use -t to read them from the headers)");
    for (const auto& r : prepared.recipients)
        if (std::any_of(r.begin(), r.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }) ||
            r.find_first_of("<>") != std::string::npos)
            return fail(EX_USAGE_, "malformed recipient address in the message header");
    if (from.find_first_of("\r\n<>") != std::string::npos) return fail(EX_USAGE_, "malformed sender address");

    Client client;
    if (auto error = client.connect(server); !error.empty())
        return fail(EX_TEMPFAIL_, fmt::format("cannot connect to the relay at {}: {}; try again later", server.to_string(), error));
    auto step = [&](std::pair<int, std::string> r, int expected, const char* what) -> int {
        if (r.first / 100 == expected / 100) return 0;
        std::fprintf(stderr, "sendmail: %s: %s\n", what, r.second.c_str());
        client.command("QUIT");
        return exit_for(r.first);
    };
    if (int rc = step(client.reply(), 220, "greeting")) return rc;
    if (int rc = step(client.command("EHLO localhost"), 250, "EHLO")) return rc;
    if (int rc = step(client.command("MAIL FROM:<" + from + ">"), 250, "MAIL FROM")) return rc;
    std::size_t accepted = 0;
    int rejected_code = 0;
    for (const auto& r : prepared.recipients) {
        auto reply = client.command("RCPT TO:<" + r + ">");
        if (reply.first / 100 == 2) {
            ++accepted;
        } else {
            std::fprintf(stderr, "sendmail: recipient %s refused: %s\n", r.c_str(), reply.second.c_str());
            rejected_code = reply.first;
        }
    }
    if (accepted == 0) {
        client.command("QUIT");
        return rejected_code / 100 == 5 ? EX_NOUSER_ : exit_for(rejected_code);
    }
    if (int rc = step(client.command("DATA"), 354, "DATA")) return rc;
    if (!client.send(sendmail::dot_stuff(prepared.message))) return fail(EX_TEMPFAIL_, "connection lost while sending");
    if (int rc = step(client.reply(), 250, "message refused")) return rc;
    client.command("QUIT");
    return kOk;
}

}  // namespace relay::cli
