// AUTH attempt accounting per client address. See auth_attempts.hpp.
#include "relay/intake/auth_attempts.hpp"

namespace relay {

namespace {
constexpr std::size_t kSweepAbove = 65536;   // remembered addresses before idle ones are swept
}

// Failures older than a window are forgiven: a typo last week does not count.
void AuthAttempts::forgive_old(Entry& entry, Clock::time_point now) const {
    if (entry.failures > 0 && now - entry.last_failure >= settings_.lockout) entry.failures = 0;
}

AuthAttempts::Verdict AuthAttempts::begin(const std::string& address, Clock::time_point now) {
    if (entries_.size() > kSweepAbove) sweep(now);
    Entry& entry = entries_[address];
    forgive_old(entry, now);
    if (now < entry.locked_until) return Verdict::locked;
    // Every check in flight may yet fail: counting it now is what keeps parallel guesses within
    // max_failures (a limit of 0 is treated as 1, so a relay with users can be logged in to).
    const std::size_t limit = settings_.max_failures == 0 ? 1 : settings_.max_failures;
    if (entry.failures + entry.in_flight >= limit) return Verdict::locked;
    if (entry.in_flight >= settings_.max_in_flight_per_address || in_flight_ >= settings_.max_in_flight)
        return Verdict::busy;
    ++entry.in_flight;
    ++in_flight_;
    return Verdict::go;
}

bool AuthAttempts::finish(const std::string& address, bool ok, Clock::time_point now) {
    auto it = entries_.find(address);
    if (it == entries_.end() || it->second.in_flight == 0) return false;   // not begun: ignore
    Entry& entry = it->second;
    --entry.in_flight;
    --in_flight_;
    if (ok) {
        forget_if_idle(address, now);
        return false;
    }
    forgive_old(entry, now);
    entry.last_failure = now;
    if (++entry.failures < settings_.max_failures || now < entry.locked_until) return false;
    entry.locked_until = now + settings_.lockout;
    entry.failures = 0;
    return true;
}

bool AuthAttempts::failed_without_check(const std::string& address, Clock::time_point now) {
    if (begin(address, now) != Verdict::go) return false;
    return finish(address, false, now);
}

bool AuthAttempts::locked(const std::string& address, Clock::time_point now) const {
    auto it = entries_.find(address);
    return it != entries_.end() && now < it->second.locked_until;
}

// The map holds an address only while it has checks in flight or remembered failures, so guesses
// from many addresses cannot grow it beyond what one lockout window remembers.
void AuthAttempts::forget_if_idle(const std::string& address, Clock::time_point now) {
    auto it = entries_.find(address);
    if (it == entries_.end()) return;
    const Entry& e = it->second;
    const bool remembers = now < e.locked_until || (e.failures > 0 && now - e.last_failure < settings_.lockout);
    if (e.in_flight == 0 && !remembers) entries_.erase(it);
}

void AuthAttempts::sweep(Clock::time_point now) {
    for (auto it = entries_.begin(); it != entries_.end();) {
        const std::string key = (it++)->first;
        forget_if_idle(key, now);
    }
}

}  // namespace relay
