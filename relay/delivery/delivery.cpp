// Per-account delivery workers, retry timers, pacing, holds, queue-tool requests, direct mode and the
// outcome of each attempt. Runs on the single I/O thread; token HTTP and DSN commits run on the
// blocking pool.
#include "relay/delivery/delivery.hpp"

#include <utility>

#include <algorithm>
#include <deque>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "auth/sasl.hpp"
#include "auth/token_manager.hpp"
#include "relay/delivery/account_hold.hpp"
#include "relay/core/blocking.hpp"
#include "relay/delivery/delivery_outcome.hpp"
#include "relay/delivery/dsn.hpp"
#include "relay/core/log.hpp"
#include "relay/spool/queue_state.hpp"
#include "relay/delivery/rate_limiter.hpp"
#include "relay/delivery/retry_schedule.hpp"
#include "relay/delivery/upstream_queue_id.hpp"
#include "relay/smtp/replies.hpp"

namespace relay {
namespace {

namespace asio = boost::asio;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kIdleSessionKeep = 5s;   // keep an authenticated session this long for the next message

struct Item {
    QueuedMessage message;
    unsigned attempts = 0;
    std::string last_reply;
};

// An authenticated upstream session and when the token that authenticated it stops being fresh.
// Providers may drop a session whose token expired, so it is replaced before that.
struct OpenSession {
    std::unique_ptr<UpstreamSession> session;
    SystemClock::time_point fresh_until = SystemClock::time_point::max();
    bool usable() const { return session && session->usable() && SystemClock::now() < fresh_until; }
};

// A failure that concerns the account (connect, TLS, AUTH, token), not one message.
struct AccountFailure {
    std::string reason;
    std::optional<std::string> hold_action;   // set when a person must act: hold the account
};

// Delegated accounts that log in with a token keep a refresh token in state_dir/tokens/.
bool uses_token_file(const conf::Account& account) {
    return account.auth == conf::AuthMode::delegated && (account.upstream_auth == conf::UpstreamAuth::xoauth2 ||
                                                         account.upstream_auth == conf::UpstreamAuth::oauthbearer);
}

// Token upkeep runs at start and then every min(1 h, keepalive_refresh / 2).
std::chrono::seconds upkeep_interval(const conf::Account& account) {
    return std::clamp<std::chrono::seconds>(account.keepalive_refresh / 2, 1s, 3600s);
}

// The original message's header block for a DSN (RFC 3464 text/rfc822-headers), at most 64 KiB.
std::string read_header_block(const QueuedMessage& message) {
    std::string header;
    try {
        SpoolBodyReader body(message);
        char buffer[8192];
        while (header.size() < 65536) {
            std::size_t n = body.read(buffer, sizeof buffer);
            if (n == 0) break;
            header.append(buffer, n);
            if (auto end = header.find("\r\n\r\n"); end != std::string::npos) return header.substr(0, end + 2);
        }
    } catch (const std::exception&) {
        return {};
    }
    return header.substr(0, std::min<std::size_t>(header.size(), 65536));
}

std::int64_t ms_since(SystemClock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::now() - t).count();
}

}  // namespace

struct DeliveryAgent::Impl : std::enable_shared_from_this<Impl> {
    struct Account {
        explicit Account(asio::any_io_executor io) : retry_timer(io, Steady::time_point::max()) {}
        conf::Account config;
        std::unique_ptr<auth::TokenManager> tokens;
        std::shared_ptr<asio::ssl::context> tls;
        std::deque<Item> ready;
        std::multimap<Steady::time_point, Item> deferred;
        unsigned workers = 0;
        std::vector<asio::steady_timer*> idle_workers;   // each idle worker's timer; cancel to wake it
        asio::steady_timer retry_timer;   // next deferred message or end of account backoff
        Steady::time_point backoff_until{};
        unsigned account_failures = 0;
        bool removed = false;             // gone from the config at a reload: start nothing
        std::optional<std::filesystem::file_time_type> token_stamp;  // token file as last seen by token_watch
        bool token_stamp_known = false;
        Steady::time_point next_upkeep{};
        bool upkeep_running = false;
        RetrySchedule schedule;           // [relay] with this account's overrides
        RateLimiter rate;
        bool on_hold = false;             // a person must act; see account_hold.hpp
        std::optional<std::filesystem::file_time_type> hold_token_stamp;
        unsigned direct_open = 0;         // direct-mode sessions open, busy or idle
        std::vector<std::pair<OpenSession, Steady::time_point>> direct_idle;

        unsigned connections() const { return workers + direct_open; }
    };

    asio::any_io_executor io;
    asio::thread_pool& pool;
    Spool& spool;
    std::shared_ptr<const conf::Config> config;
    auth::HttpClient& http;
    auth::TokenStore& store;
    RetrySchedule schedule;
    std::map<std::string, std::unique_ptr<Account>> accounts;
    std::size_t in_flight = 0;
    bool stopping = false;
    asio::steady_timer watch_timer{io};   // token_watch's one-second tick
    std::map<std::string, Item> held;     // `queue hold ID`: kept until released
    std::set<std::string> active;         // ids being sent right now
    std::set<std::string> forgotten;      // deleted by `queue delete` while being sent

    Impl(asio::any_io_executor e, asio::thread_pool& p, Spool& s, std::shared_ptr<const conf::Config> c,
         auth::HttpClient& h, auth::TokenStore& ts)
        : io(std::move(e)), pool(p), spool(s), config(std::move(c)), http(h), store(ts) {
        apply_config();
    }

    // Brings `accounts` and `schedule` in line with `config`; returns the names of new accounts.
    std::vector<std::string> apply_config() {
        schedule = RetrySchedule{config->relay.min_backoff, config->relay.max_backoff, config->relay.max_queue_lifetime};
        const auto configure = [this](Account& a) {
            a.schedule = RetrySchedule{a.config.min_backoff.value_or(schedule.min_backoff),
                                       a.config.max_backoff.value_or(schedule.max_backoff),
                                       a.config.max_queue_lifetime.value_or(schedule.max_queue_lifetime)};
            a.rate.set_rate(a.config.rate_per_minute);
        };
        std::vector<std::string> added;
        for (const auto& [name, account] : config->accounts) {
            auto it = accounts.find(name);
            if (it == accounts.end()) {
                auto a = std::make_unique<Account>(io);
                a->config = account;
                a->tokens = std::make_unique<auth::TokenManager>(account, store, http, io, pool);
                a->tls = make_upstream_tls_context(account.upstream_ca_file);
                configure(*a);
                accounts.emplace(name, std::move(a));
                added.push_back(name);
                continue;
            }
            Account& a = *it->second;
            a.removed = false;
            a.config = account;
            a.tokens->update_account(account);
            a.tls = make_upstream_tls_context(account.upstream_ca_file);
            a.backoff_until = {};
            a.account_failures = 0;
            a.next_upkeep = {};  // keepalive_refresh may have changed: re-check at the next tick
            configure(a);
            release_account(a, "configuration reloaded");
        }
        for (auto& [name, a] : accounts) {
            if (config->accounts.count(name) == 0 && !a->removed) {
                a->removed = true;
                log::warning("account_removed", {{"account", name}, {"queued", a->ready.size() + a->deferred.size()},
                                                 {"action", "its queued mail stays in the spool until the account is configured again"}});
            }
        }
        return added;
    }

    void start_retry_loops() {
        for (auto& [name, a] : accounts) asio::co_spawn(io, retry_loop(shared_from_this(), a.get()), asio::detached);
    }

    void enqueue(Item item) {
        auto it = accounts.find(item.message.envelope.account);
        if (it == accounts.end()) {
            // The config no longer has this account: keep the file, a reload may bring it back.
            log::error("account_unknown", {{"queue_id", item.message.id},
                                           {"account", item.message.envelope.account},
                                           {"action", "message kept in the spool; add the account back or delete it"}});
            return;
        }
        ++in_flight;
        if (std::filesystem::exists(hold_path(item.message.path))) {
            held.emplace(item.message.id, std::move(item));
            return;
        }
        it->second->ready.push_back(std::move(item));
        kick(*it->second);
    }

    // A message recovered at startup: its sidecar says how often it was tried and when to try next.
    void recover(QueuedMessage message) {
        Item item{std::move(message), 0, {}};
        auto state = read_state(item.message.path);
        if (state) {
            item.attempts = state->attempts;
            item.last_reply = state->last_reply;
            if (!state->rcpt_left.empty()) item.message.envelope.rcpt_to = state->rcpt_left;
        }
        auto it = accounts.find(item.message.envelope.account);
        if (!state || state->next_try <= SystemClock::now() || it == accounts.end() ||
            std::filesystem::exists(hold_path(item.message.path))) {
            enqueue(std::move(item));
            return;
        }
        ++in_flight;
        auto wait = std::chrono::duration_cast<Steady::duration>(state->next_try - SystemClock::now());
        it->second->deferred.emplace(Steady::now() + wait, std::move(item));
        rearm(*it->second);
    }

    void save_state(const Item& item, SystemClock::time_point next_try) {
        MessageState state{item.attempts, next_try, item.last_reply, {}};
        state.rcpt_left = item.message.envelope.rcpt_to;
        try {
            write_state(item.message.path, state);
        } catch (const std::exception& e) {
            log::warning("queue_state_write_failed", {{"queue_id", item.message.id}, {"error", e.what()}});
        }
    }

    void hold_account(Account& a, const std::string& reason, const std::string& action) {
        if (a.on_hold) return;
        a.on_hold = true;
        a.hold_token_stamp = store.stamp(a.config.name);
        log::error("account_hold", {{"account", a.config.name}, {"reason", reason},
                                    {"queued", a.ready.size() + a.deferred.size()}, {"action", action}});
    }

    void release_account(Account& a, std::string_view why) {
        if (!a.on_hold) return;
        a.on_hold = false;
        log::info("account_released", {{"account", a.config.name}, {"reason", why}});
        kick(a);
    }

    void kick(Account& a) {
        if (stopping || a.removed || a.on_hold || a.ready.empty()) return;
        if (Steady::now() < a.backoff_until) {
            rearm(a);
            return;
        }
        if (!a.idle_workers.empty()) {
            a.idle_workers.back()->cancel();
            a.idle_workers.pop_back();
            return;
        }
        if (a.connections() < std::max(1u, a.config.max_connections)) {
            ++a.workers;
            asio::co_spawn(io, worker(shared_from_this(), &a), asio::detached);
        }
    }

    void rearm(Account& a) {
        auto next = Steady::time_point::max();
        if (!a.deferred.empty()) next = a.deferred.begin()->first;
        if (!a.ready.empty() && a.backoff_until > Steady::now()) next = std::min(next, a.backoff_until);
        if (a.retry_timer.expiry() != next) a.retry_timer.expires_at(next);  // cancels the current wait
    }

    static asio::awaitable<void> retry_loop(std::shared_ptr<Impl> self, Account* a) {
        while (!self->stopping) {
            co_await a->retry_timer.async_wait(asio::as_tuple(asio::use_awaitable));
            auto now = Steady::now();
            while (!a->deferred.empty() && a->deferred.begin()->first <= now) {
                a->ready.push_back(std::move(a->deferred.begin()->second));
                a->deferred.erase(a->deferred.begin());
            }
            if (a->retry_timer.expiry() <= now) a->retry_timer.expires_at(Steady::time_point::max());
            self->kick(*a);
            self->rearm(*a);
        }
    }

    void defer(Account& a, Item item, const std::string& reply) {
        item.last_reply = reply;
        if (forget_if_deleted(item)) return;
        auto age = std::chrono::duration_cast<std::chrono::seconds>(SystemClock::now() - item.message.received);
        if (a.schedule.expired(age)) {
            fail(item, fmt::format("message expired after {} attempts in the queue; last reply: {}",
                                   item.attempts, reply));
            return;
        }
        auto delay = a.schedule.delay_after(item.attempts);
        save_state(item, SystemClock::now() + delay);
        if (std::filesystem::exists(hold_path(item.message.path))) {
            held.emplace(item.message.id, std::move(item));
            return;
        }
        log::warning("deferred", {{"queue_id", item.message.id}, {"account", a.config.name},
                                  {"upstream_reply", reply}, {"attempt", item.attempts},
                                  {"next_try_in_s", static_cast<long>(delay.count())}});
        a.deferred.emplace(Steady::now() + delay, std::move(item));
        rearm(a);
    }

    void back_off_account(Account& a, const std::string& reason) {
        ++a.account_failures;
        auto delay = a.schedule.delay_after(a.account_failures);
        a.backoff_until = Steady::now() + delay;
        log::warning("account_backoff", {{"account", a.config.name}, {"reason", reason},
                                         {"failures", a.account_failures},
                                         {"next_try_in_s", static_cast<long>(delay.count())}});
        rearm(a);
    }

    // `queue delete` removed this message while it was being sent: drop it, touch no file.
    bool forget_if_deleted(const Item& item) {
        if (forgotten.erase(item.message.id) == 0) return false;
        --in_flight;
        log::info("deleted", {{"queue_id", item.message.id}});
        return true;
    }

    void fail(const Item& item, const std::string& reason, std::vector<FailedRecipient> recipients = {}) {
        if (forget_if_deleted(item)) return;
        if (recipients.empty())
            for (const auto& rcpt : item.message.envelope.rcpt_to)
                recipients.push_back({rcpt, status_of_reply(reason), reason});
        bounce(item.message, std::move(recipients));
        --in_flight;
        log::error("failed", {{"queue_id", item.message.id}, {"account", item.message.envelope.account},
                              {"from", item.message.envelope.mail_from},
                              {"rcpt_count", item.message.envelope.rcpt_to.size()},
                              {"upstream_reply", reason}, {"attempt", item.attempts},
                              {"delay_ms", ms_since(item.message.received)}});
        // The move syncs two directories: on the pool, not the I/O thread.
        asio::post(pool, [&spool = spool, message = item.message, reason] {
            try {
                spool.move_to_failed(message, reason);
            } catch (const std::exception& e) {
                log::error("spool_move_failed", {{"queue_id", message.id}, {"error", e.what()}});
            }
        });
    }

    // bounce = true: an RFC 3464 report to the sender, queued through the same account.
    void bounce(const QueuedMessage& original, std::vector<FailedRecipient> recipients) {
        auto it = accounts.find(original.envelope.account);
        if (it == accounts.end() || !it->second->config.bounce || !may_bounce(original.envelope)) return;
        DsnInput in;
        in.reporting_host = config->relay.hostname;
        in.account_email = it->second->config.email;
        in.account = it->second->config.name;
        in.original = original.envelope;
        in.original_id = original.id;
        in.arrival = original.received;
        in.now = SystemClock::now();
        in.failed = std::move(recipients);
        in.original_header = read_header_block(original);
        asio::co_spawn(io, queue_dsn(shared_from_this(), std::move(in)), asio::detached);
    }

    static asio::awaitable<void> queue_dsn(std::shared_ptr<Impl> self, DsnInput in) {
        auto job = [self, in] {
            Dsn dsn = build_dsn(in);
            return self->spool.inject(dsn.envelope, dsn.message);
        };
        QueuedMessage message;
        std::string error;
        try {
            message = co_await run_blocking(self->pool, std::move(job));
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (!error.empty()) {
            log::error("dsn_failed", {{"queue_id", in.original_id}, {"error", error}});
            co_return;
        }
        log::info("dsn_queued", {{"queue_id", message.id}, {"original", in.original_id},
                                 {"to", in.original.mail_from}, {"account", in.account}});
        self->enqueue(Item{std::move(message), 0, {}});
    }

    // Connects, starts TLS and authenticates. Throws AccountFailure.
    asio::awaitable<OpenSession> open_session(Account& a) {
        UpstreamOptions options;
        options.server = a.config.upstream;
        options.tls = a.config.upstream_tls;
        options.helo_name = config->relay.hostname;
        auto session = std::make_unique<UpstreamSession>(io, a.tls, options);
        try {
            co_await session->connect();
        } catch (const UpstreamError& e) {
            throw AccountFailure{fmt::format("connect to {}: {}", a.config.upstream.to_string(), e.what())};
        }
        if (a.config.upstream_auth == conf::UpstreamAuth::none) co_return OpenSession{std::move(session)};
        if (a.config.upstream_auth == conf::UpstreamAuth::plain || a.config.upstream_auth == conf::UpstreamAuth::login) {
            // Basic auth with a configured password: no token, so nothing to refresh or retry.
            const std::string no_token;
            smtp::Reply basic = co_await authenticate(a, *session, no_token);
            if (basic.code != 235) {
                co_await session->quit();
                throw AccountFailure{"AUTH refused: " + basic.text()};
            }
            co_return OpenSession{std::move(session)};
        }

        std::string token, token_error;
        std::optional<std::string> token_hold;
        try {
            token = co_await a.tokens->access_token();
        } catch (const auth::TokenError& e) {
            token_error = e.what();
            // A dead refresh token or client secret needs a person: retrying only adds sign-in failures.
            if (e.kind() == auth::TokenFailure::invalid_grant || e.kind() == auth::TokenFailure::invalid_client)
                token_hold = e.admin_hint(a.config.name);
        }
        if (!token_error.empty()) {
            co_await session->quit();
            throw AccountFailure{"token: " + token_error, token_hold};
        }
        smtp::Reply reply = co_await authenticate(a, *session, token);
        if (auto action = hold_action_for(reply)) {
            co_await session->quit();
            throw AccountFailure{"AUTH refused: " + reply.text(), action};
        }
        if (reply.code == 535 && session->usable()) {
            // The provider refused the token (revoked, or it expired early): one fresh token, one retry.
            log::warning("upstream_auth_rejected", {{"account", a.config.name}, {"upstream_reply", reply.text()},
                                                    {"action", "refreshing the access token and retrying once"}});
            try {
                token = co_await a.tokens->token_rejected(token);
            } catch (const auth::TokenError& e) {
                token_error = e.what();
            }
            if (!token_error.empty()) {
                co_await session->quit();
                throw AccountFailure{"token: " + token_error, std::nullopt};
            }
            reply = co_await authenticate(a, *session, token);
        }
        if (reply.code != 235) {
            co_await session->quit();
            throw AccountFailure{"AUTH refused: " + reply.text(), hold_action_for(reply)};
        }
        auto now = SystemClock::now();
        auto valid_until = a.tokens->status().access_valid_until;
        auto margin = std::chrono::duration_cast<SystemClock::duration>(
            auth::refresh_margin(std::chrono::duration_cast<std::chrono::milliseconds>(valid_until - now)));
        co_return OpenSession{std::move(session), valid_until > now ? valid_until - margin : now};
    }

    asio::awaitable<smtp::Reply> authenticate(Account& a, UpstreamSession& session, const std::string& token) {
        try {
            if (a.config.upstream_auth == conf::UpstreamAuth::plain) {
                std::string response = auth::plain_response(a.config.upstream_user, a.config.upstream_password.reveal());
                co_return co_await session.authenticate("PLAIN", std::move(response));
            }
            if (a.config.upstream_auth == conf::UpstreamAuth::login) {
                std::string response = a.config.upstream_user + '\0' + a.config.upstream_password.reveal();
                co_return co_await session.authenticate("LOGIN", std::move(response));
            }
            if (a.config.upstream_auth == conf::UpstreamAuth::oauthbearer)
                co_return co_await session.authenticate(
                    "OAUTHBEARER", auth::oauthbearer_response(a.config.email, a.config.upstream.host,
                                                              a.config.upstream.port, token));
            co_return co_await session.authenticate("XOAUTH2", auth::xoauth2_response(a.config.email, token));
        } catch (const UpstreamError& e) {
            throw AccountFailure{std::string("AUTH: ") + e.what()};
        }
    }

    // Waits for this account's next transaction slot (rate_per_minute).
    asio::awaitable<void> pace(Account& a) {
        auto at = a.rate.reserve(Steady::now());
        if (at <= Steady::now()) co_return;
        asio::steady_timer timer(io, at);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }

    // Sends `message` as one transaction per max_recipients_per_message recipients. Throws
    // std::system_error when the queue file cannot be read.
    asio::awaitable<Outcome> send_chunks(Account& a, UpstreamSession& session, const QueuedMessage& message) {
        Outcome out;
        const auto chunks = split_recipients(message.envelope.rcpt_to, a.config.max_recipients_per_message);
        for (const auto& chunk : chunks) {
            if (out.stopped()) {
                out.not_attempted(chunk);
                continue;
            }
            co_await pace(a);
            Envelope envelope = message.envelope;
            envelope.rcpt_to = chunk;
            SpoolBodyReader body(message);
            TransactionResult result;
            std::string io_error;
            try {
                result = co_await session.send(envelope, message.size, body);
            } catch (const UpstreamError& e) {
                io_error = e.what();
            }
            if (!io_error.empty()) {
                out.io_error = io_error;
                out.not_attempted(chunk);
                continue;
            }
            out.add(chunk, result);
        }
        co_return out;
    }

    // One message on an open session. Returns false when the session broke.
    asio::awaitable<bool> deliver(Account& a, UpstreamSession& session, Item item) {
        ++item.attempts;
        active.insert(item.message.id);
        Outcome out;
        std::string read_error;
        try {
            out = co_await send_chunks(a, session, item.message);
        } catch (const std::system_error& e) {
            read_error = e.what();
        }
        active.erase(item.message.id);
        if (!read_error.empty()) {
            fail(item, std::string("cannot read queue file: ") + read_error);
            co_return session.usable();
        }
        if (!out.delivered.empty()) {
            a.account_failures = 0;
            log::info("delivered", {{"queue_id", item.message.id}, {"account", a.config.name},
                                    {"from", item.message.envelope.mail_from},
                                    {"rcpt_count", out.delivered.size()}, {"size", item.message.size},
                                    {"upstream_reply", out.last_ok->text()}, {"attempt", item.attempts},
                                    {"delay_ms", ms_since(item.message.received)},
                                    {"upstream_queue_id", upstream_queue_id(out.last_ok->text())}});
        }
        if (out.retry.empty()) {
            if (out.delivered.empty()) {
                fail(item, out.first_permanent ? out.first_permanent->text() : "no recipient accepted", out.failed);
                co_return session.usable();
            }
            for (const auto& f : out.failed)
                log::error("recipient_failed", {{"queue_id", item.message.id}, {"rcpt", f.address},
                                                {"upstream_reply", f.diagnostic}});
            if (!out.failed.empty()) bounce(item.message, out.failed);
            if (!forget_if_deleted(item)) {
                --in_flight;
                spool.remove(item.message);
            }
            co_return session.usable();
        }
        for (const auto& f : out.failed)
            log::error("recipient_failed", {{"queue_id", item.message.id}, {"rcpt", f.address},
                                            {"upstream_reply", f.diagnostic}});
        if (!out.failed.empty()) bounce(item.message, out.failed);
        item.message.envelope.rcpt_to = out.retry;
        if (out.hold) {
            // Kept at the head of the queue, untouched, until the hold is lifted.
            item.last_reply = out.hold->text();
            if (forget_if_deleted(item)) co_return session.usable();
            save_state(item, SystemClock::now());
            a.ready.push_front(std::move(item));
            hold_account(a, out.hold->text(), *hold_action_for(*out.hold));
            co_return session.usable();
        }
        std::string reply = out.first_transient ? out.first_transient->text() : out.io_error;
        // 421/432: the provider is pacing this mailbox; slow the whole account down.
        // So does the daily recipient quota.
        if (out.first_transient && (out.first_transient->code == 421 || out.first_transient->code == 432 ||
                                    quota_exceeded(*out.first_transient)))
            back_off_account(a, reply);
        defer(a, std::move(item), reply);
        co_return out.io_error.empty() && session.usable();
    }

    // Once a second: notice token files changed by `token import` or `authorize` (one stat per
    // account, on the pool) and wake an account that is backing off, so a new refresh token is used
    // within seconds, not after the backoff; and start each account's token upkeep when due.
    static asio::awaitable<void> token_watch(std::shared_ptr<Impl> self) {
        while (!self->stopping) {
            std::vector<std::string> names;
            for (auto& [name, a] : self->accounts)
                if (!a->removed && uses_token_file(a->config)) names.push_back(name);
            auth::TokenStore& store = self->store;
            auto job = [&store, names] {
                std::vector<std::optional<std::filesystem::file_time_type>> stamps;
                for (const auto& name : names) stamps.push_back(store.stamp(name));
                return stamps;
            };
            auto stamps = co_await run_blocking(self->pool, std::move(job));
            // Accounts are never erased (only marked removed), so the names still resolve.
            for (std::size_t i = 0; i < names.size(); ++i) {
                Account& a = *self->accounts.at(names[i]);
                if (a.token_stamp_known && a.token_stamp != stamps[i]) self->token_file_changed(a);
                a.token_stamp = stamps[i];
                a.token_stamp_known = true;
            }
            const auto now = Steady::now();
            for (auto& [name, a] : self->accounts) {
                if (a->removed || a->upkeep_running || now < a->next_upkeep) continue;
                a->upkeep_running = true;
                a->next_upkeep = now + upkeep_interval(a->config);
                asio::co_spawn(self->io, upkeep(self, a.get()), asio::detached);
            }
            self->watch_timer.expires_after(1s);
            co_await self->watch_timer.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }

    static asio::awaitable<void> upkeep(std::shared_ptr<Impl> self, Account* a) {
        co_await a->tokens->upkeep();
        a->upkeep_running = false;
    }

    // A new token file (or one this relay wrote) for an account in trouble: the cause may be fixed,
    // so drop the account's backoff and retry its deferred mail now.
    void token_file_changed(Account& a) {
        if (a.on_hold && store.stamp(a.config.name) != a.hold_token_stamp) release_account(a, "token file changed");
        if (a.account_failures == 0 && Steady::now() >= a.backoff_until) return;  // healthy: next use re-reads it
        log::info("account_woken", {{"account", a.config.name}, {"reason", "token file changed"},
                                    {"deferred", a.deferred.size()}});
        a.backoff_until = {};
        a.account_failures = 0;
        while (!a.deferred.empty()) {
            a.ready.push_back(std::move(a.deferred.begin()->second));
            a.deferred.erase(a.deferred.begin());
        }
        kick(a);
        rearm(a);
    }

    // Replaces a stale or broken session with a newly authenticated one; the failure when that fails
    // (logged here unless it puts the account on hold, which logs its own line).
    asio::awaitable<std::optional<AccountFailure>> reopen(Account& a, OpenSession& open) {
        if (open.session) co_await open.session->quit();
        open = {};
        std::optional<AccountFailure> failure;
        try {
            open = co_await open_session(a);
        } catch (const AccountFailure& f) {
            failure = f;
        }
        if (failure && !failure->hold_action)
            log::warning("upstream_unavailable", {{"account", a.config.name}, {"error", failure->reason}});
        co_return failure;
    }

    static asio::awaitable<void> worker(std::shared_ptr<Impl> self, Account* a) {
        OpenSession open;
        while (!self->stopping) {
            if (a->ready.empty() || Steady::now() < a->backoff_until || a->on_hold) {
                if (!open.session || self->stopping) break;
                // Keep the authenticated session for a moment: mail often comes in bursts.
                asio::steady_timer idle(self->io, kIdleSessionKeep);
                a->idle_workers.push_back(&idle);
                auto [ec] = co_await idle.async_wait(asio::as_tuple(asio::use_awaitable));
                std::erase(a->idle_workers, &idle);
                if (!ec) break;  // nothing came in time: QUIT
                continue;
            }
            if (!open.usable()) {
                std::optional<AccountFailure> failure = co_await self->reopen(*a, open);
                if (failure && failure->hold_action) {
                    self->hold_account(*a, failure->reason, *failure->hold_action);
                    break;
                }
                if (failure) {
                    self->back_off_account(*a, failure->reason);
                    // Charge one attempt to the oldest ready message so its log shows the trouble.
                    if (!a->ready.empty()) {
                        Item item = std::move(a->ready.front());
                        a->ready.pop_front();
                        ++item.attempts;
                        self->defer(*a, std::move(item), failure->reason);
                    }
                    break;
                }
                // Connecting took a while: another worker may have taken the ready messages meanwhile.
                continue;
            }
            // Other workers ran while this one connected: the queue may be empty by now.
            if (a->ready.empty()) continue;
            Item item = std::move(a->ready.front());
            a->ready.pop_front();
            if (!co_await self->deliver(*a, *open.session, std::move(item))) open = {};
        }
        if (open.session) co_await open.session->quit();
        --a->workers;
        self->kick(*a);
    }

    // ---- direct mode ----------------------------------------------------------------------------

    asio::awaitable<std::string> deliver_direct(QueuedMessage message) {
        auto it = accounts.find(message.envelope.account);
        if (it == accounts.end() || it->second->removed)
            co_return std::string(smtp::replies::kAccountNotConfigured);
        Account& a = *it->second;
        if (a.on_hold) co_return std::string(smtp::replies::kAccountOnHold);
        // A connection slot: an idle authenticated session, or room for a new one.
        const auto give_up = Steady::now() + 120s;
        asio::steady_timer poll(io);
        while (a.direct_idle.empty() && a.connections() >= std::max(1u, a.config.max_connections)) {
            if (Steady::now() > give_up) co_return std::string(smtp::replies::kUpstreamBusy);
            poll.expires_after(20ms);
            co_await poll.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        OpenSession open;
        if (!a.direct_idle.empty()) {
            open = std::move(a.direct_idle.back().first);
            a.direct_idle.pop_back();
        } else {
            ++a.direct_open;
        }
        if (!open.usable()) {
            std::optional<AccountFailure> failure = co_await reopen(a, open);
            if (failure) {
                --a.direct_open;
                if (failure->hold_action) hold_account(a, failure->reason, *failure->hold_action);
                kick(a);
                co_return std::string(smtp::replies::kUpstreamUnavailable);
            }
        }
        Item item{std::move(message), 1, {}};
        Outcome out;
        std::string read_error;
        try {
            out = co_await send_chunks(a, *open.session, item.message);
        } catch (const std::system_error& e) {
            read_error = e.what();
        }
        if (open.usable() && out.io_error.empty() && !stopping) {
            a.direct_idle.emplace_back(std::move(open), Steady::now());
            asio::co_spawn(io, reap_direct(shared_from_this(), &a), asio::detached);
        } else {
            if (open.session) co_await open.session->quit();
            --a.direct_open;
        }
        kick(a);
        if (!read_error.empty()) co_return std::string(smtp::replies::kSpoolReadError);
        if (out.hold) hold_account(a, out.hold->text(), *hold_action_for(*out.hold));
        for (const auto& f : out.failed)
            log::warning("recipient_failed", {{"queue_id", item.message.id}, {"rcpt", f.address},
                                              {"upstream_reply", f.diagnostic}, {"delivery", "direct"}});
        if (!out.delivered.empty()) {
            log::info("delivered", {{"queue_id", item.message.id}, {"account", a.config.name},
                                    {"from", item.message.envelope.mail_from},
                                    {"rcpt_count", out.delivered.size()}, {"size", item.message.size},
                                    {"upstream_reply", out.last_ok->text()}, {"attempt", 1},
                                    {"delay_ms", ms_since(item.message.received)}, {"delivery", "direct"}});
            if (!out.retry.empty())
                log::warning("recipients_not_retried", {{"queue_id", item.message.id}, {"rcpt_count", out.retry.size()},
                                                        {"detail", "direct mode answers once; the client got 250"}});
            co_return reply_line(*out.last_ok);
        }
        const smtp::Reply* verdict = out.hold ? &*out.hold : out.first_permanent ? &*out.first_permanent
                                               : out.first_transient ? &*out.first_transient : nullptr;
        log::warning("direct_refused", {{"queue_id", item.message.id}, {"account", a.config.name},
                                        {"upstream_reply", verdict ? verdict->text() : out.io_error}});
        if (verdict) co_return reply_line(*verdict);
        co_return std::string(smtp::replies::kUpstreamBroke);
    }

    // Closes direct-mode sessions that stayed idle for kIdleSessionKeep.
    static asio::awaitable<void> reap_direct(std::shared_ptr<Impl> self, Account* a) {
        asio::steady_timer timer(self->io, kIdleSessionKeep);
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        std::vector<OpenSession> expired;
        auto now = Steady::now();
        std::erase_if(a->direct_idle, [&](auto& entry) {
            if (!self->stopping && now - entry.second < kIdleSessionKeep) return false;
            expired.push_back(std::move(entry.first));
            return true;
        });
        for (auto& open : expired) {
            if (open.session) co_await open.session->quit();
            --a->direct_open;
        }
        if (!expired.empty()) self->kick(*a);
    }

    // ---- queue tools ----------------------------------------------------------------------------

    // Removes a waiting (ready or deferred) message from its account's queues.
    std::optional<Item> take_waiting(const std::string& id, Account** owner = nullptr) {
        for (auto& [name, a] : accounts) {
            for (auto it = a->ready.begin(); it != a->ready.end(); ++it)
                if (it->message.id == id) {
                    Item item = std::move(*it);
                    a->ready.erase(it);
                    if (owner) *owner = a.get();
                    return item;
                }
            for (auto it = a->deferred.begin(); it != a->deferred.end(); ++it)
                if (it->second.message.id == id) {
                    Item item = std::move(it->second);
                    a->deferred.erase(it);
                    rearm(*a);
                    if (owner) *owner = a.get();
                    return item;
                }
        }
        return std::nullopt;
    }

    void make_ready(Item item) {
        auto it = accounts.find(item.message.envelope.account);
        if (it == accounts.end()) {
            --in_flight;
            log::error("account_unknown", {{"queue_id", item.message.id}, {"account", item.message.envelope.account},
                                           {"action", "message kept in the spool; add the account back or delete it"}});
            return;
        }
        Account& a = *it->second;
        a.backoff_until = {};
        a.account_failures = 0;
        release_account(a, "queue retry");
        a.ready.push_back(std::move(item));
        kick(a);
    }

    void handle(const ControlRequest& r) {
        using Verb = ControlRequest::Verb;
        std::string text = format_request(r);
        text.pop_back();   // the newline
        log::info("queue_request", {{"request", text}});
        if (r.verb == Verb::retry_all) {
            for (auto& [name, a] : accounts) {
                while (!a->deferred.empty()) {
                    a->ready.push_back(std::move(a->deferred.begin()->second));
                    a->deferred.erase(a->deferred.begin());
                }
                a->backoff_until = {};
                a->account_failures = 0;
                release_account(*a, "queue retry");
                rearm(*a);
                kick(*a);
            }
            return;
        }
        const std::filesystem::path file = spool.queue_path(r.id);
        if (r.verb == Verb::retry) {
            if (auto item = take_waiting(r.id)) return make_ready(std::move(*item));
            if (held.count(r.id) || active.count(r.id)) return;
            if (!std::filesystem::exists(file)) return;
            // Not known: a failed message the tool moved back into queue/.
            QueuedMessage message;
            try {
                message = Spool::read(file);
            } catch (const std::exception& e) {
                log::error("queue_request_failed", {{"queue_id", r.id}, {"error", e.what()}});
                return;
            }
            ++in_flight;
            make_ready(Item{std::move(message), 0, {}});
        } else if (r.verb == Verb::hold) {
            if (auto item = take_waiting(r.id)) held.emplace(r.id, std::move(*item));
        } else if (r.verb == Verb::release) {
            auto it = held.find(r.id);
            if (it == held.end() || std::filesystem::exists(hold_path(file))) return;
            Item item = std::move(it->second);
            held.erase(it);
            make_ready(std::move(item));
        } else if (r.verb == Verb::remove) {
            if (active.count(r.id)) {
                forgotten.insert(r.id);
                return;
            }
            bool known = take_waiting(r.id).has_value() || held.erase(r.id) > 0;
            if (known) {
                --in_flight;
                log::info("deleted", {{"queue_id", r.id}});
            }
        }
    }

    void tokens_changed() {
        for (auto& [name, a] : accounts)
            if (a->on_hold && store.stamp(name) != a->hold_token_stamp) release_account(*a, "token file changed");
    }
};

DeliveryAgent::DeliveryAgent(asio::any_io_executor io, asio::thread_pool& blocking, Spool& spool,
                             std::shared_ptr<const conf::Config> config, auth::HttpClient& http, auth::TokenStore& tokens)
    : impl_(std::make_shared<Impl>(std::move(io), blocking, spool, std::move(config), http, tokens)) {}

DeliveryAgent::~DeliveryAgent() = default;

void DeliveryAgent::start(std::vector<QueuedMessage> recovered) {
    impl_->start_retry_loops();
    asio::co_spawn(impl_->io, Impl::token_watch(impl_), asio::detached);
    if (!recovered.empty()) log::info("queue_recovered", {{"messages", recovered.size()}});
    for (auto& m : recovered) impl_->recover(std::move(m));
}

asio::awaitable<std::string> DeliveryAgent::deliver_direct(QueuedMessage message) {
    auto self = impl_;
    co_return co_await self->deliver_direct(std::move(message));
}

void DeliveryAgent::handle_requests(const std::vector<ControlRequest>& requests) {
    for (const auto& r : requests) impl_->handle(r);
}

void DeliveryAgent::tokens_changed() { impl_->tokens_changed(); }

void DeliveryAgent::enqueue(QueuedMessage message) { impl_->enqueue(Item{std::move(message), 0, {}}); }

void DeliveryAgent::update_config(std::shared_ptr<const conf::Config> config) {
    impl_->config = std::move(config);
    for (const auto& name : impl_->apply_config())
        asio::co_spawn(impl_->io, Impl::retry_loop(impl_, impl_->accounts.at(name).get()), asio::detached);
    for (auto& [name, a] : impl_->accounts) {
        impl_->rearm(*a);
        impl_->kick(*a);
    }
}

asio::awaitable<void> DeliveryAgent::stop(std::chrono::milliseconds deadline) {
    impl_->stopping = true;
    impl_->watch_timer.cancel();
    for (auto& [name, a] : impl_->accounts) {
        for (auto* idle : a->idle_workers) idle->cancel();
        a->idle_workers.clear();
        a->retry_timer.cancel();
    }
    auto until = Steady::now() + deadline;
    asio::steady_timer poll(impl_->io);
    auto busy = [&] {
        for (auto& [name, a] : impl_->accounts)
            if (a->workers > 0) return true;
        return false;
    };
    while (busy() && Steady::now() < until) {
        poll.expires_after(20ms);
        co_await poll.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

std::size_t DeliveryAgent::queued() const { return impl_->in_flight; }

std::vector<DeliveryAgent::AccountState> DeliveryAgent::account_states() const {
    std::vector<AccountState> states;
    auto now = Steady::now();
    for (const auto& [name, a] : impl_->accounts) {
        if (a->removed) continue;
        AccountState s;
        s.name = name;
        s.ready = a->ready.size();
        s.deferred = a->deferred.size();
        s.sessions = a->workers;
        auto older = [&](const Item& item) {
            if (!s.oldest || item.message.received < *s.oldest) s.oldest = item.message.received;
        };
        for (const auto& item : a->ready) older(item);
        for (const auto& [when, item] : a->deferred) older(item);
        if (a->backoff_until > now)
            s.backoff_remaining = std::chrono::ceil<std::chrono::seconds>(a->backoff_until - now);
        s.on_hold = a->on_hold;
        for (const auto& [id, item] : impl_->held)
            if (item.message.envelope.account == name) ++s.held;
        s.token = a->tokens->status();
        states.push_back(std::move(s));
    }
    return states;
}

}  // namespace relay
