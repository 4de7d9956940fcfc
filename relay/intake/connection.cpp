// One client connection, step by step; see connection.hpp. One I/O thread: the only slow steps, the
// spool commit and the password KDF, are awaited (the KDF on the blocking pool). The limits a state
// machine cannot see live here: per-command and session timeouts, the minimum DATA rate, the error
// tarpit and the AUTH lockout (with ClientLimits), local TLS.
#include "relay/intake/connection.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <unistd.h>

#include "relay/core/blocking.hpp"
#include "relay/core/log.hpp"
#include "relay/smtp/replies.hpp"

namespace relay {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr std::size_t kCommandBuffer = 4096;
constexpr std::size_t kDataBuffer = 65536;
constexpr auto kTlsShutdownWait = 2s;       // for the client's close_notify; a hostile one gets no more

smtp::SessionPolicy connection_policy(const conf::Config& config, const IntakeServices& services,
                                      const asio::ip::address& peer, bool implicit_tls) {
    smtp::SessionPolicy p = session_policy(config);
    p.starttls_offered = services.tls_context && !implicit_tls;
    p.tls_active = implicit_tls;
    // RFC 8314 / RFC 4954 4: passwords cross the LAN only encrypted, unless the admin says otherwise.
    p.plaintext_auth_allowed = config.relay.allow_plaintext_auth || peer.is_loopback();
    p.lenient = is_lenient(config, peer);
    return p;
}

}  // namespace

bool is_lenient(const conf::Config& config, const asio::ip::address& peer) {
    return std::any_of(config.relay.lenient_networks.begin(), config.relay.lenient_networks.end(),
                       [&](const conf::Network& net) { return net.contains(peer); });
}

smtp::SessionPolicy session_policy(const conf::Config& config) {
    smtp::SessionPolicy p;
    p.hostname = config.relay.hostname;
    p.max_message_size = config.relay.max_message_size;
    p.require_auth = config.relay.require_auth;
    p.auth_offered = !config.users.empty();
    p.data.max_message_size = config.relay.max_message_size;
    p.data.max_line_length = config.relay.max_line_length;
    p.data.normalize_bare_newlines = config.relay.bare_newlines == "normalize";
    p.max_command_line = config.relay.max_command_line;
    p.max_recipients = config.relay.max_recipients;
    p.max_errors = config.relay.max_errors;
    return p;
}

Connection::Connection(std::shared_ptr<const IntakeServices> services, std::shared_ptr<const conf::Config> config,
                       asio::ip::tcp::socket socket, const asio::ip::address& peer, bool implicit_tls)
    : services_(std::move(services)),
      config_(std::move(config)),
      settings_(config_->relay),
      peer_(peer.to_string()),
      implicit_tls_(implicit_tls),
      stream_(std::move(socket)),
      timer_(stream_.socket().get_executor()),
      hooks_(config_, peer_, &services_->auth_attempts),
      writer_(services_->spool, TraceOptions{config_->relay.add_received_header, config_->relay.hostname}),
      smtp_(connection_policy(*config_, *services_, peer, implicit_tls), hooks_, writer_, peer_),
      session_end_(Clock::now() + settings_.session_timeout),
      buffer_(kCommandBuffer) {
}

void Connection::stop() {
    stopping_ = true;
    timer_.cancel();   // wakes a session waiting for its next command, or in a penalty delay
}

void Connection::abort() {
    stopping_ = true;
    timer_.cancel();
    stream_.close();
}

asio::awaitable<void> Connection::run() {
    log::debug("connect", {{"client", peer_}, {"tls", implicit_tls_ ? "implicit" : "no"}});
    try {
        co_await greet();
        while (true) {
            std::optional<std::string_view> input = co_await read();
            if (!input) break;
            const std::size_t errors_before = smtp_.errors();
            const std::size_t auth_failures_before = hooks_.auth_failures;
            const After after = co_await feed(*input);
            co_await penalty_delay(errors_before, auth_failures_before);
            if (after == After::start_tls) {
                if (!co_await start_tls()) break;
                continue;
            }
            std::string rest(*input);   // may point into pending_ itself
            pending_ = std::move(rest);
            co_await write_out();
            if (after == After::close) break;
        }
    } catch (const std::exception& e) {
        log::debug("session_error", {{"client", peer_}, {"error", e.what()}});
    }
    co_await close();
}

// ---- steps ----------------------------------------------------------------------------------------

asio::awaitable<void> Connection::greet() {
    if (implicit_tls_) {
        timer_.expires_after(settings_.command_timeout);
        ClientStream::Result shake = co_await stream_.handshake(*services_->tls_context, timer_);
        if (shake.timed_out || shake.error) {
            log::info("tls_handshake_failed", {{"client", peer_},
                                               {"error", shake.timed_out ? "timeout" : shake.error.message()}});
            throw boost::system::system_error(asio::error::connection_aborted, "TLS handshake");
        }
        log::debug("tls_started", {{"client", peer_}, {"tls", stream_.tls_description()}});
    } else {
        // RFC 5321 3.1 / 4.3.1: the client waits for the 220. Bytes before it come from software
        // that does not read replies (spambots, smuggling tools): 554 5.5.0, as for pipelining.
        // Only when the admin asked for a pause: with greet_pause = 0 the check used to look at
        // bytes already queued when the accept loop got round to this connection, so a client
        // sending EHLO right after connect (on loopback: always) was refused at random (issue 11).
        timer_.expires_after(settings_.greet_pause);
        if (settings_.greet_pause.count() > 0 && co_await stream_.client_spoke_first(timer_)) {
            log::warning("pregreet_traffic", {{"client", peer_}});
            out_ = smtp::replies::talked_first(settings_.hostname) + "\r\n";
            co_await write_out();
            throw boost::system::system_error(asio::error::connection_aborted, "talked before the greeting");
        }
    }
    out_ = smtp_.greeting();
    co_await write_out();
}

// The next bytes from the client (with an incomplete line from before in front), or nullopt when
// the session ends here; the last reply has been written then.
asio::awaitable<std::optional<std::string_view>> Connection::read() {
    const auto rate_window = settings_.min_data_rate_window;
    while (true) {
        if (stopping_ && !smtp_.in_data()) {
            co_await last_words(smtp_.shutdown_reply());
            co_return std::nullopt;
        }
        const auto now = Clock::now();
        // min_data_rate: at the end of each window during DATA, a client that sent less than
        // rate x window is cut off (slowloris); a fresh window starts otherwise.
        if (!smtp_.in_data() || settings_.min_data_rate == 0) {
            window_start_.reset();
        } else if (!window_start_) {
            window_start_ = now;
            window_bytes_ = 0;
        } else if (now >= *window_start_ + rate_window) {
            if (window_bytes_ < settings_.min_data_rate * static_cast<std::uint64_t>(rate_window.count())) {
                log::info("data_rate_too_low", {{"client", peer_}, {"bytes", window_bytes_},
                                                {"window_s", rate_window.count()}});
                co_await last_words(smtp::replies::data_rate_too_low(settings_.hostname) + "\r\n");
                co_return std::nullopt;
            }
            window_start_ = now;
            window_bytes_ = 0;
        }
        if (now >= session_end_) {
            log::info("timeout", {{"client", peer_}, {"limit", "session_timeout"}});
            co_await last_words(smtp_.timeout_reply());
            co_return std::nullopt;
        }
        const auto command_deadline = std::min(now + settings_.command_timeout, session_end_);
        auto wake = command_deadline;
        if (window_start_) wake = std::min(wake, *window_start_ + rate_window);
        std::size_t want = smtp_.in_data() ? kDataBuffer : kCommandBuffer;
        // A new vector, not assign(): that keeps the 64 KiB capacity of DATA for every idle
        // client that has sent a message (benchmark, issue 7: 1,000 such clients took 91 MB).
        if (buffer_.size() != want) buffer_ = std::vector<char>(want);
        timer_.expires_at(wake);
        ClientStream::Result result = co_await stream_.read_some(asio::buffer(buffer_), timer_);
        if (result.timed_out) {
            if (stopping_) continue;  // woken by shutdown: the loop head answers
            if (Clock::now() < command_deadline) continue;   // a rate window ended: the loop head checks
            log::info("timeout", {{"client", peer_}, {"limit", "command_timeout"}});
            co_await last_words(smtp_.timeout_reply());
            co_return std::nullopt;
        }
        if (result.error) co_return std::nullopt;  // peer closed or reset
        if (smtp_.in_data()) window_bytes_ += result.bytes;
        std::string_view input(buffer_.data(), result.bytes);
        if (!pending_.empty()) {
            pending_.append(input);
            input = pending_;
        }
        co_return input;
    }
}

// Feeds `input` to the session until it needs more bytes; consumed bytes leave `input`. Replies
// collect in out_; they are written before each slow step, so the client is never kept waiting.
asio::awaitable<Connection::After> Connection::feed(std::string_view& input) {
    using Next = smtp::ServerSession::Next;
    while (true) {
        smtp::ServerSession::Step step = smtp_.feed(input);
        out_ += step.replies;
        input.remove_prefix(step.consumed);
        if (step.next == Next::commit_message) {
            co_await write_out();
            if (is_direct())
                out_ = co_await commit_direct();
            else
                out_ = co_await commit_message();
            continue;
        }
        if (step.next == Next::verify_credentials) {
            co_await write_out();
            auto [name, password] = smtp_.pending_credentials();
            auto check = [this, name, password] { return hooks_.authenticate_slow(name, password); };
            smtp::SessionHooks::AuthResult verdict = co_await run_blocking(services_->blocking, std::move(check));
            hooks_.slow_check_finished(verdict.ok);
            smtp::ServerSession::Step answered = smtp_.credentials_verified(std::move(verdict));
            out_ += answered.replies;
            if (answered.next == Next::close) co_return After::close;
            continue;
        }
        if (step.next == Next::start_tls) co_return After::start_tls;
        if (step.next == Next::close) co_return After::close;
        co_return After::read_more;
    }
}

// AUTH failures (counted toward the lockout by AuthAttempts, through the hooks) are answered late,
// so guessing passwords costs the attacker time (Postfix smtpd_error_sleep_time).
asio::awaitable<void> Connection::penalty_delay(std::size_t errors_before, std::size_t auth_failures_before) {
    if (hooks_.auth_failures > auth_failures_before) {
        co_await pause(settings_.auth_failure_delay);
    } else if (smtp_.errors() > errors_before && smtp_.errors() >= settings_.soft_error_limit) {
        // RFC 5321 4.5.3.2 allows a slow server; past the soft limit every error reply is
        // delayed, well below any client timeout.
        co_await pause(settings_.error_delay);
    }
}

// RFC 3207 5: whatever followed STARTTLS in the same read arrived in plaintext and is dropped here,
// unread; the session noted the injection. False when the handshake failed (the session ends).
asio::awaitable<bool> Connection::start_tls() {
    pending_.clear();
    co_await write_out();
    timer_.expires_after(settings_.command_timeout);
    ClientStream::Result shake = co_await stream_.handshake(*services_->tls_context, timer_);
    if (shake.timed_out || shake.error) {
        log::info("tls_handshake_failed", {{"client", peer_},
                                           {"error", shake.timed_out ? "timeout" : shake.error.message()}});
        co_return false;
    }
    smtp_.tls_started();
    log::debug("tls_started", {{"client", peer_}, {"tls", stream_.tls_description()}});
    co_return true;
}

asio::awaitable<void> Connection::close() {
    if (writer_.active()) writer_.message_abort();
    if (stream_.tls_active() && !stopping_) {
        timer_.expires_after(kTlsShutdownWait);
        co_await stream_.shutdown_tls(timer_);
    }
    stream_.close();
}

// ---- end of data --------------------------------------------------------------------------------

bool Connection::is_direct() const {
    const conf::Account* a = config_->find_account(smtp_.envelope().account);
    return services_->direct && a && a->delivery == conf::DeliveryMode::direct;
}

// End of data in direct mode: the upstream's verdict is the reply. The file stays in incoming/
// and is never synced: until the client has its reply the client still owns the message (a
// crash means no reply, so it sends again), and recovery discards incoming/ leftovers.
asio::awaitable<std::string> Connection::commit_direct() {
    QueuedMessage message;
    bool written = false;
    try {
        auto [pending, queued] = writer_.finish();
        ::close(pending.fd);
        message = std::move(queued);
        message.path = services_->spool.incoming_path(message.id);
        written = true;
    } catch (const std::exception& e) {
        log::error("spool_write_failed", {{"client", peer_}, {"error", e.what()}});
    }
    if (!written) co_return smtp_.commit_finished(std::nullopt, smtp::replies::kQueueWriteError);
    const Envelope& env = message.envelope;
    log::info("received", {{"queue_id", message.id}, {"client", peer_}, {"user", env.user},
                           {"account", env.account}, {"from", env.mail_from},
                           {"rcpt_count", env.rcpt_to.size()}, log::recipients(env.rcpt_to), {"size", message.size},
                           {"delivery", "direct"}});
    const std::filesystem::path path = message.path;
    std::string reply = co_await services_->direct(std::move(message));
    ::unlink(path.c_str());
    co_return smtp_.commit_finished(std::nullopt, reply);
}

// End of data: make the message durable, then answer. Returns the reply bytes.
asio::awaitable<std::string> Connection::commit_message() {
    QueuedMessage message;
    try {
        auto [pending, queued] = writer_.finish();
        message = std::move(queued);
        co_await services_->committer.commit(std::move(pending));
    } catch (const std::exception& e) {
        log::error("spool_write_failed", {{"client", peer_}, {"error", e.what()}});
        co_return smtp_.commit_finished(std::nullopt, smtp::replies::kQueueWriteError);
    }
    const Envelope& env = message.envelope;
    log::info("received", {{"queue_id", message.id}, {"client", peer_}, {"user", env.user},
                           {"account", env.account}, {"from", env.mail_from},
                           {"rcpt_count", env.rcpt_to.size()}, log::recipients(env.rcpt_to), {"size", message.size}});
    std::string reply = smtp_.commit_finished(message.id);
    services_->on_queued(std::move(message));
    co_return reply;
}

// ---- helpers --------------------------------------------------------------------------------------

asio::awaitable<void> Connection::write_out() {
    if (out_.empty()) co_return;
    timer_.expires_after(settings_.command_timeout);
    ClientStream::Result result = co_await stream_.write_all(asio::buffer(out_), timer_);
    out_.clear();
    if (result.timed_out) throw boost::system::system_error(asio::error::timed_out);
    if (result.error) throw boost::system::system_error(result.error);
}

asio::awaitable<void> Connection::last_words(std::string reply) {
    out_ = std::move(reply);
    co_await write_out();
}

// A pause before answering (tarpit, AUTH failure delay). stop() ends it early.
asio::awaitable<void> Connection::pause(std::chrono::seconds delay) {
    if (delay.count() <= 0 || stopping_) co_return;
    timer_.expires_after(delay);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace relay
