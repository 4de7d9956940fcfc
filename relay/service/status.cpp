// Builds and renders the status snapshot (see status.hpp). Nothing here can reach a secret: the
// token part comes from TokenManager::status(), which carries times and the error summary only.
#include "relay/service/status.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "relay/core/states.hpp"

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

    std::size_t queued = 0, active = 0, deferred = 0, held = 0;
    std::optional<SystemClock::time_point> oldest;
    json::array accounts;
    for (const auto& a : snapshot.accounts) {
        queued += a.queued;
        active += a.active;
        deferred += a.deferred;
        held += a.held;
        if (a.oldest && (!oldest || *a.oldest < *oldest)) oldest = a.oldest;
        json::object account;
        account["name"] = a.name;
        account["state"] = a.state;
        account["queued"] = static_cast<std::uint64_t>(a.queued);
        account["active"] = static_cast<std::uint64_t>(a.active);
        account["deferred"] = static_cast<std::uint64_t>(a.deferred);
        account["held"] = static_cast<std::uint64_t>(a.held);
        account["upstream_sessions"] = a.sessions;
        account["on_hold"] = a.state == state::name(state::Account::held);
        account["wait_remaining_s"] = static_cast<std::int64_t>(a.wait_remaining.count());
        account["hold_reason"] = a.hold_reason;
        account["hold_action"] = a.hold_action;
        account["last_error"] = a.last_error;
        account["last_error_at"] = iso_time(a.last_error_at);
        if (a.oldest) account["oldest_age_s"] = seconds_between(*a.oldest, now);
        json::object token;
        token["have_refresh_token"] = a.token.have_refresh_token;
        token["valid_until"] = iso_time(a.token.access_valid_until);
        token["valid_for_s"] = a.token.access_valid_until == SystemClock::time_point{}
                                   ? std::int64_t{0} : seconds_between(now, a.token.access_valid_until);
        token["last_refresh"] = iso_time(a.token.last_refresh);
        token["last_error"] = a.token.last_error;
        token["refreshes"] = a.token.refresh_count;
        if (a.token.retry_at != SystemClock::time_point{})
            token["retry_in_s"] = std::max<std::int64_t>(0, seconds_between(now, a.token.retry_at));
        account["token"] = std::move(token);
        accounts.emplace_back(std::move(account));
    }
    std::size_t total = snapshot.queued;
    json::object queue;
    queue["total"] = static_cast<std::uint64_t>(total);
    queue["queued"] = static_cast<std::uint64_t>(queued);
    queue["active"] = static_cast<std::uint64_t>(active);
    queue["deferred"] = static_cast<std::uint64_t>(deferred);
    queue["held"] = static_cast<std::uint64_t>(held);
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
    // "2 queued, 0 active, 1 deferred, 0 held": the message states in the one vocabulary's order.
    auto counts = [](const json::object& o) {
        std::string text;
        for (auto st : state::kWaitingStates)
            text += fmt::format("{}{} {}", text.empty() ? "" : ", ", int_of(o, state::name(st)), state::name(st));
        return text;
    };
    out += fmt::format("listening:  {}\n", list("listening"));
    out += fmt::format("admin:      {}\n", list("admin"));
    out += fmt::format("smtp sessions: {}\n", int_of(s, "smtp_sessions"));
    if (const json::value* q = s.if_contains("queue"); q && q->is_object()) {
        const auto& queue = q->as_object();
        out += fmt::format("queue: {} message(s): {}", int_of(queue, "total"), counts(queue));
        if (queue.contains("oldest_age_s")) out += fmt::format("; oldest waiting {}", duration_text(int_of(queue, "oldest_age_s")));
        out += "\n";
    }
    const json::value* list_value = s.if_contains("accounts");
    if (!list_value || !list_value->is_array()) return out;
    for (const auto& item : list_value->as_array()) {
        if (!item.is_object()) continue;
        const auto& a = item.as_object();
        const std::string st = string_of(a, "state");
        out += fmt::format("account {}: {}", string_of(a, "name"), st);
        if (st == state::name(state::Account::held)) out += " until a person acts";
        else if (int_of(a, "wait_remaining_s") > 0) out += fmt::format(" (next try in {})", duration_text(int_of(a, "wait_remaining_s")));
        out += fmt::format("; {}; {} upstream session(s)", counts(a), int_of(a, "upstream_sessions"));
        if (a.contains("oldest_age_s")) out += fmt::format("; oldest waiting {}", duration_text(int_of(a, "oldest_age_s")));
        out += "\n";
        if (const std::string reason = string_of(a, "hold_reason"); !reason.empty())
            out += fmt::format("  hold reason: {}\n  what to do: {}\n", reason, string_of(a, "hold_action"));
        const std::string last = string_of(a, "last_error");
        out += last.empty() ? std::string("  last error: none\n")
                            : fmt::format("  last error: {} (at {})\n", last, string_of(a, "last_error_at"));
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
            std::string refreshed = string_of(token, "last_refresh");
            out += fmt::format(", last refresh {}, {} refresh(es)\n", refreshed.empty() ? "never" : refreshed,
                               int_of(token, "refreshes"));
            if (std::string error = string_of(token, "last_error"); !error.empty()) {
                out += "  last token error: " + error;
                if (token.contains("retry_in_s")) out += fmt::format(" (retrying in {})", duration_text(int_of(token, "retry_in_s")));
                out += "\n";
            }
        }
    }
    return out;
}

std::string status_summary(const StatusSnapshot& snapshot) {
    std::size_t queued = 0, active = 0, deferred = 0, held = 0;
    std::string held_accounts;
    for (const auto& a : snapshot.accounts) {
        queued += a.queued;
        active += a.active;
        deferred += a.deferred;
        held += a.held;
        if (a.state == state::name(state::Account::held)) held_accounts += (held_accounts.empty() ? "" : ",") + a.name;
    }
    return fmt::format("{} messages ({} queued, {} active, {} deferred, {} held); held accounts: {}", snapshot.queued,
                       queued, active, deferred, held, held_accounts.empty() ? "none" : held_accounts);
}

namespace {

// "state: queued = waiting for ..., active = ...": HELP text from the one vocabulary.
template <std::size_t N>
std::string states_help(const std::array<state::Described, N>& states) {
    std::string text;
    for (const auto& s : states) text += fmt::format("{}{} = {}", text.empty() ? "" : "; ", s.name, s.meaning);
    return text;
}

}  // namespace

std::vector<metrics::Gauge> status_gauges(const StatusSnapshot& snapshot) {
    metrics::Gauge queue{"smtp_oauth2_relay_queue_messages",
                         "Messages waiting, by account and state (" + states_help(state::kMessageStates) + ").", {}};
    metrics::Gauge total{"smtp_oauth2_relay_queue_total", "Messages accepted and not yet delivered or failed.",
                         {{"", static_cast<double>(snapshot.queued)}}};
    metrics::Gauge account_state{"smtp_oauth2_relay_account_state",
                                 "1 for the account's current state, 0 for the others (" +
                                     states_help(state::kAccountStates) + ").", {}};
    metrics::Gauge hold{"smtp_oauth2_relay_account_on_hold",
                        "1 while the account is held: a person must act (status shows the reason).", {}};
    metrics::Gauge token{"smtp_oauth2_relay_token_valid_seconds", "Seconds the current access token stays valid (0: none).", {}};
    auto now = SystemClock::now();
    for (const auto& a : snapshot.accounts) {
        const std::size_t counts[] = {a.queued, a.active, a.deferred, a.held};
        for (std::size_t i = 0; i < state::kWaitingStates.size(); ++i)
            queue.samples.push_back({fmt::format("{{account=\"{}\",state=\"{}\"}}", a.name, state::name(state::kWaitingStates[i])),
                                     static_cast<double>(counts[i])});
        for (const auto& s : state::kAccountStates)
            account_state.samples.push_back({fmt::format("{{account=\"{}\",state=\"{}\"}}", a.name, s.name),
                                             a.state == s.name ? 1.0 : 0.0});
        hold.samples.push_back({fmt::format("{{account=\"{}\"}}", a.name), a.state == state::name(state::Account::held) ? 1.0 : 0.0});
        double valid = a.token.access_valid_until > now ? static_cast<double>(seconds_between(now, a.token.access_valid_until)) : 0.0;
        token.samples.push_back({fmt::format("{{account=\"{}\"}}", a.name), valid});
    }
    return {queue, total, account_state, hold, token};
}

}  // namespace relay
