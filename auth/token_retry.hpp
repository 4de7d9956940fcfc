// When the token manager asks the token endpoint again after a failure (issue 11, item 4). A
// transient failure (HTTP 5xx, 429, timeout, refused connection, `temporarily_unavailable`) is the
// identity platform having a bad minute: retry after 2 s, doubling to 60 s, never before the
// endpoint's Retry-After (itself bounded to 120 s, so a wild header cannot park mail for hours).
// This is the token's own schedule: the account's SMTP backoff (300 s, 600 s, ...) is for upstream
// trouble and would leave mail waiting minutes after the endpoint healed. Other failures that are
// not a person's job (a malformed answer, invalid_request) keep the slower 5 s .. 5 min schedule:
// asking faster would not fix a misconfiguration. Pure, so it is unit-tested without clocks.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>

#include "auth/token_endpoint.hpp"

namespace relay::auth {

struct TokenRetry {
    static constexpr std::chrono::seconds kFirst{2};
    static constexpr std::chrono::seconds kMax{60};
    static constexpr std::chrono::seconds kMaxRetryAfter{120};
    static constexpr std::chrono::seconds kOtherFirst{5};
    static constexpr std::chrono::seconds kOtherMax{300};

    // The wait after `failures` (>= 1) consecutive failures, the last of kind `kind`.
    static std::chrono::seconds delay(unsigned failures, TokenFailure kind,
                                      std::optional<std::chrono::seconds> retry_after = std::nullopt) {
        const bool transient = kind == TokenFailure::temporary;
        auto wait = transient ? kFirst : kOtherFirst;
        const auto cap = transient ? kMax : kOtherMax;
        for (unsigned i = 1; i < failures && wait < cap; ++i) wait *= 2;
        wait = std::min(wait, cap);
        if (retry_after) wait = std::max(wait, std::min(*retry_after, kMaxRetryAfter));
        return wait;
    }
};

// The token manager's memory of failures: a person's failure (needs_person) is answered from
// memory until clear() (the store or the account changed); any other is answered from memory until
// its retry time, so callers arriving meanwhile cost no HTTP request.
class TokenRetryState {
public:
    // Remembers `e`; returns the wait before the next request (0 for a person's failure: no retry).
    std::chrono::seconds record(const TokenError& e, Clock::time_point now) {
        if (needs_person(e.kind())) {
            permanent_ = e;
            return std::chrono::seconds{0};
        }
        ++failures_;
        const auto wait = TokenRetry::delay(failures_, e.kind(), e.retry_after());
        retry_at_ = now + wait;
        last_ = e;
        return wait;
    }
    // The failure to answer with instead of asking the endpoint at `now`; nullopt: ask.
    std::optional<TokenError> answer(Clock::time_point now) const {
        if (permanent_) return permanent_;
        if (last_ && now < retry_at_) return last_;
        return std::nullopt;
    }
    void clear() {
        permanent_.reset();
        last_.reset();
        failures_ = 0;
        retry_at_ = {};
    }
    bool failing() const { return permanent_ || last_; }
    bool needs_person_now() const { return permanent_.has_value(); }
    // When the next request may go out after a retryable failure; the epoch when there is none.
    Clock::time_point retry_at() const { return permanent_ || !last_ ? Clock::time_point{} : retry_at_; }
    unsigned failures() const { return failures_; }

private:
    std::optional<TokenError> permanent_;
    std::optional<TokenError> last_;
    unsigned failures_ = 0;
    Clock::time_point retry_at_{};
};

}  // namespace relay::auth
