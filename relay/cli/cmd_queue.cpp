// `queue list|show|retry|delete|hold|release`: the admin's view of the spool and the levers on it,
// safe while the relay runs. The tools read the spool files directly; they change only what the
// relay never writes (the .hold marker, failed/ files moved back into queue/, deleted files) and
// tell a running relay through a request file in spool_dir/control/ (see queue_control.hpp). A
// request left while the relay is stopped is handled at its next start.
#include <cstdio>
#include <ctime>
#include <map>

#include <fmt/format.h>

#include "relay/cli/cli.hpp"
#include "relay/core/durable_file.hpp"
#include "relay/core/states.hpp"
#include "relay/core/untrusted_text.hpp"
#include "relay/spool/queue_control.hpp"
#include "relay/spool/queue_state.hpp"
#include "relay/spool/spool.hpp"

namespace relay::cli {
namespace {

namespace fs = std::filesystem;

// Senders, recipients, replies and headers come from clients and upstreams. On the admin's
// terminal an ESC, OSC 52 (clipboard write) or OSC 0 (window title) in them would act (issue 13,
// item 7), so they are shown escaped; `queue show --raw` writes the exact bytes.
std::string shown(std::string_view untrusted, bool raw = false) {
    return raw ? std::string(untrusted) : core::escape_for_terminal(untrusted);
}

constexpr const char* kQueueHelp = R"(usage: smtp-oauth2-relay queue SUBCOMMAND [--config FILE]

  queue list                      every queued and failed message: id, age, account, sender,
                                  recipients, size, attempts, next try, status, last reply
  queue list --mailq              the queue in Postfix's mailq format (what `mailq` and
                                  `sendmail -bp` print): monitoring that parses mailq works
  queue show ID [--raw]           one message: envelope, state, failure reason, header; control
                                  bytes and invalid UTF-8 from the client are shown as \xNN
                                  unless --raw (the exact bytes)
  queue retry ID                  try ID now (a failed ID goes back into the queue); lifts an account hold
  queue retry --all               try every queued message now and lift every account hold
  queue retry --failed            move every failed message back into the queue and try it
  queue delete ID                 remove ID (queued or failed) for good
  queue hold ID                   keep ID in the queue without trying it
  queue release ID                undo hold

Safe while the relay runs: the running relay is told through spool_dir/control/. A message being
sent at the moment of `delete` may still be delivered.
)";

struct Entry {
    QueuedMessage message;
    std::optional<MessageState> state;
    bool held = false;
    bool failed = false;
    std::string reason;     // failed/<id>.reason
    std::string broken;     // why the file could not be read
};

bool plain_id(const std::string& id) { return parse_request("hold " + id).has_value(); }

std::string read_small_file(const fs::path& path) {
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (!f) return {};
    std::string text(4096, '\0');
    text.resize(std::fread(text.data(), 1, text.size(), f));
    std::fclose(f);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

Entry load(const fs::path& file, bool failed) {
    Entry e;
    e.failed = failed;
    e.message.id = file.filename().string();
    e.message.path = file;
    try {
        e.message = Spool::read(file);
    } catch (const std::exception& ex) {
        e.broken = ex.what();
    }
    if (failed) {
        e.reason = read_small_file(fs::path(file.string() + ".reason"));
    } else {
        e.state = read_state(file);
        e.held = fs::exists(hold_path(file));
    }
    return e;
}

std::vector<Entry> load_dir(const fs::path& dir, bool failed) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec))
        if (entry.is_regular_file() && !is_sidecar_name(entry.path().filename().string())) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    std::vector<Entry> out;
    for (const auto& f : files) out.push_back(load(f, failed));
    return out;
}

std::string span(std::int64_t seconds) {
    if (seconds < 0) seconds = 0;
    if (seconds < 120) return fmt::format("{}s", seconds);
    if (seconds < 7200) return fmt::format("{}m", seconds / 60);
    if (seconds < 172800) return fmt::format("{}h", seconds / 3600);
    return fmt::format("{}d", seconds / 86400);
}

std::int64_t seconds_between(SystemClock::time_point from, SystemClock::time_point to) {
    return std::chrono::duration_cast<std::chrono::seconds>(to - from).count();
}

// The one vocabulary (relay/core/states.hpp), as `status` and the metrics name it: deferred while
// a retry time lies ahead, queued once it is due (or never tried). `active` is known to the running
// relay only (`status`); here such a message shows as queued. "unreadable" is a broken file, not a state.
std::string status_of(const Entry& e, SystemClock::time_point now) {
    if (e.failed) return std::string(state::name(state::Message::failed));
    if (!e.broken.empty()) return "unreadable";
    if (e.held) return std::string(state::name(state::Message::held));
    if (e.state && e.state->next_try > now) return std::string(state::name(state::Message::deferred));
    return std::string(state::name(state::Message::queued));
}

std::string next_try_of(const Entry& e, SystemClock::time_point now) {
    if (e.failed || e.held || !e.broken.empty()) return "-";
    if (!e.state || e.state->next_try <= now) return "now";
    return "in " + span(seconds_between(now, e.state->next_try));
}

int list(const Spool& spool) {
    auto now = SystemClock::now();
    auto entries = load_dir(spool.queue_dir(), false);
    auto failed = load_dir(spool.failed_dir(), true);
    entries.insert(entries.end(), failed.begin(), failed.end());
    std::printf("%-16s %5s %-10s %-28s %5s %9s %8s %-8s %-10s %s\n", "ID", "AGE", "ACCOUNT", "FROM", "RCPTS",
                "SIZE", "ATTEMPTS", "NEXT", "STATUS", "LAST REPLY");
    for (const auto& e : entries) {
        const auto& m = e.message;
        std::string from = m.envelope.mail_from.empty() ? "<>" : m.envelope.mail_from;
        auto rcpts = e.state && !e.state->rcpt_left.empty() ? e.state->rcpt_left.size() : m.envelope.rcpt_to.size();
        std::string last = e.failed ? e.reason : e.state ? e.state->last_reply : "";
        if (!e.broken.empty()) last = e.broken;
        std::printf("%-16s %5s %-10s %-28s %5zu %9llu %8u %-8s %-10s %s\n", m.id.c_str(),
                    m.received == SystemClock::time_point{} ? "?" : span(seconds_between(m.received, now)).c_str(),
                    shown(m.envelope.account).c_str(), shown(from).c_str(), rcpts, static_cast<unsigned long long>(m.size),
                    e.state ? e.state->attempts : 0u, next_try_of(e, now).c_str(), status_of(e, now).c_str(),
                    shown(last).c_str());
    }
    std::map<std::string, std::size_t> by_state;
    for (const auto& e : entries) ++by_state[status_of(e, now)];
    std::string summary;
    for (auto st : {state::Message::queued, state::Message::deferred, state::Message::held, state::Message::failed})
        summary += fmt::format("{}{} {}", summary.empty() ? "" : ", ", by_state[std::string(state::name(st))], state::name(st));
    if (by_state.count("unreadable")) summary += fmt::format(", {} unreadable", by_state["unreadable"]);
    std::printf("%zu message(s): %s\n", entries.size(), summary.c_str());
    return kOk;
}

// Postfix's showq layout, which monitoring (check_mailq, munin's postfix_mailqueue) parses: a row
// per message (id, flag '*' active / '!' held, size, arrival time, sender), the last reply in
// parentheses for a deferred one, the recipients still to do, and "-- N Kbytes in M Requests.".
// Failed messages are not shown: Postfix has bounced those. `queue list` has everything.
int list_as_mailq(const Spool& spool) {
    auto entries = load_dir(spool.queue_dir(), false);
    std::erase_if(entries, [](const Entry& e) { return !e.broken.empty(); });
    if (entries.empty()) {
        std::puts("Mail queue is empty");
        return kOk;
    }
    std::puts("-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------");
    std::uint64_t bytes = 0;
    for (const auto& e : entries) {
        const auto& m = e.message;
        bytes += m.size;
        char arrival[32] = "?";
        const std::time_t t = SystemClock::to_time_t(m.received);
        std::tm local{};
        if (m.received != SystemClock::time_point{} && ::localtime_r(&t, &local))
            std::strftime(arrival, sizeof arrival, "%a %b %e %H:%M:%S", &local);
        std::printf("%s%c%8llu %-20s %s\n", m.id.c_str(), e.held ? '!' : ' ', static_cast<unsigned long long>(m.size),
                    arrival, m.envelope.mail_from.empty() ? "MAILER-DAEMON" : shown(m.envelope.mail_from).c_str());
        if (e.state && !e.state->last_reply.empty()) std::printf("(%s)\n", shown(e.state->last_reply).c_str());
        const auto& rcpts = e.state && !e.state->rcpt_left.empty() ? e.state->rcpt_left : m.envelope.rcpt_to;
        for (const auto& r : rcpts) std::printf("%41s%s\n", "", shown(r).c_str());
        std::puts("");
    }
    std::printf("-- %llu Kbytes in %zu Request%s.\n", static_cast<unsigned long long>((bytes + 1023) / 1024),
                entries.size(), entries.size() == 1 ? "" : "s");
    return kOk;
}

std::optional<Entry> find(const Spool& spool, const std::string& id) {
    if (fs::exists(spool.queue_path(id))) return load(spool.queue_path(id), false);
    if (fs::exists(spool.failed_path(id))) return load(spool.failed_path(id), true);
    return std::nullopt;
}

int show(const Spool& spool, const std::string& id, bool raw) {
    auto e = find(spool, id);
    if (!e) {
        std::fprintf(stderr, "smtp-oauth2-relay queue show: no message %s\n", id.c_str());
        return kRuntimeError;
    }
    const auto& m = e->message;
    auto out = [raw](std::string_view v) { return shown(v, raw); };
    std::printf("id: %s\nstatus: %s\nfile: %s\n", m.id.c_str(), status_of(*e, SystemClock::now()).c_str(), m.path.c_str());
    if (!e->broken.empty()) {
        std::printf("error: %s\n", out(e->broken).c_str());
        return kOk;
    }
    std::time_t received = SystemClock::to_time_t(m.received);
    char when[64];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&received));
    std::printf("received: %s\naccount: %s\nfrom: <%s>\n", when, out(m.envelope.account).c_str(),
                out(m.envelope.mail_from).c_str());
    for (const auto& r : m.envelope.rcpt_to) std::printf("rcpt: <%s>\n", out(r).c_str());
    std::printf("size: %llu\nclient: %s\n", static_cast<unsigned long long>(m.size), out(m.envelope.client_address).c_str());
    if (!m.envelope.user.empty()) std::printf("user: %s\n", out(m.envelope.user).c_str());
    if (m.envelope.dsn) std::printf("dsn: yes (a delivery report made by the relay)\n");
    if (e->state) {
        std::printf("attempts: %u\nnext try: %s\nlast reply: %s\n", e->state->attempts,
                    next_try_of(*e, SystemClock::now()).c_str(), out(e->state->last_reply).c_str());
        for (const auto& r : e->state->rcpt_left) std::printf("still to do: <%s>\n", out(r).c_str());
    }
    if (e->failed) std::printf("reason: %s\n", out(e->reason).c_str());
    std::printf("\n");
    const std::string header = read_header_block(m);
    if (raw) {
        std::fwrite(header.data(), 1, header.size(), stdout);
        return kOk;
    }
    // Line by line: CRLF ends a line; any other CR or LF inside one is escaped with the rest.
    for (std::size_t at = 0; at < header.size();) {
        std::size_t end = header.find("\r\n", at);
        if (end == std::string::npos) end = header.size();
        std::printf("%s\n", core::escape_for_terminal(std::string_view(header).substr(at, end - at)).c_str());
        at = end + 2;
    }
    return kOk;
}

void tell(const Spool& spool, ControlRequest::Verb verb, const std::string& id) {
    submit_request(spool.control_dir(), ControlRequest{verb, id});
}

int act(const Spool& spool, const std::string& sub, const ParsedOptions& o) {
    using Verb = ControlRequest::Verb;
    const std::string id = o.positional.size() > 1 ? o.positional[1] : "";
    if (sub == "retry" && o.has("--all")) {
        tell(spool, Verb::retry_all, "");
        std::printf("every queued message will be tried now\n");
        return kOk;
    }
    if (sub == "retry" && o.has("--failed")) {
        std::size_t n = 0;
        for (const auto& e : load_dir(spool.failed_dir(), true)) {
            if (!e.broken.empty()) continue;   // an unreadable file would only fail again
            spool.unfail(e.message.id);
            tell(spool, Verb::retry, e.message.id);
            ++n;
        }
        std::printf("%zu failed message%s queued again\n", n, n == 1 ? "" : "s");
        return kOk;
    }
    auto entry = find(spool, id);
    if (!entry) {
        std::fprintf(stderr, "smtp-oauth2-relay queue %s: no message %s\n", sub.c_str(), id.c_str());
        return kRuntimeError;
    }
    const fs::path file = spool.queue_path(id);
    if (sub == "retry") {
        if (entry->failed) spool.unfail(id);
        tell(spool, Verb::retry, id);
        std::printf("%s will be tried now\n", id.c_str());
    } else if (sub == "delete") {
        if (entry->failed) {
            spool.remove_failed(id);
        } else {
            fs::remove(file);
            remove_sidecars(file);
            tell(spool, Verb::remove, id);
        }
        std::printf("%s deleted\n", id.c_str());
    } else if (entry->failed) {
        std::fprintf(stderr, "smtp-oauth2-relay queue %s: %s has failed; use queue retry or delete\n", sub.c_str(), id.c_str());
        return kRuntimeError;
    } else if (sub == "hold") {
        write_file_durably(hold_path(file), "held by smtp-oauth2-relay queue hold\n", 0600);
        tell(spool, Verb::hold, id);
        std::printf("%s held\n", id.c_str());
    } else {
        fs::remove(hold_path(file));
        tell(spool, Verb::release, id);
        std::printf("%s released\n", id.c_str());
    }
    return kOk;
}

}  // namespace

int run_queue(const std::vector<std::string>& args) {
    auto options = parse_options("queue", args, {{"--all", false}, {"--failed", false}, {"--raw", false}, {"--mailq", false}}, kQueueHelp);
    if (!options) return kUsageError;
    if (options->help) return kOk;
    const auto& pos = options->positional;
    const std::string sub = pos.empty() ? "" : pos[0];
    const bool takes_id = sub == "show" || sub == "delete" || sub == "hold" || sub == "release" ||
                          (sub == "retry" && !options->has("--all") && !options->has("--failed"));
    std::string problem;
    if (sub.empty()) problem = "missing subcommand";
    else if (sub != "list" && !takes_id && sub != "retry") problem = "unknown subcommand '" + sub + "'";
    else if (takes_id && (pos.size() != 2 || !plain_id(pos[1]))) problem = "expected one message ID (16 hex digits)";
    else if (!takes_id && pos.size() != 1) problem = "unexpected argument '" + pos[1] + "'";
    else if ((options->has("--all") || options->has("--failed")) && sub != "retry") problem = "--all and --failed go with retry";
    else if (options->has("--all") && options->has("--failed")) problem = "use --all or --failed, not both";
    else if (options->has("--raw") && sub != "show") problem = "--raw goes with show";
    else if (options->has("--mailq") && sub != "list") problem = "--mailq goes with list";
    if (!problem.empty()) {
        std::fprintf(stderr, "smtp-oauth2-relay queue: %s\n\n%s", problem.c_str(), kQueueHelp);
        return kUsageError;
    }
    auto config = load_config_or_report(*options);
    if (!config) return kUsageError;
    // Under sudo: act as the relay's user, so a request file or hold marker is one the relay reads.
    // Only list and show may run as anyone who can read the spool.
    const std::string not_owner = act_as_owner_of(config->relay.spool_dir, "queue " + sub);
    if (!not_owner.empty() && sub != "list" && sub != "show") {
        std::fprintf(stderr, "smtp-oauth2-relay %s\n", not_owner.c_str());
        return kRuntimeError;
    }
    try {
        Spool spool(config->relay.spool_dir);
        if (sub == "list") return options->has("--mailq") ? list_as_mailq(spool) : list(spool);
        if (sub == "show") return show(spool, pos[1], options->has("--raw"));
        return act(spool, sub, *options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "smtp-oauth2-relay queue %s: %s\n", sub.c_str(), e.what());
        // mailq by an ordinary user: say who may look, rather than only "permission denied".
        if (!not_owner.empty()) std::fprintf(stderr, "smtp-oauth2-relay queue %s: run it with sudo\n", sub.c_str());
        return kRuntimeError;
    }
}

}  // namespace relay::cli
