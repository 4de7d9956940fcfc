// Per-account pacing of upstream transactions: a token bucket refilled at rate_per_minute whose
// capacity is one second's worth (at least 1), so Exchange Online's "30 messages a minute" is met
// in every window, not only on average. Senders reserve a slot and wait until it comes; the debt
// can go negative, which queues concurrent workers fairly. Pure (the caller passes the time).
#pragma once

#include <algorithm>
#include <chrono>

namespace relay {

class RateLimiter {
public:
    using Clock = std::chrono::steady_clock;

    // 0 = unlimited.
    void set_rate(unsigned per_minute) {
        per_second_ = per_minute / 60.0;
        capacity_ = std::max(1.0, per_second_);
        tokens_ = std::min(tokens_, capacity_);
    }

    // Takes one transaction slot; returns when it may start (`now` or later).
    Clock::time_point reserve(Clock::time_point now) {
        if (per_second_ <= 0) return now;
        if (!started_) {
            started_ = true;
            tokens_ = capacity_;
            last_ = now;
        }
        auto elapsed = std::chrono::duration<double>(now - last_).count();
        if (elapsed > 0) {
            tokens_ = std::min(capacity_, tokens_ + elapsed * per_second_);
            last_ = now;
        }
        tokens_ -= 1;
        if (tokens_ >= 0) return now;
        auto wait = std::chrono::duration<double>(-tokens_ / per_second_);
        return now + std::chrono::duration_cast<Clock::duration>(wait);
    }

private:
    double per_second_ = 0;
    double capacity_ = 1;
    double tokens_ = 0;
    Clock::time_point last_{};
    bool started_ = false;
};

}  // namespace relay
