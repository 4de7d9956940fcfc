// `check`: proves, step by step, that an account can deliver mail, and says what to do when a step
// fails: config -> token endpoint reachable -> refresh works -> upstream TLS verified -> AUTH
// accepted -> (optional) a test message accepted. Each step prints "[ ok ]" or "[FAIL]" with
// "cause:" and "fix:" lines (relay/check_diagnosis.*). Exit 0 only when every step that ran passed.
// The refresh is real: a rotated refresh token is stored, as the relay would store it.
#include <utility>

#include <cstdio>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "auth/http_client.hpp"
#include "auth/sasl.hpp"
#include "auth/token_endpoint.hpp"
#include "auth/token_store.hpp"
#include "relay/cli/check_diagnosis.hpp"
#include "relay/cli/cli.hpp"
#include "relay/core/base64.hpp"
#include "relay/delivery/graph_mail.hpp"
#include "relay/delivery/upstream_session.hpp"

namespace relay::cli {
namespace {

namespace asio = boost::asio;

constexpr const char* kCheckHelp = R"(usage: smtp-oauth2-relay check [--account NAME] [--send-test ADDRESS] [--config FILE]

  Tests each account (or only NAME) step by step and prints one [ ok ] or [FAIL] line per step:
  config, token endpoint reachable, refresh token works, upstream TLS verified, AUTH accepted and,
  with --send-test, a test message to ADDRESS accepted. For a transport = "graph" account the steps
  after the token are: Microsoft Graph reachable, Mail.Send granted (a probe that sends nothing) and,
  with --send-test, the test message. A failed step names the likely cause and the fix. The refresh
  is real: a rotated refresh token is stored.
  exit codes: 0 every step passed, 1 a step failed, 2 usage or configuration error
)";

class Report {
public:
    void ok(const std::string& step) { line("[ ok ] " + step); }
    void skip(const std::string& step) { line("[skip] " + step); }
    void fail(const std::string& step, const check::Diagnosis& d) {
        failed_ = true;
        line("[FAIL] " + step);
        line("       cause: " + d.cause);
        line("       fix:   " + d.fix);
    }
    bool failed() const { return failed_; }

private:
    static void line(const std::string& text) {
        std::printf("%s\n", text.c_str());
        std::fflush(stdout);
    }
    bool failed_ = false;
};

class StringBody : public BodyReader {
public:
    explicit StringBody(std::string text) : text_(std::move(text)) {}
    std::size_t read(char* buffer, std::size_t size) override {
        const std::size_t n = std::min(size, text_.size() - at_);
        std::copy_n(text_.data() + at_, n, buffer);
        at_ += n;
        return n;
    }
    void rewind() override { at_ = 0; }

private:
    std::string text_;
    std::size_t at_ = 0;
};

// Reports a failed token request under `step`: unreachable endpoint, or the endpoint's refusal.
void report_token_error(Report& report, const auth::TokenError& e, const conf::Account& account, const std::string& step) {
    if (e.http_status() == 0) {
        report.fail("token endpoint reachable (" + account.token_url + ")", check::diagnose_token(e, account));
    } else {
        report.ok("token endpoint reachable (" + account.token_url + ")");
        report.fail(step, check::diagnose_token(e, account));
    }
}

// App-only account: one client credentials grant (secret or signed assertion); nothing is stored.
std::optional<std::string> app_token_steps(Report& report, const conf::Account& account) {
    const auto now = auth::Clock::now();
    const std::string step = "app token issued (client credentials)";
    try {
        auth::CurlHttpClient http;
        auth::TokenSet set = auth::request_token(http, account, auth::client_credentials_form(account, now), now);
        report.ok("token endpoint reachable (" + account.token_url + ")");
        const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(set.expires_at - now).count();
        report.ok(fmt::format("{} (access token valid {} min)", step, minutes));
        return set.access_token;
    } catch (const auth::TokenError& e) {
        report_token_error(report, e, account, step);
    } catch (const std::exception& e) {
        // The certificate or key could not be read or used to sign the assertion.
        report.fail(step, {e.what(), "check client_certificate_file and client_key_file of account " + account.name});
    }
    return std::nullopt;
}

// Refreshes once; returns the access token, or nullopt after reporting why not.
std::optional<std::string> token_steps(Report& report, const conf::Config& config, const conf::Account& account) {
    if (account.auth == conf::AuthMode::client_credentials) return app_token_steps(report, account);
    auth::TokenStore store(config.relay.state_dir);
    std::optional<auth::StoredTokens> stored;
    try {
        stored = store.load(account.name);
    } catch (const std::exception& e) {
        report.fail("refresh token works", {e.what(), "run `smtp-oauth2-relay authorize --account " + account.name +
                                                          "` to write a fresh token file"});
        return std::nullopt;
    }
    if (!stored || stored->refresh_token.empty()) {
        report.fail("refresh token works",
                    {"no refresh token is stored for account " + account.name + " (" + store.path_for(account.name).string() + ")",
                     "run `smtp-oauth2-relay authorize --account " + account.name + "` (or `token import`)"});
        return std::nullopt;
    }
    const auto now = auth::Clock::now();
    try {
        auth::CurlHttpClient http;
        auth::TokenSet set = auth::request_token(http, account, auth::refresh_grant_form(account, stored->refresh_token), now);
        report.ok("token endpoint reachable (" + account.token_url + ")");
        // Keep the rotated refresh token (Microsoft sends a new one each time), as the relay does.
        if (!set.refresh_token.empty()) stored->refresh_token = set.refresh_token;
        stored->access_token = set.access_token;
        stored->access_expires_at = set.expires_at;
        stored->access_obtained_at = set.obtained_at;
        stored->last_refresh = now;
        store.save(account.name, *stored);
        const auto minutes = std::chrono::duration_cast<std::chrono::minutes>(set.expires_at - now).count();
        report.ok(fmt::format("refresh token works (access token valid {} min)", minutes));
        return set.access_token;
    } catch (const auth::TokenError& e) {
        report_token_error(report, e, account, "refresh token works");
        return std::nullopt;
    }
}

std::string test_message(const conf::Account& account, const std::string& to, const std::string& hostname) {
    const auto now = std::chrono::system_clock::now();
    const auto stamp = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    return fmt::format("From: <{0}>\r\nTo: <{1}>\r\nSubject: smtp-oauth2-relay check for account {2}\r\n"
                       "Message-ID: <check.{3}@{4}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
                       "This test message was sent by `smtp-oauth2-relay check --send-test` through account {2}.\r\n",
                       account.email, to, account.name, stamp, hostname);
}

asio::awaitable<void> upstream_steps(Report& report, const conf::Config& config, const conf::Account& account,
                                     std::optional<std::string> token, std::optional<std::string> send_test) {
    using Stage = UpstreamError::Stage;
    const std::string where = account.upstream.to_string();
    UpstreamOptions options;
    options.server = account.upstream;
    options.tls = account.upstream_tls;
    options.helo_name = config.relay.hostname;
    options.connect_timeout = std::chrono::seconds(15);
    options.command_timeout = std::chrono::seconds(60);
    std::optional<UpstreamError> failure;
    std::shared_ptr<asio::ssl::context> tls;
    try {
        tls = make_upstream_tls_context(account.upstream_ca_file);
    } catch (const std::exception& e) {
        report.fail("upstream TLS verified (" + where + ")", {e.what(), "fix upstream_ca_file for account " + account.name});
        co_return;
    }
    UpstreamSession session(co_await asio::this_coro::executor, tls, options);
    try {
        co_await session.connect();
    } catch (const UpstreamError& e) {
        failure = e;
    }
    if (failure) {
        const bool tls_step = account.upstream_tls != conf::UpstreamTls::none &&
                              failure->stage() != Stage::connect;
        report.fail(tls_step ? "upstream TLS verified (" + where + ")" : "upstream reachable (" + where + ")",
                    check::diagnose_upstream(failure->stage(), failure->what(), failure->reply(), account));
        co_return;
    }
    if (account.upstream_tls == conf::UpstreamTls::none)
        report.ok("upstream connected (" + where + ", no TLS: loopback test server)");
    else
        report.ok("upstream TLS verified (" + where + ", " + session.tls_version() + ")");

    // check tests the token logins only; the mechanism choice is auth's (the same as delivery's).
    std::string mechanism, response;
    if (token && (account.upstream_auth == conf::UpstreamAuth::xoauth2 ||
                  account.upstream_auth == conf::UpstreamAuth::oauthbearer)) {
        auto login = auth::sasl_login(account, *token);
        mechanism = std::move(login.mechanism);
        response = std::move(login.response);
    }
    if (mechanism.empty()) {
        report.skip(token ? fmt::format("AUTH (upstream_auth = {} is not tested by check)", conf::to_string(account.upstream_auth))
                          : "AUTH (no access token)");
        if (send_test) report.skip("test message (not authenticated)");
        co_await session.quit();
        co_return;
    }
    smtp::Reply reply;
    try {
        reply = co_await session.authenticate(mechanism, response);
    } catch (const UpstreamError& e) {
        failure = e;
    }
    if (failure || reply.code != 235) {
        report.fail("AUTH " + mechanism + " accepted",
                    failure ? check::diagnose_upstream(Stage::auth, failure->what(), failure->reply(), account)
                            : check::diagnose_upstream(Stage::auth, "", reply, account));
        if (!failure) co_await session.quit();
        co_return;
    }
    report.ok("AUTH " + mechanism + " accepted");

    if (send_test) {
        Envelope envelope;
        envelope.mail_from = account.email;
        envelope.rcpt_to = {*send_test};
        envelope.account = account.name;
        const std::string message = test_message(account, *send_test, config.relay.hostname);
        StringBody body(message);
        TransactionResult result;
        try {
            result = co_await session.send(envelope, message.size(), body);
        } catch (const UpstreamError& e) {
            failure = e;
        }
        if (failure) {
            report.fail("test message accepted", check::diagnose_upstream(failure->stage(), failure->what(),
                                                                          failure->reply(), account, account.email));
            co_return;
        }
        if (result.data_sent && result.final_reply.positive()) {
            report.ok("test message accepted: " + result.final_reply.text());
        } else {
            const Stage stage = result.data_sent ? Stage::data : Stage::mail;
            report.fail("test message accepted",
                        check::diagnose_upstream(stage, "", result.final_reply, account, account.email));
        }
    }
    co_await session.quit();
}

// transport = "graph": proves the token and the Mail.Send right without sending. The probe posts an
// empty MIME body: Graph checks the token, the permission (and application access policy) and the
// mailbox before it looks at the content, so its 400 "invalid MIME" answer means all of them hold.
void graph_steps(Report& report, const conf::Config& config, const conf::Account& account,
                 const std::optional<std::string>& token, const std::optional<std::string>& send_test) {
    const std::string step = "Mail.Send granted for " + account.email + " (Graph probe; nothing is sent)";
    if (!token) {
        report.skip(step + ": no access token");
        if (send_test) report.skip("test message (no access token)");
        return;
    }
    auth::CurlHttpClient http;
    auth::HttpPost post;
    post.url = graph::send_mail_url(account.graph_url, account.email);
    post.content_type = "text/plain";
    post.bearer_token = *token;
    post.ca_file = account.upstream_ca_file.string();
    post.total_timeout = std::chrono::seconds(60);
    auth::HttpResponse response;
    try {
        response = http.post(post);
    } catch (const auth::HttpError& e) {
        report.fail("Microsoft Graph reachable (" + account.graph_url + ")", check::diagnose_graph(0, "", e.what(), account));
        return;
    }
    report.ok("Microsoft Graph reachable (" + account.graph_url + ")");
    if (response.status != 400 && response.status != 202) {
        const graph::GraphError e = graph::parse_error(response.body);
        report.fail(step, check::diagnose_graph(response.status, e.code, e.message, account));
        return;
    }
    report.ok(step);
    if (!send_test) return;
    const std::string message = test_message(account, *send_test, config.relay.hostname);
    post.body = core::base64_encode(message);
    try {
        response = http.post(post);
    } catch (const auth::HttpError& e) {
        report.fail("test message accepted", check::diagnose_graph(0, "", e.what(), account));
        return;
    }
    if (response.status == 202) {
        report.ok("test message accepted by Graph sendMail (202)");
    } else {
        const graph::GraphError e = graph::parse_error(response.body);
        report.fail("test message accepted", check::diagnose_graph(response.status, e.code, e.message, account));
    }
}

void check_account(Report& report, const conf::Config& config, const conf::Account& account,
                   const std::optional<std::string>& send_test) {
    const bool graph = account.transport == conf::TransportKind::graph;
    std::printf("check: account %s (%s, %s, %s %s)\n", account.name.c_str(), account.email.c_str(),
                std::string(conf::to_string(account.provider)).c_str(), graph ? "Microsoft Graph" : "upstream",
                graph ? account.graph_url.c_str() : account.upstream.to_string().c_str());
    report.ok("config");
    std::optional<std::string> token = token_steps(report, config, account);
    if (graph) return graph_steps(report, config, account, token, send_test);
    asio::io_context io;
    std::exception_ptr crashed;
    asio::co_spawn(io, upstream_steps(report, config, account, token, send_test),
                   [&](std::exception_ptr e) { crashed = e; });
    io.run();
    if (crashed) {
        try {
            std::rethrow_exception(crashed);
        } catch (const std::exception& e) {
            report.fail("upstream", {e.what(), "see the message above"});
        }
    }
}

}  // namespace

int run_check(const std::vector<std::string>& args) {
    auto options = parse_options("check", args, {{"--account", true}, {"--send-test", true}}, kCheckHelp);
    if (!options) return kUsageError;
    if (options->help) return kOk;
    std::optional<std::string> send_test;
    if (options->has("--send-test")) {
        send_test = options->get("--send-test");
        if (send_test->find('@') == std::string::npos || send_test->find_first_of("<> \r\n") != std::string::npos) {
            std::fprintf(stderr, "smtp-oauth2-relay check: --send-test expects an address such as user@example.com\n\n%s",
                         kCheckHelp);
            return kUsageError;
        }
    }
    auto config = load_config_or_report(*options);
    if (!config) return kUsageError;
    // Under sudo: a rotated refresh token is stored as the relay's user, or the relay cannot read it.
    if (auto problem = act_as_owner_of(config->relay.state_dir, "check"); !problem.empty()) {
        std::fprintf(stderr, "smtp-oauth2-relay %s\n", problem.c_str());
        return kRuntimeError;
    }
    std::vector<const conf::Account*> accounts;
    if (options->has("--account")) {
        const conf::Account* account = config->find_account(options->get("--account"));
        if (!account) {
            std::string known;
            for (const auto& [n, a] : config->accounts) known += (known.empty() ? "" : ", ") + n;
            std::fprintf(stderr, "smtp-oauth2-relay check: no account '%s' in %s (accounts: %s)\n",
                         options->get("--account").c_str(), config->source.c_str(), known.c_str());
            return kUsageError;
        }
        accounts.push_back(account);
    } else {
        for (const auto& [name, account] : config->accounts) accounts.push_back(&account);
    }
    Report report;
    for (const conf::Account* account : accounts) check_account(report, *config, *account, send_test);
    std::printf("check: %s\n", report.failed() ? "FAILED (see the fix: lines above)" : "all steps passed");
    return report.failed() ? kRuntimeError : kOk;
}

}  // namespace relay::cli
