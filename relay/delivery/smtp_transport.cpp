// SMTP upstream transport: connect, TLS, AUTH (with one fresh-token retry after a 535), and sending
// a message as transactions of at most max_recipients_per_message recipients; see smtp_transport.hpp.
#include "relay/delivery/smtp_transport.hpp"

#include <utility>

#include <fmt/format.h>

#include "auth/sasl.hpp"
#include "relay/core/blocking.hpp"
#include "relay/core/log.hpp"
#include "relay/delivery/account_hold.hpp"
#include "relay/delivery/upstream_message.hpp"
#include "relay/delivery/upstream_session.hpp"

namespace relay {
namespace {

namespace asio = boost::asio;

class SmtpSession final : public TransportSession {
public:
    SmtpSession(std::unique_ptr<UpstreamSession> session, unsigned max_recipients, asio::thread_pool& blocking,
                SystemClock::time_point fresh_until = SystemClock::time_point::max())
        : session_(std::move(session)), max_recipients_(max_recipients), blocking_(blocking), fresh_until_(fresh_until) {}

    bool usable() const override { return session_ && session_->usable() && SystemClock::now() < fresh_until_; }

    asio::awaitable<void> close() override {
        if (session_) co_await session_->quit();
        session_.reset();
    }

    // One transaction per max_recipients_per_message recipients, each paced. Throws
    // std::system_error when the queue file cannot be read.
    asio::awaitable<Outcome> send(const QueuedMessage& message, const Pacer& pace) override {
        Outcome out;
        const auto chunks = split_recipients(message.envelope.rcpt_to, max_recipients_);
        // The bytes to send (upstream_message.hpp): the queue file itself, unless it must be
        // rewritten, which is CPU work on the whole message and so runs on the blocking pool.
        UpstreamMessage prepared = upstream_as_stored(message);
        if (needs_rewrite(message)) {
            auto prepare_job = [message] { return prepare_upstream_message(message); };
            prepared = co_await run_blocking(blocking_, std::move(prepare_job));
            log_rewrite(message, prepared);
        }
        for (const auto& chunk : chunks) {
            if (out.stopped()) {
                out.not_attempted(chunk);
                continue;
            }
            co_await pace();
            Envelope envelope = message.envelope;
            envelope.rcpt_to = chunk;
            envelope.eight_bit = prepared.eight_bit;
            std::unique_ptr<BodyReader> body = upstream_body(message, prepared);
            TransactionResult result;
            std::string io_error;
            try {
                result = co_await session_->send(envelope, prepared.size, *body);
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

private:
    std::unique_ptr<UpstreamSession> session_;
    unsigned max_recipients_;
    asio::thread_pool& blocking_;
    SystemClock::time_point fresh_until_;
};

class SmtpTransport final : public Transport {
public:
    SmtpTransport(const conf::Account& account, const TransportDeps& deps)
        : account_(account), deps_(deps), tls_(make_upstream_tls_context(account.upstream_ca_file)) {}

    asio::awaitable<std::unique_ptr<TransportSession>> open() override {
        UpstreamOptions options;
        options.server = account_.upstream;
        options.tls = account_.upstream_tls;
        options.helo_name = deps_.helo_name;
        auto session = std::make_unique<UpstreamSession>(deps_.io, tls_, options);
        try {
            co_await session->connect();
        } catch (const UpstreamError& e) {
            throw AccountFailure{fmt::format("connect to {}: {}", account_.upstream.to_string(), e.what())};
        }
        const unsigned per = account_.max_recipients_per_message;
        if (account_.upstream_auth == conf::UpstreamAuth::none)
            co_return std::make_unique<SmtpSession>(std::move(session), per, deps_.blocking);
        if (account_.upstream_auth == conf::UpstreamAuth::plain || account_.upstream_auth == conf::UpstreamAuth::login) {
            // Basic auth with a configured password: no token, so nothing to refresh or retry.
            smtp::Reply basic = co_await authenticate(*session, "");
            if (basic.code != 235) {
                co_await session->quit();
                throw AccountFailure{"AUTH refused: " + basic.text()};
            }
            co_return std::make_unique<SmtpSession>(std::move(session), per, deps_.blocking);
        }

        auth::TokenManager& tokens = deps_.tokens;
        std::string token;
        std::optional<AccountFailure> token_trouble;
        try {
            token = co_await tokens.access_token();
        } catch (const auth::TokenError& e) {
            token_trouble = token_failure(e, account_, tokens.status());
        }
        if (token_trouble) {
            co_await session->quit();
            throw *token_trouble;
        }
        smtp::Reply reply = co_await authenticate(*session, token);
        if (auto action = hold_action_for(reply)) {
            co_await session->quit();
            throw AccountFailure{"AUTH refused: " + reply.text(), action};
        }
        if (reply.code == 535 && session->usable()) {
            // The provider refused the token (revoked, or it expired early): one fresh token, one retry.
            log::warning("upstream_auth_rejected", {{"account", account_.name}, {"upstream_reply", reply.text()},
                                                    {"action", "refreshing the access token and retrying once"}});
            // invalid_grant here (the refresh token died with the access token) holds the account
            // at once with the authorize hint, rather than after another SMTP backoff (issue 11, item 4).
            try {
                token = co_await tokens.token_rejected(token);
            } catch (const auth::TokenError& e) {
                token_trouble = token_failure(e, account_, tokens.status());
            }
            if (token_trouble) {
                co_await session->quit();
                throw *token_trouble;
            }
            reply = co_await authenticate(*session, token);
        }
        if (reply.code != 235) {
            co_await session->quit();
            throw AccountFailure{"AUTH refused: " + reply.text(), hold_action_for(reply)};
        }
        auto now = SystemClock::now();
        auto valid_until = tokens.status().access_valid_until;
        auto margin = std::chrono::duration_cast<SystemClock::duration>(
            auth::refresh_margin(std::chrono::duration_cast<std::chrono::milliseconds>(valid_until - now)));
        co_return std::make_unique<SmtpSession>(std::move(session), per, deps_.blocking, valid_until > now ? valid_until - margin : now);
    }

private:
    asio::awaitable<smtp::Reply> authenticate(UpstreamSession& session, const std::string& token) {
        auth::SaslLogin login = auth::sasl_login(account_, token);
        try {
            co_return co_await session.authenticate(std::move(login.mechanism), std::move(login.response));
        } catch (const UpstreamError& e) {
            throw AccountFailure{std::string("AUTH: ") + e.what()};
        }
    }

    conf::Account account_;
    TransportDeps deps_;
    std::shared_ptr<asio::ssl::context> tls_;
};

}  // namespace

std::unique_ptr<Transport> make_smtp_transport(const conf::Account& account, const TransportDeps& deps) {
    return std::make_unique<SmtpTransport>(account, deps);
}

}  // namespace relay
