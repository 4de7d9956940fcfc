// When to try a deferred message again: exponential backoff from min_backoff, doubling per attempt,
// capped at max_backoff (Postfix's minimal_backoff_time / maximal_backoff_time), and given up on
// after max_queue_lifetime. Pure, so the schedule is unit-tested without clocks.
#pragma once

#include <chrono>

namespace relay {

struct RetrySchedule {
    std::chrono::seconds min_backoff{300};
    std::chrono::seconds max_backoff{4000};
    std::chrono::seconds max_queue_lifetime{5 * 24 * 3600};

    // Delay before attempt number `failed_attempts + 1`, after `failed_attempts` (>= 1) failures.
    std::chrono::seconds delay_after(unsigned failed_attempts) const {
        if (failed_attempts == 0) return std::chrono::seconds{0};
        auto delay = min_backoff;
        for (unsigned i = 1; i < failed_attempts && delay < max_backoff; ++i) delay *= 2;
        return delay < max_backoff ? delay : max_backoff;
    }

    // True when a message that has been queued for `age` must not be tried again.
    bool expired(std::chrono::seconds age) const { return age >= max_queue_lifetime; }
};

}  // namespace relay
