// Connection caps and AUTH failure tracking per client address. See client_limits.hpp.
#include "relay/intake/client_limits.hpp"

namespace relay {

namespace {
constexpr std::size_t kSweepAbove = 65536;   // remembered addresses before idle ones are swept
}

ClientLimits::Admission ClientLimits::admit(const std::string& address) {
    if (total_ >= settings_.max_clients) return Admission::too_many_clients;
    Entry& entry = entries_[address];
    if (entry.connections >= settings_.max_clients_per_ip) return Admission::too_many_from_address;
    ++entry.connections;
    ++total_;
    return Admission::ok;
}

void ClientLimits::release(const std::string& address) {
    auto it = entries_.find(address);
    if (it == entries_.end() || it->second.connections == 0) return;
    --it->second.connections;
    --total_;
    forget_if_idle(address, Clock::now());
}

bool ClientLimits::auth_failed(const std::string& address, Clock::time_point now) {
    if (entries_.size() > kSweepAbove) {
        for (auto it = entries_.begin(); it != entries_.end();) {
            const std::string key = (it++)->first;
            forget_if_idle(key, now);
        }
    }
    Entry& entry = entries_[address];
    // Failures older than a lockout period are forgiven: a typo last week does not count.
    if (entry.failures > 0 && now - entry.last_failure >= settings_.auth_lockout) entry.failures = 0;
    entry.last_failure = now;
    if (++entry.failures < settings_.auth_max_failures || now < entry.locked_until) return false;
    entry.locked_until = now + settings_.auth_lockout;
    entry.failures = 0;
    return true;
}

bool ClientLimits::auth_locked(const std::string& address, Clock::time_point now) const {
    auto it = entries_.find(address);
    return it != entries_.end() && now < it->second.locked_until;
}

// The map holds an address only while it has connections or remembered failures, so a scan from
// many addresses cannot grow it beyond the connections that are open at the same time.
void ClientLimits::forget_if_idle(const std::string& address, Clock::time_point now) {
    auto it = entries_.find(address);
    if (it == entries_.end()) return;
    const Entry& e = it->second;
    const bool remembers = now < e.locked_until || (e.failures > 0 && now - e.last_failure < settings_.auth_lockout);
    if (e.connections == 0 && !remembers) entries_.erase(it);
}

}  // namespace relay
