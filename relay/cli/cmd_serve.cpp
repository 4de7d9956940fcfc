// `serve`: wires config, spool, token managers, delivery and the SMTP listeners onto one I/O thread
// plus a small pool for blocking work, then runs until SIGTERM/SIGINT.
#include <utility>

#include <cstdio>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include "auth/http_client.hpp"
#include "auth/token_file_watcher.hpp"
#include "auth/token_store.hpp"
#include "relay/service/admin_server.hpp"
#include "relay/cli/cli.hpp"
#include "relay/cli/maildrop.hpp"
#include "relay/delivery/delivery.hpp"
#include "relay/core/durable_file.hpp"
#include "relay/spool/queue_control.hpp"
#include "relay/core/log.hpp"
#include "relay/core/spawn.hpp"
#include "relay/service/metrics.hpp"
#include "relay/service/sd_notify.hpp"
#include "relay/service/status_source.hpp"
#include "relay/intake/fd_budget.hpp"
#include "relay/intake/smtp_server.hpp"
#include "relay/service/startup_checks.hpp"
#include "relay/spool/spool.hpp"

namespace relay::cli {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr const char* kServeHelp = R"(usage: smtp-oauth2-relay serve [--config FILE]

Runs the relay in the foreground and logs to stderr. SIGTERM or SIGINT stop it gracefully: the
listeners close, transactions in flight finish (up to 10 s), undelivered mail stays in the spool
for the next start.
)";

// One deadline for the whole graceful stop (listeners drain, then delivery finishes what is in
// flight, each with what is left of it). kHardStopGrace later the I/O loop is stopped regardless:
// whatever still runs is abandoned, and its mail stays in the spool.
constexpr auto kDrainDeadline = 10s;
constexpr auto kHardStopGrace = 2s;

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
    return out;
}

// Issue 13, item 11: the caps the listeners enforce are the configured ones cut to what the
// descriptor limit allows (fd_budget.hpp); logged at start and whenever a reload changes them.
std::shared_ptr<const conf::Config> within_fd_limit(conf::Config config) {
    const std::uint64_t limit = raise_fd_limit();
    std::size_t upstream = 0;
    for (const auto& [name, account] : config.accounts) upstream += account.max_connections;
    const std::size_t listeners = config.relay.listen.size() + config.relay.listen_tls.size();
    const FdBudget b = plan_fd_budget(limit, config.relay.max_clients, config.relay.max_clients_per_ip, upstream, listeners);
    log::event(b.reduced ? log::Level::warning : log::Level::info,
        "fd_limits", {{"nofile", static_cast<long long>(b.limit)}, {"reserve", b.reserve},
                      {"max_clients", b.max_clients}, {"max_clients_per_ip", b.max_clients_per_ip},
                      {"configured_max_clients", config.relay.max_clients},
                      {"configured_max_clients_per_ip", config.relay.max_clients_per_ip}});
    config.relay.max_clients = b.max_clients;
    config.relay.max_clients_per_ip = b.max_clients_per_ip;
    return std::make_shared<const conf::Config>(std::move(config));
}

// Issue 13, item 6: the directories the relay trusts (see startup_checks.hpp). Throws naming the path.
void check_directories(const conf::Config& config) {
    check_private_tree(config.relay.spool_dir, {"incoming", "queue", "failed", "control", "recycled"});
    check_private_tree(config.relay.state_dir, {"tokens"}, {"tls"});
    if (config_exposes_secrets(config.source))
        log::warning("config_readable_by_others",
                     {{"path", config.source.string()},
                      {"detail", "it holds a client secret or passwords; run: chmod o-rwx " + config.source.string()}});
}

// SIGHUP: re-read the config file. A broken file changes nothing; the running config stays.
void reload(std::shared_ptr<const conf::Config>& current, SmtpServer& server, DeliveryAgent& delivery) {
    log::info("reloading", {{"config", current->source.string()}});
    std::shared_ptr<const conf::Config> next;
    try {
        next = within_fd_limit(conf::load_config(current->source));
    } catch (const conf::ConfigError& e) {
        for (const auto& line : e.errors()) log::error("reload_config_error", {{"error", line}});
        log::error("reload_failed", {{"detail", "configuration has errors; keeping the running configuration"}});
        return;
    }
    try {
        log::set_level(next->relay.log_level);
        log::set_format(next->relay.log_format);
        log::set_log_recipients(next->relay.log_recipients);
        server.update_config(next);
        delivery.update_config(next);
        current = next;
        log::info("reloaded", {{"accounts", current->accounts.size()}, {"users", current->users.size()}});
    } catch (const std::exception& e) {
        log::error("reload_failed", {{"error", e.what()}});
    }
}

// The listeners drain, the watchers stop, delivery finishes what is in flight; all by `until`.
asio::awaitable<void> graceful_stop(asio::io_context& io, SmtpServer& server, ControlWatcher& control,
                                    auth::TokenFileWatcher& token_files, DeliveryAgent& delivery,
                                    std::chrono::steady_clock::time_point until) {
    const auto left = [until] {
        return std::max(0ms, std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()));
    };
    co_await server.shutdown(left());
    control.stop();
    token_files.stop();
    co_await delivery.stop(left());
    log::info("stopped", {{"queued", delivery.queued()}});
    io.stop();
}

}  // namespace

int run_serve(const std::vector<std::string>& args) {
    auto options = parse_options("serve", args, {}, kServeHelp);
    if (!options) return kUsageError;
    if (options->help) return kOk;
    if (!options->positional.empty()) {
        std::fprintf(stderr, "smtp-oauth2-relay serve: unexpected argument '%s'\n\n%s",
                     options->positional[0].c_str(), kServeHelp);
        return kUsageError;
    }
    auto loaded = load_config_or_report(*options);
    if (!loaded) return kUsageError;
    log::set_level(loaded->relay.log_level);
    log::set_format(loaded->relay.log_format);
    log::set_log_recipients(loaded->relay.log_recipients);
    warn_about_default_passwords(*loaded);
    warn_about_refused_local_mail(*loaded);
    print_config_warnings(*loaded);
    log::set_observer(&metrics::observe);
    try {
        check_directories(*loaded);
    } catch (const std::exception& e) {
        log::error("untrusted_directory", {{"error", e.what()}});
        return kRuntimeError;
    }
    auto config = within_fd_limit(std::move(*loaded));

    try {
        asio::io_context io(1);
        // Issue 13, item 2: one pool per kind of blocking work, so the durable commit behind every
        // end-of-data 250 never queues behind password hashing or a slow token endpoint. The KDF
        // queue is bounded by AuthAttempts (more checks in flight get 454 4.7.0).
        asio::thread_pool durable(2);   // spool commits (fsync) only
        asio::thread_pool kdf(2);       // password hash checks only
        asio::thread_pool blocking(4);  // libcurl and delivery's file work
        Spool spool(config->relay.spool_dir);
        auth::TokenStore token_store(config->relay.state_dir);
        auth::CurlHttpClient http;
        SpoolCommitter committer(spool, io.get_executor(), durable);
        DeliveryAgent delivery(io.get_executor(), blocking, spool, config, http, token_store);
        SmtpServer server(io.get_executor(), config, spool, committer, kdf,
                          [&delivery](QueuedMessage m) { delivery.enqueue(std::move(m)); });
        // Service endpoints (issue 5): status over the control socket, optional /metrics. Bound before
        // anything touches the spool, so a second relay on the same config stops here.
        const auto started = SystemClock::now();
        AdminServer admin(io.get_executor());
        std::error_code made;
        std::filesystem::create_directories(config->relay.control_socket.parent_path(), made);
        admin.listen_control(config->relay.control_socket, [&](std::string_view command) -> std::string {
            if (command != "status") return "{\"error\":\"unknown command; try status\"}\n";
            return boost::json::serialize(status_snapshot(server, delivery, admin.addresses(), started)) + "\n";
        });
        if (config->relay.metrics_listen.port != 0)
            admin.listen_metrics(config->relay.metrics_listen, [&] { return metrics::render(status_gauges(delivery)); });
        server.set_direct_handler([&delivery](QueuedMessage m) { return delivery.deliver_direct(std::move(m)); });
        server.start();
        delivery.start(spool.recover());
        // Queue tools (queue retry/hold/release/delete) and changed token files reach us through inotify.
        ControlWatcher control(io.get_executor(), spool.control_dir(),
                               [&delivery](std::vector<ControlRequest> r) { delivery.handle_requests(r); });
        control.start();
        ensure_directory(config->relay.state_dir / "tokens", 0700);
        auth::TokenFileWatcher token_files(io.get_executor(), config->relay.state_dir / "tokens",
                                           [&delivery](const std::set<std::string>& accounts, bool all) {
                                               delivery.tokens_changed(accounts, all);
                                           });
        token_files.start();
        // sendmail's maildrop (issue 12): messages left while we were down or by users who may not
        // read the config. On a thread of its own; it submits to our own listener.
        maildrop::Pickup pickup(config);
        try {
            pickup.start();
        } catch (const std::exception& e) {
            log::warning("maildrop_unavailable", {{"error", e.what()}});
        }
        SdNotifier notifier;
        NotifyHeartbeat heartbeat(io.get_executor(), notifier, [&] { return status_summary(delivery); });
        log::info("started", {{"version", RELAY_VERSION}, {"listen", join(server.listening())},
                              {"accounts", config->accounts.size()}, {"spool_dir", config->relay.spool_dir.string()},
                              {"admin", join(admin.addresses())}});
        notifier.notify("READY=1\nSTATUS=" + status_summary(delivery));
        heartbeat.start();

        asio::signal_set stop_signals(io, SIGTERM, SIGINT);
        asio::steady_timer hard_stop(io);
        stop_signals.async_wait([&](const boost::system::error_code& ec, int signal) {
            if (ec) return;
            log::info("stopping", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
            notifier.notify("STOPPING=1");
            pickup.request_stop();
            heartbeat.stop();
            admin.stop();
            const auto until = std::chrono::steady_clock::now() + kDrainDeadline;
            // Hard: should the graceful stop overrun its deadline, stop anyway.
            hard_stop.expires_at(until + kHardStopGrace);
            hard_stop.async_wait([&](const boost::system::error_code& ec) {
                if (ec) return;
                log::warning("stop_deadline_passed", {{"detail", "stopping now; undelivered mail stays in the spool"}});
                io.stop();
            });
            // Gentle: each part finishes what is in flight within what is left of the deadline. A
            // failure here is logged and the process still stops (cleanly: the spool is durable).
            core::spawn(io.get_executor(), graceful_stop(io, server, control, token_files, delivery, until), "shutdown", "",
                        [&io](std::exception_ptr) { io.stop(); });
        });
        asio::signal_set hangup(io, SIGHUP);
        std::function<void()> wait_hangup = [&] {
            hangup.async_wait([&](const boost::system::error_code& ec, int) {
                if (ec) return;
                notifier.notify(SdNotifier::reloading_message());
                reload(config, server, delivery);
                pickup.update_config(config);
                notifier.notify("READY=1\nSTATUS=" + status_summary(delivery));
                wait_hangup();
            });
        };
        wait_hangup();
        io.run();
        pickup.stop();
        kdf.join();
        durable.join();
        blocking.join();
        return kOk;
    } catch (const std::exception& e) {
        log::error("fatal", {{"error", e.what()}});
        return kRuntimeError;
    }
}

}  // namespace relay::cli
