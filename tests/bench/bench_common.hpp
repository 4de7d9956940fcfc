// Small helpers shared by the benchmark's load generator and sink: SMTP reply framing over a byte
// buffer, base64, the monotonic clock in nanoseconds (CLOCK_MONOTONIC, the same clock in every process
// on the machine, so the run script can compare timestamps from the generator and the sink), and
// command-line flags. Benchmark code only: it is never linked into the relay.
#pragma once

#include <utility>  // GCC 12 + Boost 1.81: must precede Asio headers

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bench {

inline std::int64_t monotonic_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch()).count();
}

// "--name value" pairs and bare "--flag"s, looked up by name with a default.
class Flags {
public:
    Flags(int argc, char** argv) {
        for (int i = 1; i < argc; ++i) {
            std::string arg = argv[i];
            if (!arg.starts_with("--")) throw std::invalid_argument("unexpected argument " + arg);
            if (i + 1 < argc && !std::string_view(argv[i + 1]).starts_with("--"))
                values_[arg.substr(2)] = argv[++i];
            else
                values_[arg.substr(2)] = "";
        }
    }
    bool has(const std::string& name) const { return values_.count(name) != 0; }
    std::string str(const std::string& name, std::string fallback = {}) const {
        auto it = values_.find(name);
        return it == values_.end() ? fallback : it->second;
    }
    long long num(const std::string& name, long long fallback) const {
        auto it = values_.find(name);
        return it == values_.end() ? fallback : std::stoll(it->second);
    }
    double real(const std::string& name, double fallback) const {
        auto it = values_.find(name);
        return it == values_.end() ? fallback : std::stod(it->second);
    }

private:
    std::map<std::string, std::string> values_;
};

inline std::string base64_encode(std::string_view in) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (i + 1 == in.size()) {
        unsigned v = (unsigned char)in[i] << 16;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

// nullopt on any character outside the alphabet (a malformed SASL response).
inline std::optional<std::string> base64_decode(std::string_view in) {
    std::string out;
    unsigned acc = 0;
    int bits = 0;
    for (char c : in) {
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '=') break;
        else return std::nullopt;
        acc = acc << 6 | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xFF);
        }
    }
    return out;
}

// Complete SMTP replies (RFC 5321 4.2: "ddd-" continues, "ddd " ends) taken off the front of `buffer`.
// Returns the final line's code, or 0 when the reply is not complete yet.
inline int take_reply(std::string& buffer, std::string* text = nullptr) {
    std::size_t start = 0;
    while (true) {
        std::size_t eol = buffer.find("\r\n", start);
        if (eol == std::string::npos) return 0;
        if (eol - start < 3) throw std::runtime_error("malformed reply: " + buffer.substr(0, eol));
        bool last = eol - start == 3 || buffer[start + 3] == ' ';
        if (last) {
            int code = std::atoi(buffer.substr(start, 3).c_str());
            if (text) *text = buffer.substr(0, eol);
            buffer.erase(0, eol + 2);
            return code;
        }
        start = eol + 2;
    }
}

}  // namespace bench
