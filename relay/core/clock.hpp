// Time as the relay's scheduling sees it. Production code reads SteadyClock; unit tests hand a
// FakeClock to the pure parts (account queues, token freshness) and move time by hand, so backoff,
// pacing and expiry are tested without sleeping.
#pragma once

#include <chrono>

namespace relay::core {

class Clock {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = std::chrono::steady_clock::duration;
    virtual ~Clock() = default;
    virtual time_point now() const = 0;
};

class SteadyClock final : public Clock {
public:
    time_point now() const override { return std::chrono::steady_clock::now(); }
    static const SteadyClock& instance() {
        static const SteadyClock clock;
        return clock;
    }
};

// For tests: starts at an arbitrary fixed point and moves only when told.
class FakeClock final : public Clock {
public:
    time_point now() const override { return now_; }
    void advance(duration by) { now_ += by; }
    void set(time_point to) { now_ = to; }

private:
    time_point now_ = time_point{} + std::chrono::hours(1000);
};

}  // namespace relay::core
