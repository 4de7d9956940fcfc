// Senders recently refused by Exchange; see denied_senders.hpp.
#include "relay/delivery/denied_senders.hpp"

#include <algorithm>

#include "relay/core/ascii.hpp"

namespace relay {

namespace {

std::string key_of(std::string_view sender, std::string_view header_from) {
    return core::lower(sender) + "\n" + core::lower(header_from);
}

}  // namespace

bool DeniedSenders::remember(std::string_view sender, std::string_view header_from, std::string_view account_email,
                             std::string reply, std::string queue_id) {
    const std::string mailbox = core::lower(account_email);
    if (!sender.empty() && core::lower(sender) == mailbox &&
        (header_from.empty() || core::lower(header_from) == mailbox))
        return false;
    const std::string key = key_of(sender, header_from);
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

std::optional<DeniedSenders::Denial> DeniedSenders::find(std::string_view sender, std::string_view header_from) const {
    auto it = denied_.find(key_of(sender, header_from));
    if (it == denied_.end() || it->second.until <= clock_->now()) return std::nullopt;
    return it->second;
}

void DeniedSenders::forget(std::string_view sender) {
    const std::string prefix = core::lower(sender) + "\n";
    std::erase_if(denied_, [&](const auto& entry) { return entry.first.starts_with(prefix); });
}

}  // namespace relay
