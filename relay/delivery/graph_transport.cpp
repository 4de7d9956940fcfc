// GraphTransport: Microsoft Graph sendMail on the Transport seam; see graph_transport.hpp.
#include "relay/delivery/graph_transport.hpp"

#include <algorithm>
#include <deque>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "auth/token_endpoint.hpp"
#include "relay/core/base64.hpp"
#include "relay/core/blocking.hpp"
#include "relay/core/log.hpp"
#include "relay/delivery/graph_mail.hpp"
#include "relay/delivery/upstream_message.hpp"

namespace relay {
namespace {

namespace asio = boost::asio;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Graph counts the base64 text against its 4 MB request limit (PROVIDERS.md).
constexpr std::size_t kMaxRequest = 4 * 1024 * 1024;

// Per account, shared by its sessions: the concurrency cap and the Retry-After barrier.
struct Shared {
    explicit Shared(asio::any_io_executor io) : io(std::move(io)) {}
    asio::any_io_executor io;
    unsigned limit = 4;
    unsigned busy = 0;
    std::deque<asio::steady_timer*> waiting;   // sessions waiting for a request slot; cancel = go
    Steady::time_point not_before{};           // no request before this (429/503/504 Retry-After)

    asio::awaitable<void> acquire() {
        while (busy >= limit) {
            asio::steady_timer wake(io, Steady::time_point::max());
            waiting.push_back(&wake);
            co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
            std::erase(waiting, &wake);
        }
        ++busy;
    }
    void release() {
        --busy;
        if (!waiting.empty()) waiting.front()->cancel();
    }
};

smtp::Reply make_reply(int code, std::string text) {
    smtp::Reply r;
    r.code = code;
    r.lines.push_back(std::move(text));
    return r;
}

class GraphSession : public TransportSession {
public:
    GraphSession(conf::Account account, TransportDeps deps, std::shared_ptr<Shared> shared, std::string token,
                 auth::Clock::time_point fresh_until)
        : account_(std::move(account)), deps_(std::move(deps)), shared_(std::move(shared)), token_(std::move(token)),
          fresh_until_(fresh_until) {}

    bool usable() const override { return !broken_ && auth::Clock::now() < fresh_until_; }
    asio::awaitable<void> close() override { co_return; }

    asio::awaitable<Outcome> send(const QueuedMessage& message, const Pacer& pace) override {
        Outcome out;
        const auto chunks = split_recipients(message.envelope.rcpt_to, account_.max_recipients_per_message);
        if (message.size > conf::kGraphMaxMessageSize) {
            // Intake refuses such messages for Graph accounts; one queued before a config change.
            for (const auto& chunk : chunks) out.add(chunk, result_of(chunk, too_big(message.size)));
            co_return out;
        }
        // Named jobs, not lambdas built inside co_await: GCC 12 destroys such temporaries twice.
        // The upstream bytes (upstream_message.hpp): the stored message, or its rewrite for long lines.
        auto read_job = [message] { return read_upstream_message(message); };
        UpstreamMessage prepared = co_await run_blocking(deps_.blocking, std::move(read_job));
        log_rewrite(message, prepared);
        const std::string mime = std::move(*prepared.bytes);
        for (const auto& chunk : chunks) {
            if (out.stopped() || out.account_backoff) {
                out.not_attempted(chunk);
                continue;
            }
            co_await pace();
            co_await send_chunk(message, mime, chunk, out);
        }
        co_return out;
    }

private:
    static smtp::Reply too_big(std::uint64_t size) {
        return make_reply(552, fmt::format("5.3.4 Message too big for Microsoft Graph ({} bytes; at most {} with "
                                           "transport = \"graph\")", size, conf::kGraphMaxMessageSize));
    }

    static TransactionResult result_of(const std::vector<std::string>& chunk, smtp::Reply reply) {
        TransactionResult r;
        r.final_reply = std::move(reply);
        r.accepted = chunk;
        r.data_sent = true;
        return r;
    }

    asio::awaitable<void> send_chunk(const QueuedMessage& message, const std::string& mime,
                                     const std::vector<std::string>& chunk, Outcome& out) {
        const graph::Reconciled fixed = graph::reconcile_recipients(mime, chunk);
        auth::HttpPost post;
        post.url = graph::send_mail_url(account_.graph_url, account_.email);
        post.content_type = "text/plain";
        post.body = core::base64_encode(fixed.header + mime.substr(fixed.body_offset));
        post.ca_file = account_.upstream_ca_file.string();
        if (post.body.size() > kMaxRequest) {
            out.add(chunk, result_of(chunk, too_big(message.size)));
            co_return;
        }
        if (fixed.changed)
            log::debug("graph_recipients_reconciled", {{"queue_id", message.id}, {"rcpt_count", chunk.size()}});
        graph::Answer answer = co_await request(post);
        if (answer.verdict == graph::Verdict::refresh_token) {
            // Graph refused the token (revoked, or expired early): one fresh token, one retry.
            log::warning("graph_token_rejected", {{"account", account_.name}, {"upstream_reply", answer.reply.text()},
                                                  {"action", "refreshing the access token and retrying once"}});
            std::optional<AccountFailure> trouble;
            try {
                token_ = co_await deps_.tokens.token_rejected(token_);
            } catch (const auth::TokenError& e) {
                trouble = token_failure(e, account_, deps_.tokens.status());
            }
            if (!trouble) {
                answer = co_await request(post);
            } else if (trouble->hold_action) {
                // invalid_grant (the refresh token died with the access token): hold the account now
                // with the authorize hint, as the SMTP transport does after its 535 (issue 11, item 4).
                broken_ = true;
                out.hold = make_reply(454, "4.7.0 " + trouble->reason);
                out.hold_action = trouble->hold_action;
                out.not_attempted(chunk);
                co_return;
            } else {
                answer = graph::transport_failure("token refresh failed: " + trouble->reason);
            }
        }
        switch (answer.verdict) {
        case graph::Verdict::accepted:
        case graph::Verdict::fail:
        case graph::Verdict::retry:
            out.add(chunk, result_of(chunk, answer.reply));
            break;
        case graph::Verdict::refresh_token:   // refused twice: this session's token is no good
            broken_ = true;
            out.add(chunk, result_of(chunk, answer.reply));
            break;
        case graph::Verdict::back_off:
            shared_->not_before = std::max(shared_->not_before, Steady::now() + answer.retry_after);
            out.account_backoff = answer.retry_after;
            out.add(chunk, result_of(chunk, answer.reply));
            break;
        case graph::Verdict::hold:
            if (!out.hold) out.hold = answer.reply;
            out.hold_action = answer.hold_action;
            out.not_attempted(chunk);
            break;
        }
    }

    // One POST on the blocking pool, within the account's concurrency cap and after its Retry-After.
    asio::awaitable<graph::Answer> request(const auth::HttpPost& post) {
        // The barrier is read after the slot is ours: a request that queued behind the cap while
        // another got the 429 must not go out the moment that one releases its slot.
        co_await shared_->acquire();
        if (const auto now = Steady::now(); now < shared_->not_before) {
            shared_->release();
            // Graph asked for quiet: no request before then, from any session of this account.
            graph::Answer wait;
            wait.verdict = graph::Verdict::back_off;
            wait.retry_after = std::chrono::ceil<std::chrono::seconds>(shared_->not_before - now);
            wait.reply = make_reply(451, fmt::format("4.7.0 Microsoft Graph asked to wait; retry after {} s",
                                                     wait.retry_after.count()));
            co_return wait;
        }
        auth::HttpPost with_token = post;
        with_token.bearer_token = token_;
        auth::HttpClient& http = deps_.http;
        graph::Answer answer;
        std::string failure;
        try {
            auto post_job = [&http, with_token] { return http.post(with_token); };
            auth::HttpResponse response = co_await run_blocking(deps_.blocking, std::move(post_job));
            answer = graph::classify(response.status, response.body, response.retry_after,
                                     std::chrono::duration_cast<std::chrono::seconds>(
                                         SystemClock::now().time_since_epoch()).count());
        } catch (const auth::HttpError& e) {
            failure = e.what();
        }
        shared_->release();
        if (!failure.empty()) {
            broken_ = true;
            answer = graph::transport_failure(failure);
        }
        co_return answer;
    }

    conf::Account account_;
    TransportDeps deps_;
    std::shared_ptr<Shared> shared_;
    std::string token_;
    auth::Clock::time_point fresh_until_;
    bool broken_ = false;
};

class GraphTransport : public Transport {
public:
    GraphTransport(conf::Account account, TransportDeps deps)
        : account_(std::move(account)), deps_(std::move(deps)), shared_(std::make_shared<Shared>(deps_.io)) {
        shared_->limit = std::max(1u, account_.graph_concurrent_requests);
    }

    asio::awaitable<std::unique_ptr<TransportSession>> open() override {
        std::string token;
        std::optional<AccountFailure> trouble;
        try {
            token = co_await deps_.tokens.access_token();
        } catch (const auth::TokenError& e) {
            trouble = token_failure(e, account_, deps_.tokens.status());
        }
        if (trouble) throw *trouble;
        // Replace the session before the token goes stale, as the SMTP transport does.
        const auto now = auth::Clock::now();
        const auto valid_until = deps_.tokens.status().access_valid_until;
        const auto margin = std::chrono::duration_cast<auth::Clock::duration>(
            auth::refresh_margin(std::chrono::duration_cast<std::chrono::milliseconds>(valid_until - now)));
        co_return std::make_unique<GraphSession>(account_, deps_, shared_, std::move(token),
                                                 valid_until > now ? valid_until - margin : now);
    }

private:
    conf::Account account_;
    TransportDeps deps_;
    std::shared_ptr<Shared> shared_;
};

}  // namespace

std::unique_ptr<Transport> make_graph_transport(const conf::Account& account, const TransportDeps& deps) {
    return std::make_unique<GraphTransport>(account, deps);
}

}  // namespace relay
