// Connection caps per client address. See client_limits.hpp.
#include "relay/intake/client_limits.hpp"

namespace relay {

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
    // The map holds an address only while it has connections.
    if (it->second.connections == 0) entries_.erase(it);
}

}  // namespace relay
