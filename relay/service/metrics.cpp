// The metrics registry behind metrics.hpp: a map from account to counters, filled by observe().
#include "relay/service/metrics.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <map>
#include <mutex>

#include <fmt/format.h>

namespace relay::metrics {
namespace {

constexpr std::size_t kBuckets = std::size(kLatencyBuckets);

struct AccountCounters {
    std::uint64_t received = 0, delivered = 0, deferred = 0, failed = 0;
    std::uint64_t token_refreshes = 0, token_failures = 0;
    std::map<std::string, std::uint64_t> replies;   // "2xx", "4xx", "5xx", "none" (no reply: connection trouble)
    std::array<std::uint64_t, kBuckets> latency_buckets{};  // not cumulative; summed when rendered
    std::uint64_t latency_count = 0;
    double latency_sum = 0;
};

std::mutex g_mutex;
std::map<std::string, AccountCounters> g_accounts;

std::string_view field(std::initializer_list<log::Field> fields, std::string_view key) {
    for (const auto& f : fields)
        if (f.key == key) return f.value;
    return {};
}

// "250 2.0.0 OK" -> "2xx"; anything not starting with a reply code -> "none".
std::string reply_class(std::string_view reply) {
    if (reply.size() >= 3 && reply[0] >= '2' && reply[0] <= '5' && std::isdigit(static_cast<unsigned char>(reply[1])) &&
        std::isdigit(static_cast<unsigned char>(reply[2])))
        return std::string(1, reply[0]) + "xx";
    return "none";
}

// Label values escape backslash, quote and newline (exposition format).
std::string label(std::string_view value) {
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"') out += '\\', out += c;
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string number(double v) { return fmt::format("{}", v); }

}  // namespace

void observe(std::string_view event, std::initializer_list<log::Field> fields) {
    const bool per_message = event == "received" || event == "delivered" || event == "deferred" || event == "failed";
    const bool token = event == "token_refreshed" || event == "token_refresh_failed";
    if (!per_message && !token) return;
    std::string account(field(fields, "account"));
    std::lock_guard lock(g_mutex);
    AccountCounters& c = g_accounts[account];
    if (event == "received") ++c.received;
    else if (event == "token_refreshed") ++c.token_refreshes;
    else if (event == "token_refresh_failed") ++c.token_failures;
    else {
        ++c.replies[reply_class(field(fields, "upstream_reply"))];
        if (event == "deferred") ++c.deferred;
        if (event == "failed") ++c.failed;
        if (event == "delivered") {
            ++c.delivered;
            std::string_view text = field(fields, "delay_ms");
            long long ms = 0;
            std::from_chars(text.data(), text.data() + text.size(), ms);
            double seconds = static_cast<double>(ms) / 1000.0;
            for (std::size_t i = 0; i < kBuckets; ++i) {
                if (seconds <= kLatencyBuckets[i]) {
                    ++c.latency_buckets[i];
                    break;
                }
            }
            ++c.latency_count;
            c.latency_sum += seconds;
        }
    }
}

std::string render(const std::vector<Gauge>& gauges) {
    std::lock_guard lock(g_mutex);
    std::string out;
    auto counter = [&](std::string_view name, std::string_view help, std::uint64_t AccountCounters::*member) {
        out += fmt::format("# HELP smtp_oauth2_relay_{} {}\n# TYPE smtp_oauth2_relay_{} counter\n", name, help, name);
        for (const auto& [account, c] : g_accounts)
            out += fmt::format("smtp_oauth2_relay_{}{{account=\"{}\"}} {}\n", name, label(account), c.*member);
    };
    counter("messages_received_total", "Messages accepted from clients and committed to the spool.",
            &AccountCounters::received);
    counter("messages_delivered_total", "Messages the upstream accepted (250 after DATA).", &AccountCounters::delivered);
    counter("messages_deferred_total", "Delivery attempts that ended in a temporary failure.", &AccountCounters::deferred);
    counter("messages_failed_total", "Messages failed permanently (moved to spool_dir/failed).", &AccountCounters::failed);
    counter("token_refreshes_total", "Successful OAuth2 access token refreshes.", &AccountCounters::token_refreshes);
    counter("token_refresh_failures_total", "Failed OAuth2 token refreshes.", &AccountCounters::token_failures);

    out += "# HELP smtp_oauth2_relay_upstream_replies_total Final upstream replies to delivery attempts, by class "
           "(none: no reply, e.g. connection trouble).\n# TYPE smtp_oauth2_relay_upstream_replies_total counter\n";
    for (const auto& [account, c] : g_accounts)
        for (const auto& [cls, n] : c.replies)
            out += fmt::format("smtp_oauth2_relay_upstream_replies_total{{account=\"{}\",class=\"{}\"}} {}\n",
                               label(account), cls, n);

    out += "# HELP smtp_oauth2_relay_delivery_latency_seconds Time from receipt to upstream acceptance.\n"
           "# TYPE smtp_oauth2_relay_delivery_latency_seconds histogram\n";
    for (const auto& [account, c] : g_accounts) {
        if (c.latency_count == 0 && c.delivered == 0) continue;
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < kBuckets; ++i) {
            cumulative += c.latency_buckets[i];
            out += fmt::format("smtp_oauth2_relay_delivery_latency_seconds_bucket{{account=\"{}\",le=\"{}\"}} {}\n",
                               label(account), number(kLatencyBuckets[i]), cumulative);
        }
        out += fmt::format("smtp_oauth2_relay_delivery_latency_seconds_bucket{{account=\"{}\",le=\"+Inf\"}} {}\n",
                           label(account), c.latency_count);
        out += fmt::format("smtp_oauth2_relay_delivery_latency_seconds_sum{{account=\"{}\"}} {}\n", label(account),
                           number(c.latency_sum));
        out += fmt::format("smtp_oauth2_relay_delivery_latency_seconds_count{{account=\"{}\"}} {}\n", label(account),
                           c.latency_count);
    }
    for (const auto& g : gauges) {
        out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", g.name, g.help, g.name);
        for (const auto& [labels, value] : g.samples) out += fmt::format("{}{} {}\n", g.name, labels, number(value));
    }
    return out;
}

void reset() {
    std::lock_guard lock(g_mutex);
    g_accounts.clear();
}

}  // namespace relay::metrics
