// Fills StatusSnapshot from the daemon's parts; see status_source.hpp.
#include "relay/service/status_source.hpp"

namespace relay {

StatusSnapshot take_status(const DeliveryAgent& delivery) {
    StatusSnapshot out;
    out.queued = delivery.queued();
    for (const auto& a : delivery.account_states()) {
        StatusSnapshot::Account account;
        account.name = a.name;
        account.state = std::string(state::name(a.state));
        account.queued = a.queued;
        account.active = a.active;
        account.deferred = a.deferred;
        account.held = a.held;
        account.sessions = a.sessions;
        account.oldest = a.oldest;
        account.wait_remaining = a.wait_remaining;
        account.hold_reason = a.hold_reason;
        account.hold_action = a.hold_action;
        account.last_error = a.last_error;
        account.last_error_at = a.last_error_at;
        account.token.have_refresh_token = a.token.have_refresh_token;
        account.token.access_valid_until = a.token.access_valid_until;
        account.token.last_refresh = a.token.last_refresh;
        account.token.last_error = a.token.last_error;
        account.token.refresh_count = a.token.refresh_count;
        account.token.retry_at = a.token.retry_at;
        out.accounts.push_back(std::move(account));
    }
    return out;
}

StatusSnapshot take_status(const SmtpServer& server, const DeliveryAgent& delivery,
                           const std::vector<std::string>& admin_addresses, SystemClock::time_point started) {
    StatusSnapshot out = take_status(delivery);
    out.started = started;
    out.listening = server.listening();
    out.admin = admin_addresses;
    out.smtp_sessions = server.sessions();
    return out;
}

}  // namespace relay
