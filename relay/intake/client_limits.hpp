// Per-client-address bookkeeping that no single session can do alone: how many connections each
// address holds (max_clients, max_clients_per_ip), as Postfix's anvil does. AUTH failures and the
// lockout are AuthAttempts' (auth_attempts.hpp). Lives on the I/O thread; not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>

namespace relay {

class ClientLimits {
public:
    using Clock = std::chrono::steady_clock;

    struct Settings {
        std::size_t max_clients = 4096;
        std::size_t max_clients_per_ip = 1024;
    };
    explicit ClientLimits(Settings settings) : settings_(settings) {}
    void update(Settings settings) { settings_ = settings; }   // SIGHUP

    enum class Admission { ok, too_many_clients, too_many_from_address };
    // A new connection from `address`; counted only when ok. Pair each ok with release().
    Admission admit(const std::string& address);
    void release(const std::string& address);
    std::size_t clients() const { return total_; }

private:
    struct Entry {
        std::size_t connections = 0;
    };

    Settings settings_;
    std::size_t total_ = 0;
    std::unordered_map<std::string, Entry> entries_;
};

}  // namespace relay
