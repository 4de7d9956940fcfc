// Builds and renders the status snapshot (see status.hpp). Nothing here can reach a secret: the
// token part comes from TokenManager::status(), which carries times and the error summary only.
#include "relay/service/status.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace relay {
namespace {

namespace json = boost::json;

std::int64_t seconds_between(SystemClock::time_point from, SystemClock::time_point to) {
    return std::chrono::duration_cast<std::chrono::seconds>(to - from).count();
}

std::string duration_text(std::int64_t s) {
    if (s < 0) return "-" + duration_text(-s);
    if (s < 60) return fmt::format("{}s", s);
    if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
    if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
    return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

std::string string_of(const json::object& o, std::string_view key) {
    const json::value* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::int64_t int_of(const json::object& o, std::string_view key) {
    const json::value* v = o.if_contains(key);
    if (!v) return 0;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
    return 0;
}

}  // namespace

std::string iso_time(SystemClock::time_point t) {
    if (t == SystemClock::time_point{}) return {};
    std::time_t secs = SystemClock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                       tm.tm_hour, tm.tm_min, tm.tm_sec);
}

json::object status_json(const StatusSnapshot& snapshot) {
    auto now = SystemClock::now();
    json::object out;
    out["version"] = RELAY_VERSION;
    out["pid"] = static_cast<std::int64_t>(::getpid());
    out["uptime_s"] = seconds_between(snapshot.started, now);
    json::array listening;
    for (const auto& a : snapshot.listening) listening.emplace_back(a);
    out["listening"] = std::move(listening);
    json::array admin;
    for (const auto& a : snapshot.admin) admin.emplace_back(a);
    out["admin"] = std::move(admin);
    out["smtp_sessions"] = static_cast<std::uint64_t>(snapshot.smtp_sessions);

    std::size_t ready = 0, deferred = 0, held = 0;
    std::optional<SystemClock::time_point> oldest;
    json::array accounts;
    for (const auto& a : snapshot.accounts) {
        ready += a.ready;
        deferred += a.deferred;
        held += a.held;
        if (a.oldest && (!oldest || *a.oldest < *oldest)) oldest = a.oldest;
        json::object account;
        account["name"] = a.name;
        account["ready"] = static_cast<std::uint64_t>(a.ready);
        account["deferred"] = static_cast<std::uint64_t>(a.deferred);
        account["held"] = static_cast<std::uint64_t>(a.held);
        account["upstream_sessions"] = a.sessions;
        account["on_hold"] = a.on_hold;
        account["backoff_remaining_s"] = static_cast<std::int64_t>(a.backoff_remaining.count());
        if (a.oldest) account["oldest_age_s"] = seconds_between(*a.oldest, now);
        json::object token;
        token["have_refresh_token"] = a.token.have_refresh_token;
        token["valid_until"] = iso_time(a.token.access_valid_until);
        token["valid_for_s"] = a.token.access_valid_until == SystemClock::time_point{}
                                   ? std::int64_t{0} : seconds_between(now, a.token.access_valid_until);
        token["last_refresh"] = iso_time(a.token.last_refresh);
        token["last_error"] = a.token.last_error;
        token["refreshes"] = a.token.refresh_count;
        account["token"] = std::move(token);
        accounts.emplace_back(std::move(account));
    }
    std::size_t total = snapshot.queued;
    json::object queue;
    queue["total"] = static_cast<std::uint64_t>(total);
    queue["ready"] = static_cast<std::uint64_t>(ready);
    queue["deferred"] = static_cast<std::uint64_t>(deferred);
    queue["held"] = static_cast<std::uint64_t>(held);
    queue["in_delivery"] = static_cast<std::uint64_t>(total > ready + deferred + held ? total - ready - deferred - held : 0);
    if (oldest) queue["oldest_age_s"] = seconds_between(*oldest, now);
    out["queue"] = std::move(queue);
    out["accounts"] = std::move(accounts);
    return out;
}

std::string render_status(const json::object& s) {
    std::string out = fmt::format("smtp-oauth2-relay {}, pid {}, up {}\n", string_of(s, "version"), int_of(s, "pid"),
                                  duration_text(int_of(s, "uptime_s")));
    auto list = [&](std::string_view key) {
        std::string joined;
        if (const json::value* v = s.if_contains(key); v && v->is_array())
            for (const auto& item : v->as_array())
                if (item.is_string()) joined += (joined.empty() ? "" : ", ") + std::string(item.as_string());
        return joined.empty() ? std::string("-") : joined;
    };
    out += fmt::format("listening:  {}\n", list("listening"));
    out += fmt::format("admin:      {}\n", list("admin"));
    out += fmt::format("smtp sessions: {}\n", int_of(s, "smtp_sessions"));
    if (const json::value* q = s.if_contains("queue"); q && q->is_object()) {
        const auto& queue = q->as_object();
        out += fmt::format("queue: {} message(s): {} ready, {} deferred, {} held, {} in delivery", int_of(queue, "total"),
                           int_of(queue, "ready"), int_of(queue, "deferred"), int_of(queue, "held"),
                           int_of(queue, "in_delivery"));
        if (queue.contains("oldest_age_s")) out += fmt::format("; oldest waiting {}", duration_text(int_of(queue, "oldest_age_s")));
        out += "\n";
    }
    if (const json::value* list_value = s.if_contains("accounts"); list_value && list_value->is_array()) {
        for (const auto& item : list_value->as_array()) {
            if (!item.is_object()) continue;
            const auto& a = item.as_object();
            out += fmt::format("account {}: {} ready, {} deferred, {} upstream session(s)", string_of(a, "name"),
                               int_of(a, "ready"), int_of(a, "deferred"), int_of(a, "upstream_sessions"));
            if (a.contains("oldest_age_s")) out += fmt::format(", oldest waiting {}", duration_text(int_of(a, "oldest_age_s")));
            const json::value* hold = a.if_contains("on_hold");
            if (hold && hold->is_bool() && hold->as_bool())
                out += ", ON HOLD until a person acts (see the account_hold log line)";
            else if (int_of(a, "backoff_remaining_s") > 0)
                out += fmt::format(", backing off for another {}", duration_text(int_of(a, "backoff_remaining_s")));
            out += "\n";
            if (const json::value* t = a.if_contains("token"); t && t->is_object()) {
                const auto& token = t->as_object();
                std::string valid = string_of(token, "valid_until");
                const json::value* have = token.if_contains("have_refresh_token");
                bool has_refresh = have && have->is_bool() && have->as_bool();
                out += fmt::format("  token: {}", has_refresh ? "refresh token stored"
                                                                : "NO refresh token (sign in: smtp-oauth2-relay authorize)");
                out += valid.empty() ? std::string(", no access token yet")
                                     : fmt::format(", access token valid until {} ({})", valid,
                                                   int_of(token, "valid_for_s") > 0
                                                       ? "in " + duration_text(int_of(token, "valid_for_s")) : std::string("expired"));
                std::string last = string_of(token, "last_refresh");
                out += fmt::format(", last refresh {}, {} refresh(es)\n", last.empty() ? "never" : last, int_of(token, "refreshes"));
                std::string error = string_of(token, "last_error");
                out += fmt::format("  last error: {}\n", error.empty() ? "none" : error);
            }
        }
    }
    return out;
}

std::string status_summary(const StatusSnapshot& snapshot) {
    std::size_t ready = 0, deferred = 0;
    std::string held;
    for (const auto& a : snapshot.accounts) {
        ready += a.ready;
        deferred += a.deferred;
        if (a.on_hold) held += (held.empty() ? "" : ",") + a.name;
    }
    return fmt::format("{} queued ({} ready, {} deferred); on hold: {}", snapshot.queued, ready, deferred,
                       held.empty() ? "none" : held);
}

std::vector<metrics::Gauge> status_gauges(const StatusSnapshot& snapshot) {
    metrics::Gauge queue{"smtp_oauth2_relay_queue_messages", "Messages in the queue by account and state.", {}};
    metrics::Gauge total{"smtp_oauth2_relay_queue_total", "Messages accepted and not yet delivered or failed.",
                         {{"", static_cast<double>(snapshot.queued)}}};
    metrics::Gauge hold{"smtp_oauth2_relay_account_on_hold", "1 while the account backs off after upstream trouble.", {}};
    metrics::Gauge token{"smtp_oauth2_relay_token_valid_seconds", "Seconds the current access token stays valid (0: none).", {}};
    auto now = SystemClock::now();
    for (const auto& a : snapshot.accounts) {
        queue.samples.push_back({fmt::format("{{account=\"{}\",state=\"ready\"}}", a.name), static_cast<double>(a.ready)});
        queue.samples.push_back({fmt::format("{{account=\"{}\",state=\"deferred\"}}", a.name), static_cast<double>(a.deferred)});
        hold.samples.push_back({fmt::format("{{account=\"{}\"}}", a.name), a.on_hold ? 1.0 : 0.0});
        double valid = a.token.access_valid_until > now ? static_cast<double>(seconds_between(now, a.token.access_valid_until)) : 0.0;
        token.samples.push_back({fmt::format("{{account=\"{}\"}}", a.name), valid});
    }
    return {queue, total, hold, token};
}

}  // namespace relay
