// Per-account delivery workers, retry timers and the outcome of each attempt. Runs on the single
// I/O thread; token HTTP and failure-file fsyncs run on the blocking pool.
#include "relay/delivery.hpp"

#include <utility>

#include <deque>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "auth/sasl.hpp"
#include "auth/token_manager.hpp"
#include "relay/blocking.hpp"
#include "relay/log.hpp"
#include "relay/retry_schedule.hpp"

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
};

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

    Impl(asio::any_io_executor e, asio::thread_pool& p, Spool& s, std::shared_ptr<const conf::Config> c,
         auth::HttpClient& h, auth::TokenStore& ts)
        : io(std::move(e)), pool(p), spool(s), config(std::move(c)), http(h), store(ts) {
        apply_config();
    }

    // Brings `accounts` and `schedule` in line with `config`; returns the names of new accounts.
    std::vector<std::string> apply_config() {
        schedule = RetrySchedule{config->relay.min_backoff, config->relay.max_backoff, config->relay.max_queue_lifetime};
        std::vector<std::string> added;
        for (const auto& [name, account] : config->accounts) {
            auto it = accounts.find(name);
            if (it == accounts.end()) {
                auto a = std::make_unique<Account>(io);
                a->config = account;
                a->tokens = std::make_unique<auth::TokenManager>(account, store, http, io, pool);
                a->tls = make_upstream_tls_context(account.upstream_ca_file);
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
        it->second->ready.push_back(std::move(item));
        kick(*it->second);
    }

    void kick(Account& a) {
        if (stopping || a.removed || a.ready.empty()) return;
        if (Steady::now() < a.backoff_until) {
            rearm(a);
            return;
        }
        if (!a.idle_workers.empty()) {
            a.idle_workers.back()->cancel();
            a.idle_workers.pop_back();
            return;
        }
        if (a.workers < std::max(1u, a.config.max_connections)) {
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
        auto age = std::chrono::duration_cast<std::chrono::seconds>(SystemClock::now() - item.message.received);
        if (schedule.expired(age)) {
            fail(item, fmt::format("message expired after {} attempts in the queue; last reply: {}",
                                   item.attempts, reply));
            return;
        }
        auto delay = schedule.delay_after(item.attempts);
        log::warning("deferred", {{"queue_id", item.message.id}, {"account", a.config.name},
                                  {"upstream_reply", reply}, {"attempt", item.attempts},
                                  {"next_try_in_s", static_cast<long>(delay.count())}});
        a.deferred.emplace(Steady::now() + delay, std::move(item));
        rearm(a);
    }

    void back_off_account(Account& a, const std::string& reason) {
        ++a.account_failures;
        auto delay = schedule.delay_after(a.account_failures);
        a.backoff_until = Steady::now() + delay;
        log::warning("account_backoff", {{"account", a.config.name}, {"reason", reason},
                                         {"failures", a.account_failures},
                                         {"next_try_in_s", static_cast<long>(delay.count())}});
        rearm(a);
    }

    void fail(const Item& item, const std::string& reason) {
        --in_flight;
        log::error("failed", {{"queue_id", item.message.id}, {"account", item.message.envelope.account},
                              {"from", item.message.envelope.mail_from},
                              {"rcpt_count", item.message.envelope.rcpt_to.size()},
                              {"upstream_reply", reason}, {"attempt", item.attempts},
                              {"delay_ms", ms_since(item.message.received)}});
        try {
            spool.move_to_failed(item.message, reason);
        } catch (const std::exception& e) {
            log::error("spool_move_failed", {{"queue_id", item.message.id}, {"error", e.what()}});
        }
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

        std::string token, token_error;
        try {
            token = co_await a.tokens->access_token();
        } catch (const auth::TokenError& e) {
            token_error = e.what();
        }
        if (!token_error.empty()) {
            co_await session->quit();
            throw AccountFailure{"token: " + token_error};
        }
        smtp::Reply reply = co_await authenticate(a, *session, token);
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
                throw AccountFailure{"token: " + token_error};
            }
            reply = co_await authenticate(a, *session, token);
        }
        if (reply.code != 235) {
            co_await session->quit();
            throw AccountFailure{"AUTH refused: " + reply.text()};
        }
        auto now = SystemClock::now();
        auto valid_until = a.tokens->status().access_valid_until;
        auto margin = std::chrono::duration_cast<SystemClock::duration>(
            auth::refresh_margin(std::chrono::duration_cast<std::chrono::milliseconds>(valid_until - now)));
        co_return OpenSession{std::move(session), valid_until > now ? valid_until - margin : now};
    }

    asio::awaitable<smtp::Reply> authenticate(Account& a, UpstreamSession& session, const std::string& token) {
        try {
            if (a.config.upstream_auth == conf::UpstreamAuth::oauthbearer)
                co_return co_await session.authenticate(
                    "OAUTHBEARER", auth::oauthbearer_response(a.config.email, a.config.upstream.host,
                                                              a.config.upstream.port, token));
            co_return co_await session.authenticate("XOAUTH2", auth::xoauth2_response(a.config.email, token));
        } catch (const UpstreamError& e) {
            throw AccountFailure{std::string("AUTH: ") + e.what()};
        }
    }

    // One message on an open session. Returns false when the session broke.
    asio::awaitable<bool> deliver(Account& a, UpstreamSession& session, Item item) {
        ++item.attempts;
        TransactionResult result;
        try {
            SpoolBodyReader body(item.message);
            result = co_await session.send(item.message.envelope, item.message.size, body);
        } catch (const UpstreamError& e) {
            defer(a, std::move(item), e.what());
            co_return false;
        } catch (const std::system_error& e) {
            fail(item, std::string("cannot read queue file: ") + e.what());
            co_return session.usable();
        }
        const smtp::Reply& reply = result.final_reply;
        std::vector<std::string> retry_rcpts;
        for (const auto& [rcpt, r] : result.rejected) {
            if (r.transient()) {
                retry_rcpts.push_back(rcpt);
            } else {
                log::error("recipient_failed", {{"queue_id", item.message.id}, {"rcpt", rcpt},
                                                {"upstream_reply", r.text()}});
            }
        }
        if (result.data_sent && reply.positive()) {
            a.account_failures = 0;
            log::info("delivered", {{"queue_id", item.message.id}, {"account", a.config.name},
                                    {"from", item.message.envelope.mail_from},
                                    {"rcpt_count", result.accepted.size()}, {"size", item.message.size},
                                    {"upstream_reply", reply.text()}, {"attempt", item.attempts},
                                    {"delay_ms", ms_since(item.message.received)}});
            if (retry_rcpts.empty()) {
                --in_flight;
                spool.remove(item.message);
            } else {
                item.message.envelope.rcpt_to = std::move(retry_rcpts);
                defer(a, std::move(item), "some recipients deferred");
            }
            co_return session.usable();
        }
        if (!result.data_sent && !retry_rcpts.empty() && !reply.permanent()) {
            item.message.envelope.rcpt_to = std::move(retry_rcpts);
            defer(a, std::move(item), reply.text());
        } else if (reply.transient() || reply.code == 0) {
            // 421/432: the provider is pacing this mailbox; slow the whole account down.
            if (reply.code == 421 || reply.code == 432) back_off_account(a, reply.text());
            defer(a, std::move(item), reply.text());
        } else {
            fail(item, reply.text());
        }
        co_return session.usable();
    }

    static asio::awaitable<void> worker(std::shared_ptr<Impl> self, Account* a) {
        OpenSession open;
        while (!self->stopping) {
            if (a->ready.empty() || Steady::now() < a->backoff_until) {
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
                if (open.session) co_await open.session->quit();
                open = {};
                std::string failure;
                try {
                    open = co_await self->open_session(*a);
                } catch (const AccountFailure& f) {
                    failure = f.reason;
                }
                if (!failure.empty()) {
                    log::warning("upstream_unavailable", {{"account", a->config.name}, {"error", failure}});
                    self->back_off_account(*a, failure);
                    // Charge one attempt to the oldest ready message so its log shows the trouble.
                    if (!a->ready.empty()) {
                        Item item = std::move(a->ready.front());
                        a->ready.pop_front();
                        ++item.attempts;
                        self->defer(*a, std::move(item), failure);
                    }
                    break;
                }
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
};

DeliveryAgent::DeliveryAgent(asio::any_io_executor io, asio::thread_pool& blocking, Spool& spool,
                             std::shared_ptr<const conf::Config> config, auth::HttpClient& http, auth::TokenStore& tokens)
    : impl_(std::make_shared<Impl>(std::move(io), blocking, spool, std::move(config), http, tokens)) {}

DeliveryAgent::~DeliveryAgent() = default;

void DeliveryAgent::start(std::vector<QueuedMessage> recovered) {
    impl_->start_retry_loops();
    if (!recovered.empty()) log::info("queue_recovered", {{"messages", recovered.size()}});
    for (auto& m : recovered) impl_->enqueue(Item{std::move(m), 0, {}});
}

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

}  // namespace relay
