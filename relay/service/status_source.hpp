// The daemon's side of the status snapshot: reads SmtpServer and DeliveryAgent (on the I/O thread)
// into the plain StatusSnapshot that relay/service/status.hpp renders.
#pragma once

#include <string>
#include <vector>

#include "relay/delivery/delivery.hpp"
#include "relay/intake/smtp_server.hpp"
#include "relay/service/status.hpp"

namespace relay {

// The queue and accounts only (STATUS=, metrics).
StatusSnapshot take_status(const DeliveryAgent& delivery);
// Everything `status` shows.
StatusSnapshot take_status(const SmtpServer& server, const DeliveryAgent& delivery,
                           const std::vector<std::string>& admin_addresses, SystemClock::time_point started);

// The daemon's call sites, as before the split.
inline boost::json::object status_snapshot(const SmtpServer& server, const DeliveryAgent& delivery,
                                           const std::vector<std::string>& admin_addresses,
                                           SystemClock::time_point started) {
    return status_json(take_status(server, delivery, admin_addresses, started));
}
inline std::string status_summary(const DeliveryAgent& delivery) { return status_summary(take_status(delivery)); }
inline std::vector<metrics::Gauge> status_gauges(const DeliveryAgent& delivery) {
    return status_gauges(take_status(delivery));
}

}  // namespace relay
