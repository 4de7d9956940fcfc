// AUTH attempt accounting per client address (issue 13, item 1): the brute-force lockout that
// parallel guesses cannot outrun. An attempt is counted when its check *starts*, not when the
// (slow, off-thread) password hash check returns: an address may have at most
// `max_failures` failures plus checks in flight within a lockout window, so 200 parallel guesses
// get at most `max_failures` checks, and the rest a 454. Checks in flight are also bounded per
// address and in total, which bounds the KDF queue. Pure: the caller passes the time. Lives on the
// I/O thread; not thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <unordered_map>

namespace relay {

class AuthAttempts {
public:
    using Clock = std::chrono::steady_clock;

    struct Settings {
        std::size_t max_failures = 10;              // auth_max_failures
        std::chrono::seconds lockout{900};          // auth_lockout: window and lockout period
        std::size_t max_in_flight_per_address = 4;  // password checks running at once for one address
        std::size_t max_in_flight = 32;             // ... for all addresses (the KDF queue bound)
    };
    explicit AuthAttempts(Settings settings) : settings_(settings) {}
    void update(Settings settings) { settings_ = settings; }   // SIGHUP

    enum class Verdict {
        go,       // check the credentials, then call finish()
        locked,   // the address is locked out, or its pending checks could reach the limit: 454
        busy,     // too many checks in flight (this address or all): 454, try again later
    };
    // A client sent credentials. On `go` the attempt is counted as in flight; pair it with finish().
    Verdict begin(const std::string& address, Clock::time_point now);
    // The check that begin() allowed has its verdict. Returns true when this failure starts a lockout.
    bool finish(const std::string& address, bool ok, Clock::time_point now);
    // A failure that needed no check (malformed AUTH PLAIN): begin + finish(false), unless locked.
    bool failed_without_check(const std::string& address, Clock::time_point now);

    bool locked(const std::string& address, Clock::time_point now) const;
    std::size_t in_flight() const { return in_flight_; }

private:
    struct Entry {
        std::size_t failures = 0;        // within the current window
        std::size_t in_flight = 0;
        Clock::time_point last_failure{};
        Clock::time_point locked_until{};
    };
    void forgive_old(Entry& entry, Clock::time_point now) const;
    void forget_if_idle(const std::string& address, Clock::time_point now);
    void sweep(Clock::time_point now);

    Settings settings_;
    std::size_t in_flight_ = 0;
    std::unordered_map<std::string, Entry> entries_;
};

}  // namespace relay
