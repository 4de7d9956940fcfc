// One account's delivery schedule; see account_queue.hpp. Pure: time only from the injected clock.
#include "relay/delivery/account_queue.hpp"

#include <algorithm>

namespace relay {

void AccountQueue::configure(const RetrySchedule& schedule, unsigned rate_per_minute) {
    schedule_ = schedule;
    rate_.set_rate(rate_per_minute);
}

void AccountQueue::add_deferred(Item item, std::chrono::steady_clock::duration wait) {
    deferred_.emplace(clock_->now() + wait, std::move(item));
}

void AccountQueue::add_held(Item item) {
    std::string id = item.message.id;
    held_.insert_or_assign(std::move(id), std::move(item));
}

AccountQueue::RetryDecision AccountQueue::retry_decision(const Item& item, std::chrono::seconds age) const {
    if (schedule_.expired(age)) return {true, std::chrono::seconds{0}};
    return {false, schedule_.delay_after(item.attempts)};
}

bool AccountQueue::can_send() const {
    return !ready_.empty() && !backing_off() && !waiting_for_token() && !on_hold_;
}

Item AccountQueue::pop_ready() {
    Item item = std::move(ready_.front());
    ready_.pop_front();
    return item;
}

void AccountQueue::release_due() {
    const auto now = clock_->now();
    while (!deferred_.empty() && deferred_.begin()->first <= now) {
        ready_.push_back(std::move(deferred_.begin()->second));
        deferred_.erase(deferred_.begin());
    }
}

void AccountQueue::retry_now() {
    for (auto& [when, item] : deferred_) ready_.push_back(std::move(item));
    deferred_.clear();
    clear_backoff();
}

std::optional<Item> AccountQueue::take_waiting(const std::string& id) {
    for (auto it = ready_.begin(); it != ready_.end(); ++it)
        if (it->message.id == id) {
            Item item = std::move(*it);
            ready_.erase(it);
            return item;
        }
    for (auto it = deferred_.begin(); it != deferred_.end(); ++it)
        if (it->second.message.id == id) {
            Item item = std::move(it->second);
            deferred_.erase(it);
            return item;
        }
    return std::nullopt;
}

bool AccountQueue::hold_message(const std::string& id) {
    auto item = take_waiting(id);
    if (!item) return false;
    add_held(std::move(*item));
    return true;
}

std::optional<Item> AccountQueue::take_held(const std::string& id) {
    auto it = held_.find(id);
    if (it == held_.end()) return std::nullopt;
    Item item = std::move(it->second);
    held_.erase(it);
    return item;
}

std::chrono::seconds AccountQueue::back_off() {
    ++account_failures_;
    auto delay = schedule_.delay_after(account_failures_);
    backoff_until_ = clock_->now() + delay;
    return delay;
}

void AccountQueue::back_off_for(std::chrono::seconds delay) {
    ++account_failures_;
    backoff_until_ = std::max(backoff_until_, clock_->now() + delay);
}

void AccountQueue::clear_backoff() {
    backoff_until_ = {};
    token_wait_until_ = {};
    account_failures_ = 0;
}

void AccountQueue::wait_for_token(std::chrono::seconds at_most) {
    token_wait_until_ = clock_->now() + at_most;
}

bool AccountQueue::hold() {
    if (on_hold_) return false;
    on_hold_ = true;
    return true;
}

bool AccountQueue::release() {
    if (!on_hold_) return false;
    on_hold_ = false;
    return true;
}

AccountQueue::time_point AccountQueue::next_wakeup() const {
    auto next = time_point::max();
    if (!deferred_.empty()) next = deferred_.begin()->first;
    if (!ready_.empty() && backing_off()) next = std::min(next, backoff_until_);
    if (!ready_.empty() && waiting_for_token()) next = std::min(next, token_wait_until_);
    return next;
}

std::optional<SystemClock::time_point> AccountQueue::oldest() const {
    std::optional<SystemClock::time_point> oldest;
    auto older = [&](const Item& item) {
        if (!oldest || item.message.received < *oldest) oldest = item.message.received;
    };
    for (const auto& item : ready_) older(item);
    for (const auto& [when, item] : deferred_) older(item);
    return oldest;
}

std::chrono::seconds AccountQueue::backoff_remaining() const {
    if (!backing_off()) return std::chrono::seconds{0};
    return std::chrono::ceil<std::chrono::seconds>(backoff_until_ - clock_->now());
}

std::chrono::seconds AccountQueue::wait_remaining() const {
    auto left = backoff_remaining();
    if (waiting_for_token())
        left = std::max(left, std::chrono::ceil<std::chrono::seconds>(token_wait_until_ - clock_->now()));
    return left;
}

}  // namespace relay
