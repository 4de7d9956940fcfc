// Per-client-address bookkeeping that no single session can do alone: how many connections each
// address holds (max_clients, max_clients_per_ip) and how many AUTH attempts it has failed (delay,
// then a temporary lockout, as Postfix's anvil and fail2ban do together). Pure: the caller passes the
// time, so tests need no clock. Lives on the I/O thread; not thread-safe.
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
        std::size_t auth_max_failures = 10;
        std::chrono::seconds auth_lockout{900};
    };
    explicit ClientLimits(Settings settings) : settings_(settings) {}
    void update(Settings settings) { settings_ = settings; }   // SIGHUP

    enum class Admission { ok, too_many_clients, too_many_from_address };
    // A new connection from `address`; counted only when ok. Pair each ok with release().
    Admission admit(const std::string& address);
    void release(const std::string& address);
    std::size_t clients() const { return total_; }

    // A failed AUTH from `address`. Returns true when this failure starts a lockout.
    bool auth_failed(const std::string& address, Clock::time_point now);
    // True while `address` is locked out of AUTH.
    bool auth_locked(const std::string& address, Clock::time_point now) const;

private:
    struct Entry {
        std::size_t connections = 0;
        std::size_t failures = 0;             // within the current lockout period
        Clock::time_point last_failure{};
        Clock::time_point locked_until{};
    };
    void forget_if_idle(const std::string& address, Clock::time_point now);

    Settings settings_;
    std::size_t total_ = 0;
    std::unordered_map<std::string, Entry> entries_;
};

}  // namespace relay
