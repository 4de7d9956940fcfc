// `hash-password`: turns a local user's password into the salted PBKDF2 string that goes into
// `[[users]] password_hash`, so the config file never holds the password itself. On a terminal the
// password is read twice without echo (termios); otherwise one line is read from stdin (scripts).
#include <cstdio>
#include <iostream>
#include <string>

#include <openssl/crypto.h>
#include <termios.h>
#include <unistd.h>

#include "auth/password_hash.hpp"
#include "relay/cli/cli.hpp"

namespace relay::cli {
namespace {

constexpr std::size_t kMinPasswordLength = 12;

constexpr const char* kHashPasswordHelp = R"(usage: smtp-oauth2-relay hash-password

  Reads a password (twice, without echo, on a terminal; one line from stdin otherwise) and prints
  $pbkdf2-sha256$<iterations>$<salt>$<hash> for `password_hash = "..."` in a [[users]] table.
  PBKDF2-HMAC-SHA256, 310000 iterations, 16-byte random salt. At least 12 characters.
)";

// One line from stdin; on a terminal with echo off, restored afterwards even on end of input.
std::optional<std::string> read_line(bool terminal, const char* prompt) {
    termios saved{};
    if (terminal) {
        std::fputs(prompt, stderr);
        std::fflush(stderr);
        tcgetattr(STDIN_FILENO, &saved);
        termios quiet = saved;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    std::string line;
    const bool got = static_cast<bool>(std::getline(std::cin, line));
    if (terminal) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
        std::fputs("\n", stderr);
    }
    if (!got) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

void wipe(std::string& s) { OPENSSL_cleanse(s.data(), s.size()); }

}  // namespace

int run_hash_password(const std::vector<std::string>& args) {
    auto options = parse_options("hash-password", args, {}, kHashPasswordHelp);
    if (!options) return kUsageError;
    if (options->help) return kOk;
    const bool terminal = ::isatty(STDIN_FILENO) != 0;
    auto first = read_line(terminal, "Password: ");
    if (!first || first->empty()) {
        std::fputs("hash-password: no password given (expected one line on stdin)\n", stderr);
        return kUsageError;
    }
    // NIST SP 800-63B 5.1.1.2 asks at least 8 characters of a memorized secret; we ask 12, since a
    // device's password is typed once into its settings page and a longer one costs nothing.
    if (first->size() < kMinPasswordLength) {
        std::fprintf(stderr, "hash-password: the password has %zu characters; use at least %zu (nothing printed)\n",
                     first->size(), kMinPasswordLength);
        return kUsageError;
    }
    if (terminal) {
        auto second = read_line(terminal, "Again: ");
        const bool same = second && *second == *first;
        if (second) wipe(*second);
        if (!same) {
            wipe(*first);
            std::fputs("hash-password: the two passwords differ; nothing printed\n", stderr);
            return kRuntimeError;
        }
    }
    const std::string hashed = auth::hash_password(*first).to_string();
    wipe(*first);
    std::printf("%s\n", hashed.c_str());
    return kOk;
}

}  // namespace relay::cli
