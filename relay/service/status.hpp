// What the running relay reports about itself: a JSON snapshot for the control socket (`status`),
// its text rendering for admins, the one-line STATUS= for systemd, and the queue gauges for metrics.
// Everything here works on StatusSnapshot, a plain struct, so the `status` client command does not
// pull in the daemon's server and delivery headers; the daemon fills it (status_source.hpp) on the
// I/O thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "relay/service/metrics.hpp"

namespace relay {

using SystemClock = std::chrono::system_clock;

struct StatusSnapshot {
    struct Token {
        bool have_refresh_token = false;
        SystemClock::time_point access_valid_until{};
        SystemClock::time_point last_refresh{};
        std::string last_error;             // a summary, never a secret
        unsigned refresh_count = 0;
        SystemClock::time_point retry_at{};  // after a failure: the token manager's next request
    };
    // States and counts use the one vocabulary of relay/core/states.hpp.
    struct Account {
        std::string name;
        std::string state = "ready";        // a state::Account name
        std::size_t queued = 0;             // waiting for their turn
        std::size_t active = 0;             // being sent right now
        std::size_t deferred = 0;           // waiting for their retry time
        std::size_t held = 0;               // kept by `queue hold ID`
        unsigned sessions = 0;              // upstream sessions running
        std::optional<SystemClock::time_point> oldest;   // receipt of the oldest waiting message
        std::chrono::seconds wait_remaining{0};          // backing-off / waiting-for-token
        std::string hold_reason;            // held: why
        std::string hold_action;            // held: what a person does
        std::string last_error;             // the account's last error (mail or token), kept after recovery
        SystemClock::time_point last_error_at{};
        Token token;
    };

    SystemClock::time_point started{};
    std::vector<std::string> listening;     // SMTP listen addresses
    std::vector<std::string> admin;         // control socket, metrics
    std::size_t smtp_sessions = 0;
    std::size_t queued = 0;                 // known to delivery, not yet delivered or failed
    std::vector<Account> accounts;
};

// The JSON the control socket answers `status` with.
boost::json::object status_json(const StatusSnapshot& snapshot);

// The snapshot as lines for a terminal (`smtp-oauth2-relay status`).
std::string render_status(const boost::json::object& snapshot);

// systemd's STATUS=: "3 messages (1 queued, 0 active, 2 deferred, 0 held); held accounts: office". Short:
// `systemctl status` shows it.
std::string status_summary(const StatusSnapshot& snapshot);

// Queue depth by account and state, accounts on hold, token validity: gauges for /metrics.
std::vector<metrics::Gauge> status_gauges(const StatusSnapshot& snapshot);

// "2026-11-24T05:40:01Z"; empty for the epoch (never happened).
std::string iso_time(SystemClock::time_point t);

}  // namespace relay
