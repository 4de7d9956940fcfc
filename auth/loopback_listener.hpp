// The one-shot HTTP listener on the loopback redirect address (RFC 8252 section 7.3) that receives
// the browser after sign-in, answers it with a small HTML page and hands the query to `authorize`.
// Plain blocking sockets with poll(): this runs in a CLI command, not in the daemon.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "auth/oauth_flows.hpp"
#include "conf/redirect_uri.hpp"

namespace relay::auth {

struct RedirectOutcome {
    RedirectParameters parameters;
    bool state_matches = false;
};

class LoopbackListener {
public:
    // Binds the redirect's host and port (a free port when it has none; for "localhost" both
    // 127.0.0.1 and, when available, ::1 on the same port, since browsers may try either).
    // Throws std::runtime_error naming the address when binding fails.
    explicit LoopbackListener(const conf::LoopbackRedirect& redirect);
    ~LoopbackListener();
    LoopbackListener(const LoopbackListener&) = delete;
    LoopbackListener& operator=(const LoopbackListener&) = delete;

    std::uint16_t port() const { return port_; }

    // Serves requests until one to the redirect path carries `code` or `error`; answers it with the
    // "done" page (or an error page on error= or a state mismatch) and returns it. Other requests
    // (a favicon, a probe) get 404/400 and are otherwise ignored. nullopt when `deadline` passes first.
    std::optional<RedirectOutcome> wait(std::chrono::steady_clock::time_point deadline,
                                        const std::string& expected_state);

private:
    // Answers one complete request head; the outcome when it was the redirect.
    std::optional<RedirectOutcome> answer(int client, const std::string& head, const std::string& expected_state) const;

    std::vector<int> sockets_;
    std::uint16_t port_ = 0;
    std::string path_;  // "/" when the redirect URI has none
};

}  // namespace relay::auth
