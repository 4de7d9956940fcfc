// Senders recently refused by Exchange; see denied_senders.hpp.
#include "relay/delivery/denied_senders.hpp"

#include <algorithm>

#include "relay/core/ascii.hpp"

namespace relay {

bool DeniedSenders::remember(std::string_view sender, std::string_view account_email, std::string reply,
                             std::string queue_id) {
    const std::string key = core::lower(sender);
    if (!sender.empty() && key == core::lower(account_email)) return false;
    const auto now = clock_->now();
    std::erase_if(denied_, [now](const auto& entry) { return entry.second.until <= now; });
    if (denied_.size() >= capacity_ && !denied_.count(key)) {
        auto oldest = std::min_element(denied_.begin(), denied_.end(),
                                       [](const auto& a, const auto& b) { return a.second.until < b.second.until; });
        denied_.erase(oldest);
    }
    denied_[key] = Denial{std::move(reply), std::move(queue_id), now, now + memory_};
    return true;
}

std::optional<DeniedSenders::Denial> DeniedSenders::find(std::string_view sender) const {
    auto it = denied_.find(core::lower(sender));
    if (it == denied_.end() || it->second.until <= clock_->now()) return std::nullopt;
    return it->second;
}

void DeniedSenders::forget(std::string_view sender) { denied_.erase(core::lower(sender)); }

}  // namespace relay
