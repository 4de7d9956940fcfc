// The inside of DeliveryAgent, shared by its four files (not for other folders):
//   delivery.cpp          the account registry (config and reload), recovery, the retry timers, the
//                         token-file reaction, status snapshots, start and stop;
//   delivery_worker.cpp   the workers: one upstream session each, message after message, and what
//                         each outcome does to the message (delivered, deferred, failed + DSN) and
//                         to the account (backoff, hold);
//   delivery_direct.cpp   direct mode: deliver while the client waits, on reused sessions;
//   delivery_requests.cpp the queue tools' requests (retry, hold, release, delete);
//   delivery_senders.cpp  who a message is sent as (rewrite_sender) and senders Exchange refused.
// What to send next and when is decided by each account's AccountQueue (pure, unit-tested); how it
// is sent by its Transport. This layer owns the timers, the sessions and the files. Everything
// runs on the single I/O thread; blocking work (DSN commits, moves to failed/) goes to the pool.
#pragma once

#include <utility>  // GCC 12 + Boost 1.81: must precede asio/awaitable.hpp

#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "relay/core/clock.hpp"
#include "relay/delivery/account_hold.hpp"
#include "relay/delivery/account_queue.hpp"
#include "relay/delivery/denied_senders.hpp"
#include "relay/delivery/delivery.hpp"
#include "relay/delivery/dsn.hpp"
#include "relay/delivery/transport.hpp"

namespace relay {

namespace asio = boost::asio;
using Steady = std::chrono::steady_clock;

// The admin's next step for an outcome that holds the account: the transport's own (Graph knows
// which grant is missing), else the SMTP reply's.
inline std::string hold_action_of(const Outcome& out) {
    if (out.hold_action) return *out.hold_action;
    return hold_action_for(*out.hold).value_or("see the relay log, fix the cause, then: smtp-oauth2-relay queue retry --all");
}

// Keep an authenticated session this long for the next message: mail often comes in bursts.
inline constexpr auto kIdleSessionKeep = std::chrono::seconds(5);
// How long a direct-mode client waits for a free upstream connection before it gets a 451.
inline constexpr auto kDirectSlotWait = std::chrono::seconds(120);

struct DeliveryAgent::Impl : std::enable_shared_from_this<Impl> {
    struct Account {
        Account(asio::any_io_executor io, const core::Clock& clock)
            : queue(clock), denied(clock), retry_timer(io, Steady::time_point::max()) {}
        conf::Account config;
        std::unique_ptr<auth::TokenManager> tokens;
        std::shared_ptr<Transport> transport;   // replaced at a reload; an open() in progress keeps its own
        AccountQueue queue;
        DeniedSenders denied;             // senders Exchange just refused: their mail fails at once
        unsigned workers = 0;
        std::vector<asio::steady_timer*> idle_workers;   // each idle worker's timer; cancel to wake it
        std::deque<asio::steady_timer*> slot_waiters;    // direct-mode callers waiting for a connection
        asio::steady_timer retry_timer;   // next deferred message or end of account backoff
        bool removed = false;             // gone from the config at a reload: start nothing
        std::optional<std::filesystem::file_time_type> hold_token_stamp;  // token file when put on hold
        // For `status` (issue 12, item 5): why the account is held and what to do, and the last
        // error of the account or its mail, which a hold or a success does not wipe.
        std::string hold_reason;
        std::string hold_action;
        std::string last_error;
        SystemClock::time_point last_error_at{};
        unsigned active = 0;              // messages being sent right now by the workers
        void note_error(const std::string& error) {
            last_error = error;
            last_error_at = SystemClock::now();
        }
        unsigned direct_open = 0;         // direct-mode sessions open, busy or idle
        std::vector<std::pair<std::unique_ptr<TransportSession>, Steady::time_point>> direct_idle;

        unsigned connections() const { return workers + direct_open; }
        // SMTP connections, or for Graph one per request Graph allows at once for the mailbox.
        bool slot_free() const {
            const unsigned limit = config.transport == conf::TransportKind::graph ? config.graph_concurrent_requests
                                                                                  : config.max_connections;
            return connections() < std::max(1u, limit);
        }
    };

    asio::any_io_executor io;
    asio::thread_pool& pool;
    Spool& spool;
    std::shared_ptr<const conf::Config> config;
    auth::HttpClient& http;
    auth::TokenStore& store;
    const core::Clock& clock = core::SteadyClock::instance();
    RetrySchedule schedule;
    std::map<std::string, std::unique_ptr<Account>> accounts;   // never erased, only marked removed
    std::size_t in_flight = 0;
    bool stopping = false;
    asio::steady_timer drained{io};       // stop(): its deadline, cancelled when the last worker ends
    std::set<std::string> active;         // ids being sent right now
    std::set<std::string> forgotten;      // deleted by `queue delete` while being sent

    Impl(asio::any_io_executor e, asio::thread_pool& p, Spool& s, std::shared_ptr<const conf::Config> c,
         auth::HttpClient& h, auth::TokenStore& ts);

    // ---- delivery.cpp --------------------------------------------------------------------------
    std::vector<std::string> apply_config();
    void start_account(Account& a);
    void spawn_retry_loop(Account& a);
    void enqueue(Item item);
    void recover(QueuedMessage message);
    void kick(Account& a);
    void rearm(Account& a);
    static asio::awaitable<void> retry_loop(std::shared_ptr<Impl> self, Account* a);
    void hold_account(Account& a, const std::string& reason, const std::string& action);
    void release_account(Account& a, std::string_view why);
    void wait_for_token(Account& a, const std::string& reason, std::chrono::seconds at_most);
    void token_arrived(Account& a);
    void token_files_changed(const std::set<std::string>& names, bool all);
    void token_file_changed(Account& a);
    bool busy() const;
    void worker_ended(Account& a);
    asio::awaitable<void> stop(std::chrono::milliseconds deadline);

    // ---- delivery_worker.cpp -------------------------------------------------------------------
    void spawn_worker(Account& a);
    static asio::awaitable<void> worker(std::shared_ptr<Impl> self, Account* a);
    asio::awaitable<std::optional<AccountFailure>> reopen(Account& a, std::unique_ptr<TransportSession>& open);
    asio::awaitable<Outcome> send(Account& a, TransportSession& session, const QueuedMessage& message);
    asio::awaitable<bool> deliver(Account& a, TransportSession& session, Item item);
    // ---- delivery_senders.cpp ------------------------------------------------------------------
    // The copy of `message` that goes upstream: rewrite_sender applied to envelope and From:;
    // `header_from` is set to the From: address it carries. Throws std::system_error when the
    // queue file cannot be read.
    asio::awaitable<QueuedMessage> upstream_copy(const Account& a, const QueuedMessage& message,
                                                 std::string& header_from);
    // Exchange refused this sender a moment ago: the earlier refusal, and the log line naming it.
    std::optional<DeniedSenders::Denial> recently_denied(Account& a, const QueuedMessage& upstream,
                                                         const std::string& header_from);
    // After an attempt whose outcome refused the sender: remember it, log it with the admin's fix.
    void sender_refused(Account& a, const QueuedMessage& upstream, const std::string& header_from,
                        const smtp::Reply& reply);
    // `wait`: the provider said when to come back (Graph's Retry-After); otherwise the schedule decides.
    void defer(Account& a, Item item, const std::string& reply, std::optional<std::chrono::seconds> wait = std::nullopt);
    void back_off_account(Account& a, const std::string& reason);
    void back_off_account_for(Account& a, const std::string& reason, std::chrono::seconds delay);
    bool forget_if_deleted(const Item& item);
    void fail(const Item& item, const std::string& reason, std::vector<FailedRecipient> recipients = {});
    void bounce(const QueuedMessage& original, std::vector<FailedRecipient> recipients);
    static asio::awaitable<void> queue_dsn(std::shared_ptr<Impl> self, DsnInput in);
    void save_state(const Item& item, SystemClock::time_point next_try);

    // ---- delivery_direct.cpp -------------------------------------------------------------------
    asio::awaitable<std::string> deliver_direct(QueuedMessage message);
    asio::awaitable<bool> wait_for_slot(Account& a);
    void slot_freed(Account& a);
    static asio::awaitable<void> reap_direct(std::shared_ptr<Impl> self, Account* a);

    // ---- delivery_requests.cpp -----------------------------------------------------------------
    void handle(const ControlRequest& r);
    std::optional<Item> take_waiting(const std::string& id);
    void make_ready(Item item);
};

}  // namespace relay
