// Counters for Prometheus, fed from the log points: every log event passes through observe(), which
// counts the per-message outcomes (received, delivered, deferred, failed) by account, upstream reply
// classes, token refreshes and failures, and delivery latency. Gauges that describe current state
// (queue depth) are not kept here; the caller passes them to render(). Counters are atomics behind
// one mutex for the account map: events come mostly from the I/O thread but may come from any.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relay/core/log.hpp"

namespace relay::metrics {

// The log observer (install with log::set_observer(&metrics::observe)).
void observe(std::string_view event, std::initializer_list<log::Field> fields);

struct Gauge {
    std::string name;     // "smtp_oauth2_relay_queue_messages"
    std::string help;
    std::vector<std::pair<std::string, double>> samples;   // label set ("{state=\"ready\"}" or "") -> value
};

// Prometheus text exposition format 0.0.4: every counter, the latency histogram, then `gauges`.
std::string render(const std::vector<Gauge>& gauges);

// Upper bounds (seconds) of the delivery latency histogram: time from receipt to the upstream's 250.
inline constexpr double kLatencyBuckets[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400};

// Forgets every count (tests).
void reset();

}  // namespace relay::metrics
