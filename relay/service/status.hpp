// What the running relay reports about itself: a JSON snapshot for the control socket (`status`),
// its text rendering for admins, the one-line STATUS= for systemd, and the queue gauges for metrics.
// The snapshot is taken on the I/O thread from the accessors of SmtpServer and DeliveryAgent.
#pragma once

#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "relay/delivery/delivery.hpp"
#include "relay/service/metrics.hpp"
#include "relay/intake/smtp_server.hpp"

namespace relay {

boost::json::object status_snapshot(const SmtpServer& server, const DeliveryAgent& delivery,
                                    const std::vector<std::string>& admin_addresses,
                                    SystemClock::time_point started);

// The snapshot as lines for a terminal (`smtp-oauth2-relay status`).
std::string render_status(const boost::json::object& snapshot);

// systemd's STATUS=: "3 queued (1 ready, 2 deferred); on hold: office". Short: `systemctl status` shows it.
std::string status_summary(const DeliveryAgent& delivery);

// Queue depth by account and state, accounts on hold, token validity: gauges for /metrics.
std::vector<metrics::Gauge> status_gauges(const DeliveryAgent& delivery);

// "2026-11-24T05:40:01Z"; empty for the epoch (never happened).
std::string iso_time(SystemClock::time_point t);

}  // namespace relay
