// One account's delivery schedule: which queued message goes next and when. Messages are ready
// (waiting for a free upstream session), deferred (waiting for their retry time, exponential backoff
// per message), or held by `queue hold ID`; the account as a whole may be backing off (provider
// trouble, 421/432, quota) or on hold (a person must act, account_hold.hpp), and its transactions are
// paced to rate_per_minute. Pure: no Asio, no files, no logging; time comes from an injected
// core::Clock, so every rule here is unit-tested with a FakeClock (tests/unit/delivery/). The agent
// (delivery.cpp) owns the timers and the I/O and asks this class what to do.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/clock.hpp"
#include "relay/core/states.hpp"
#include "relay/delivery/rate_limiter.hpp"
#include "relay/delivery/retry_schedule.hpp"
#include "relay/spool/spool.hpp"

namespace relay {

// A queued message as delivery tracks it: the spool's record plus its retry state.
struct Item {
    QueuedMessage message;
    unsigned attempts = 0;      // attempts made so far (restored from the sidecar at recovery)
    std::string last_reply;     // the reply of the last failed attempt
};

class AccountQueue {
public:
    using time_point = core::Clock::time_point;

    explicit AccountQueue(const core::Clock& clock) : clock_(&clock) {}

    // Retry policy and pacing ([relay] with the account's overrides); applies to later decisions.
    void configure(const RetrySchedule& schedule, unsigned rate_per_minute);
    const RetrySchedule& schedule() const { return schedule_; }

    // ---- messages -----------------------------------------------------------------------------
    void push_ready(Item item) { ready_.push_back(std::move(item)); }
    // Back to the head of the queue, untouched (a reply put the account on hold mid-message).
    void push_front(Item item) { ready_.push_front(std::move(item)); }
    // A recovered message whose sidecar asks for a later try: deferred for `wait` from now.
    void add_deferred(Item item, std::chrono::steady_clock::duration wait);
    // Kept by `queue hold ID` until released.
    void add_held(Item item);

    // What happens to a message whose attempt failed transiently: given up on when it has been in
    // the queue for max_queue_lifetime (`age`), otherwise retried after delay_after(attempts).
    struct RetryDecision {
        bool expired = false;
        std::chrono::seconds delay{0};
    };
    RetryDecision retry_decision(const Item& item, std::chrono::seconds age) const;

    // True when a worker may take the next message now: something is ready, the account is
    // neither backing off nor on hold.
    bool can_send() const;
    // The next ready message (call only when ready() > 0).
    Item pop_ready();

    // Deferred messages whose time has come move to ready (oldest retry time first).
    void release_due();
    // Every deferred message moves to ready now and the account's backoff ends: `queue retry
    // --all`, a new token file for an account in trouble. The one place that does this.
    void retry_now();
    // Removes a waiting (ready or deferred) message; nullopt when it is not waiting here.
    std::optional<Item> take_waiting(const std::string& id);
    // `queue hold ID`: a waiting message becomes held. False when it is not waiting here.
    bool hold_message(const std::string& id);
    // `queue release ID` / `queue delete ID`: takes a held message out; nullopt when not held here.
    std::optional<Item> take_held(const std::string& id);
    bool is_held(const std::string& id) const { return held_.count(id) > 0; }

    // ---- the account --------------------------------------------------------------------------
    // Transient trouble reaching the provider: back off the whole account, doubling per
    // consecutive failure (the same schedule as messages). Returns the delay.
    std::chrono::seconds back_off();
    // The provider said how long (Graph's Retry-After): the account waits at least that long.
    void back_off_for(std::chrono::seconds delay);
    // A success or an outside change (reload, queue retry): the backoff (and a token wait) ends.
    void clear_backoff();
    // The token endpoint failed briefly (issue 11, item 4): no SMTP backoff and no attempt charged to
    // a message; the account waits until token_arrived() (the token manager's own retry got one), or
    // `at_most` at the latest, then tries again.
    void wait_for_token(std::chrono::seconds at_most);
    void token_arrived() { token_wait_until_ = {}; }
    bool waiting_for_token() const { return clock_->now() < token_wait_until_; }
    void delivered() { account_failures_ = 0; }
    bool backing_off() const { return clock_->now() < backoff_until_; }
    bool troubled() const { return account_failures_ > 0 || backing_off() || waiting_for_token(); }
    unsigned account_failures() const { return account_failures_; }

    // A person must act: nothing is attempted until release(). Return true when the state changed.
    bool hold();
    bool release();
    bool on_hold() const { return on_hold_; }
    // The account's state in the one vocabulary (relay/core/states.hpp).
    state::Account state() const { return state::account_state(on_hold_, waiting_for_token(), backing_off()); }

    // When the next transaction may start under rate_per_minute (now or later); reserves the slot.
    time_point pace() { return rate_.reserve(clock_->now()); }

    // When the agent's timer must next look at this queue: the first deferred retry time, or the
    // end of the backoff or token wait while messages are ready; time_point::max() when nothing is waiting.
    time_point next_wakeup() const;

    // ---- for status, STATUS= and metrics ------------------------------------------------------
    std::size_t ready() const { return ready_.size(); }
    std::size_t deferred() const { return deferred_.size(); }
    std::size_t held() const { return held_.size(); }
    std::size_t waiting() const { return ready_.size() + deferred_.size(); }
    std::optional<SystemClock::time_point> oldest() const;   // receipt of the oldest waiting message
    std::chrono::seconds backoff_remaining() const;
    // Until the account may try again: the longer of the backoff and the token wait.
    std::chrono::seconds wait_remaining() const;

private:
    const core::Clock* clock_;
    RetrySchedule schedule_;
    RateLimiter rate_;
    std::deque<Item> ready_;
    std::multimap<time_point, Item> deferred_;
    std::map<std::string, Item> held_;
    time_point backoff_until_{};
    time_point token_wait_until_{};
    unsigned account_failures_ = 0;
    bool on_hold_ = false;
};

}  // namespace relay
