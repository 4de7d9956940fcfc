// TokenManager with a fake HTTP client (scripted, thread-safe, counting) and a fake clock: cache
// reuse across restarts, refresh margin, single flight under 100 concurrent callers, rotation saved
// before use, invalid_grant fail-fast, temporary backoff, token_rejected, and no secrets in logs.
// The harness is token_manager_harness.hpp; upkeep has its own file (test_token_upkeep.cpp).
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <sys/resource.h>
#include <filesystem>
#include <future>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "auth/token_manager.hpp"
#include "relay/core/log.hpp"
#include "token_manager_harness.hpp"

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace relay::auth;
using namespace std::chrono_literals;
using namespace token_testing;

TEST(RefreshMargin, TenMinutesOrAFifth) {
    EXPECT_EQ(refresh_margin(3600s), 600s);
    EXPECT_EQ(refresh_margin(5400s), 600s);
    EXPECT_EQ(refresh_margin(1800s), 360s);
    EXPECT_EQ(refresh_margin(3s), 600ms);
}

TEST(TokenManager, ReusesStoredAccessTokenSoARestartDoesNotRefresh) {
    Harness h;
    h.store_tokens("RT-1", "AT-stored", 10min, 60min);
    EXPECT_EQ(h.get(), "AT-stored");
    EXPECT_EQ(h.get(), "AT-stored");
    EXPECT_EQ(h.http.count(), 0u);
    EXPECT_TRUE(h.manager->status().have_refresh_token);
    EXPECT_EQ(h.manager->status().refresh_count, 0u);
}

TEST(TokenManager, RefreshesWithinMarginOfExpiry) {
    Harness h;
    h.store_tokens("RT-1");
    h.http.push_token("AT-1", 3);
    h.http.push_token("AT-2", 3);
    EXPECT_EQ(h.get(), "AT-1");
    EXPECT_EQ(h.http.refresh_token_sent(0), "RT-1");
    h.advance(2300ms);  // 0.7 s left > 0.6 s margin
    EXPECT_EQ(h.get(), "AT-1");
    EXPECT_EQ(h.http.count(), 1u);
    h.advance(200ms);   // 0.5 s left
    EXPECT_EQ(h.get(), "AT-2");
    EXPECT_EQ(h.http.count(), 2u);
    EXPECT_EQ(h.http.refresh_token_sent(1), "RT-1");  // not rotated: the old one is kept
    EXPECT_EQ(h.manager->status().refresh_count, 2u);

    // The refreshed access token was stored: a new process reuses it without HTTP.
    FakeHttp other;
    TokenManager restarted(h.account, h.store, other, h.io.get_executor(), h.pool, [&h] { return h.now(); });
    EXPECT_EQ(h.get(restarted), "AT-2");
    EXPECT_EQ(other.count(), 0u);
}

TEST(TokenManager, HundredConcurrentCallersShareOneRequest) {
    Harness h;
    h.store_tokens("RT-1", "AT-old", 59min, 60min);  // inside the margin: needs a refresh
    h.http.delay = 50ms;
    h.http.push_token("AT-new", 3600);
    std::vector<std::future<std::string>> futures;
    for (int i = 0; i < 100; ++i) futures.push_back(asio::co_spawn(h.io, h.manager->access_token(), asio::use_future));
    h.drive(futures);
    for (auto& f : futures) EXPECT_EQ(f.get(), "AT-new");
    EXPECT_EQ(h.http.count(), 1u);
    EXPECT_EQ(h.manager->status().refresh_count, 1u);
}

TEST(TokenManager, RotatedRefreshTokenIsSavedBeforeAnyoneUsesTheAccessToken) {
    Harness h;
    h.store_tokens("RT-1");
    h.http.delay = 20ms;
    h.http.push_token("AT-1", 3600, "RT-2");
    std::vector<std::future<bool>> futures;
    for (int i = 0; i < 10; ++i) {
        futures.push_back(asio::co_spawn(
            h.io,
            [&h]() -> asio::awaitable<bool> {
                std::string token = co_await h.manager->access_token();
                auto stored = h.store.load("office");  // what a crash right now would leave
                co_return token == "AT-1" && stored && stored->refresh_token == "RT-2" &&
                    stored->access_token == "AT-1";
            },
            asio::use_future));
    }
    h.drive(futures);
    for (auto& f : futures) EXPECT_TRUE(f.get());
    auto mode = fs::status(h.store.path_for("office")).permissions();
    EXPECT_EQ(mode, fs::perms::owner_read | fs::perms::owner_write);

    h.http.push_token("AT-2", 3600);
    EXPECT_EQ(h.rejected("AT-1"), "AT-2");
    EXPECT_EQ(h.http.refresh_token_sent(1), "RT-2");  // the rotated one is used next
}

TEST(TokenManager, InvalidGrantIsLoggedOnceAndFailsFastUntilTheStoreChanges) {
    Harness h;
    h.store_tokens("RT-dead");
    h.http.push(400, invalid_grant_body());
    testing::internal::CaptureStderr();
    for (int i = 0; i < 5; ++i) {
        TokenError e = h.get_error();
        EXPECT_EQ(e.kind(), TokenFailure::invalid_grant);
        h.advance(10min);
    }
    std::string log = testing::internal::GetCapturedStderr();
    EXPECT_EQ(h.http.count(), 1u);
    std::size_t first = log.find("token_refresh_failed");
    ASSERT_NE(first, std::string::npos) << log;
    EXPECT_EQ(log.find("token_refresh_failed", first + 1), std::string::npos) << log;
    EXPECT_NE(log.find("smtp-oauth2-relay authorize --account office"), std::string::npos) << log;
    EXPECT_EQ(log.find("RT-dead"), std::string::npos) << log;
    EXPECT_NE(h.manager->status().last_error.find("invalid_grant"), std::string::npos);

    // `token import` while running: the file changes, the new refresh token is used.
    std::this_thread::sleep_for(20ms);  // a distinct modification time
    h.store_tokens("RT-imported");
    h.http.push_token("AT-1", 3600);
    EXPECT_EQ(h.get(), "AT-1");
    EXPECT_EQ(h.http.count(), 2u);
    EXPECT_EQ(h.http.refresh_token_sent(1), "RT-imported");
    EXPECT_TRUE(h.manager->status().last_error.empty());
}

TEST(TokenManager, UpdateAccountLiftsFailFast) {
    Harness h;
    h.store_tokens("RT-1");
    h.http.push(401, R"({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."})");
    EXPECT_EQ(h.get_error().kind(), TokenFailure::invalid_client);
    EXPECT_EQ(h.get_error().kind(), TokenFailure::invalid_client);
    EXPECT_EQ(h.http.count(), 1u);
    relay::conf::Account fixed = h.account;
    fixed.client_secret = relay::conf::Secret("new-secret");
    h.manager->update_account(fixed);
    h.http.push_token("AT-1", 3600);
    EXPECT_EQ(h.get(), "AT-1");
    EXPECT_EQ(h.http.count(), 2u);
}

TEST(TokenManager, NoRefreshTokenStoredFailsWithoutHttp) {
    Harness h;
    TokenError e = h.get_error();
    EXPECT_EQ(e.kind(), TokenFailure::invalid_grant);
    EXPECT_EQ(e.oauth_error(), "no_refresh_token");
    EXPECT_NE(std::string(e.what()).find("no refresh token stored for account office"), std::string::npos);
    EXPECT_EQ(h.http.count(), 0u);
    EXPECT_FALSE(h.manager->status().have_refresh_token);
}

TEST(TokenManager, TemporaryFailuresBackOffWithoutHttp) {
    Harness h;
    h.store_tokens("RT-1");
    h.http.push(503, R"({"error":"temporarily_unavailable","error_description":"AADSTS50196: busy"})");
    h.http.push(500, "<html>oops</html>");
    h.http.push_token("AT-1", 3600);
    EXPECT_EQ(h.get_error().kind(), TokenFailure::temporary);
    EXPECT_EQ(h.get_error().kind(), TokenFailure::temporary);  // answered from the backoff
    h.advance(1900ms);
    EXPECT_EQ(h.get_error().kind(), TokenFailure::temporary);
    EXPECT_EQ(h.http.count(), 1u);
    h.advance(200ms);                                           // 2 s passed: one more attempt
    EXPECT_EQ(h.get_error().kind(), TokenFailure::temporary);
    EXPECT_EQ(h.http.count(), 2u);
    h.advance(3800ms);                                          // backoff doubled to 4 s
    EXPECT_EQ(h.get_error().kind(), TokenFailure::temporary);
    EXPECT_EQ(h.http.count(), 2u);
    h.advance(300ms);
    EXPECT_EQ(h.get(), "AT-1");
    EXPECT_EQ(h.http.count(), 3u);
    EXPECT_EQ(h.get(), "AT-1");                                 // success resets everything
}

TEST(TokenManager, RetryAfterIsHonouredWithinItsBound) {
    Harness h;
    h.store_tokens("RT-1");
    HttpResponse busy{429, R"({"error":"temporarily_unavailable"})", "30"};
    {
        std::lock_guard lock(h.http.mutex);
        h.http.script.push_back(busy);
    }
    h.http.push_token("AT-1", 3600);
    EXPECT_EQ(h.get_error().retry_after(), 30s);
    h.advance(29s);
    EXPECT_EQ(h.get_error().kind(), TokenFailure::temporary);   // not before Retry-After
    EXPECT_EQ(h.http.count(), 1u);
    EXPECT_GT(h.manager->status().retry_at, h.now());
    h.advance(2s);
    EXPECT_EQ(h.get(), "AT-1");
    EXPECT_EQ(h.manager->status().retry_at, Clock::time_point{});
}

TEST(TokenManager, ItsOwnRetryFetchesTheTokenAndWakesWhoWaited) {
    Harness h;
    h.store_tokens("RT-1");
    h.http.push(500, "<html>down</html>");
    h.http.push_token("AT-1", 3600);
    std::atomic<int> woken{0};
    h.manager->on_recovered([&] { ++woken; });
    h.manager->start_upkeep();   // a running relay: upkeep on, so the manager retries by itself
    // Upkeep finds a fresh-enough file without last_refresh and refreshes: that is the 500.
    EXPECT_EQ(h.get_error().kind(), TokenFailure::temporary);
    // Nobody calls again: the manager's retry (2 s of real time on its timer) gets the token.
    h.advance(3s);
    h.io.restart();
    auto guard = asio::make_work_guard(h.io);
    for (int i = 0; i < 500 && woken == 0; ++i) h.io.run_one_for(10ms);
    EXPECT_EQ(woken.load(), 1);
    EXPECT_EQ(h.http.count(), 2u);
    EXPECT_EQ(h.get(), "AT-1");   // from the cache: no third request
    EXPECT_EQ(h.http.count(), 2u);
    h.manager->stop_upkeep();
}

TEST(TokenManager, TransportErrorsAreTemporary) {
    Harness h;
    h.store_tokens("RT-1");  // empty script: the fake throws HttpError
    TokenError e = h.get_error();
    EXPECT_EQ(e.kind(), TokenFailure::temporary);
    EXPECT_EQ(h.http.count(), 1u);
}

TEST(TokenManager, TokenRejectedForcesExactlyOneRefresh) {
    Harness h;
    h.store_tokens("RT-1", "AT-0", 1min, 60min);
    EXPECT_EQ(h.get(), "AT-0");
    h.http.delay = 30ms;
    h.http.push_token("AT-1", 3600);
    std::vector<std::future<std::string>> futures;
    for (int i = 0; i < 10; ++i)
        futures.push_back(asio::co_spawn(h.io, h.manager->token_rejected("AT-0"), asio::use_future));
    for (int i = 0; i < 10; ++i)
        futures.push_back(asio::co_spawn(h.io, h.manager->access_token(), asio::use_future));
    h.drive(futures);
    for (auto& f : futures) EXPECT_EQ(f.get(), "AT-1");
    EXPECT_EQ(h.http.count(), 1u);
    EXPECT_EQ(h.rejected("AT-0"), "AT-1");  // stale rejection: someone already refreshed
    EXPECT_EQ(h.http.count(), 1u);
}

TEST(TokenManager, LogsNeverContainTokens) {
    Harness h;
    h.store_tokens("RT-SECRET-1");
    h.http.push_token("AT-SECRET-1", 3600, "RT-SECRET-2");
    testing::internal::CaptureStderr();
    EXPECT_EQ(h.get(), "AT-SECRET-1");
    std::string log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("token_refreshed"), std::string::npos) << log;
    EXPECT_NE(log.find("rotated=yes"), std::string::npos) << log;
    EXPECT_EQ(log.find("SECRET"), std::string::npos) << log;
}

// --- issue 3: app-only accounts (refresh token upkeep: test_token_upkeep.cpp) ----------------------

namespace {

std::string field(const FormFields& form, const std::string& key) {
    for (auto& [k, v] : form)
        if (k == key) return v;
    return "(absent)";
}

}  // namespace

TEST(TokenManager, ClientCredentialsShareOneRequestAndWriteNoTokenFile) {
    Harness h;
    h.account.auth = relay::conf::AuthMode::client_credentials;
    h.account.client_secret = relay::conf::Secret("app-secret");
    h.account.scope = "https://outlook.office365.com/.default";
    h.manager = h.make_manager();
    h.http.delay = 50ms;
    h.http.push_token("AT-app-1", 3600);
    std::vector<std::future<std::string>> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(asio::co_spawn(h.io, h.manager->access_token(), asio::use_future));
    h.drive(futures);
    for (auto& f : futures) EXPECT_EQ(f.get(), "AT-app-1");
    ASSERT_EQ(h.http.count(), 1u);
    const FormFields form = h.http.requests[0];
    EXPECT_EQ(field(form, "grant_type"), "client_credentials");
    EXPECT_EQ(field(form, "client_secret"), "app-secret");
    EXPECT_EQ(field(form, "scope"), "https://outlook.office365.com/.default");
    EXPECT_EQ(field(form, "refresh_token"), "(absent)");
    EXPECT_FALSE(h.store.load("office").has_value());  // kept in memory only

    h.advance(3000s);  // inside the 10 min margin: a new app token, still no refresh token involved
    h.http.push_token("AT-app-2", 3600);
    EXPECT_EQ(h.get(), "AT-app-2");
    EXPECT_EQ(h.http.count(), 2u);

    // An invalid client is permanent: answered from memory until the config changes.
    h.advance(3000s);
    h.http.push(401, R"({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret."})");
    EXPECT_EQ(h.get_error().kind(), TokenFailure::invalid_client);
    EXPECT_EQ(h.get_error().kind(), TokenFailure::invalid_client);
    EXPECT_EQ(h.http.count(), 3u);
}


// --- issue 13, item 9: a rotated refresh token is used only once it is stored ----------------------

namespace {

// File writes beyond a few bytes fail with EFBIG while this lives, as on a full state_dir.
struct DiskFull {
    rlimit old{};
    DiskFull() {
        ::getrlimit(RLIMIT_FSIZE, &old);
        std::signal(SIGXFSZ, SIG_IGN);
        rlimit tiny{16, old.rlim_max};
        ::setrlimit(RLIMIT_FSIZE, &tiny);
    }
    ~DiskFull() { ::setrlimit(RLIMIT_FSIZE, &old); }
};

// Log events as the observer sees them: CaptureStderr writes to a temp file, which DiskFull would cut.
std::vector<std::string> g_events;
void record_event(std::string_view name, std::initializer_list<relay::log::Field> fields) {
    std::string line(name);
    for (const auto& f : fields) line += " " + std::string(f.key) + "=" + f.value;
    g_events.push_back(std::move(line));
}
struct RecordEvents {
    RecordEvents() {
        g_events.clear();
        relay::log::set_observer(&record_event);
    }
    ~RecordEvents() { relay::log::set_observer(nullptr); }
    std::string all() const {
        std::string out;
        for (const auto& e : g_events) out += e + "\n";
        return out;
    }
};

}  // namespace

TEST(TokenManager, RotatedRefreshTokenThatCannotBeStoredIsNotUsedUntilItIs) {
    Harness h;
    h.store_tokens("RT-1");
    h.http.push_token("AT-1", 3600, "RT-2");
    std::string log;
    {
        RecordEvents events;
        DiskFull full;
        EXPECT_EQ(h.get(), "AT-1");   // the access token itself is good to use
        log = events.all();
    }
    EXPECT_NE(log.find("token_store_save_failed"), std::string::npos) << log;
    EXPECT_NE(log.find(h.store.path_for("office").string()), std::string::npos) << log;   // names the path
    EXPECT_NE(log.find("previous one stays in use"), std::string::npos) << log;
    EXPECT_EQ(log.find("RT-2"), std::string::npos) << log;
    EXPECT_EQ(h.store.load("office")->refresh_token, "RT-1");

    // Still full: the next refresh uses the stored (old) token, not the unstored new one.
    h.http.push_token("AT-2", 3600);
    {
        DiskFull full;
        EXPECT_EQ(h.rejected("AT-1"), "AT-2");
    }
    EXPECT_EQ(h.http.refresh_token_sent(1), "RT-1");
    EXPECT_EQ(h.store.load("office")->refresh_token, "RT-1");

    // Space again: the retried save stores the new token first, and only then is it used.
    h.http.push_token("AT-3", 3600);
    EXPECT_EQ(h.rejected("AT-2"), "AT-3");
    EXPECT_EQ(h.http.refresh_token_sent(2), "RT-2");
    EXPECT_EQ(h.store.load("office")->refresh_token, "RT-2");
}

TEST(TokenManager, UnstoredRotationIsSavedOnTheNextUseWithoutARefresh) {
    Harness h;
    h.store_tokens("RT-1");
    h.http.push_token("AT-1", 3600, "RT-2");
    {
        DiskFull full;
        EXPECT_EQ(h.get(), "AT-1");
    }
    h.advance(31s);   // past the retry interval; the access token is still fresh
    EXPECT_EQ(h.get(), "AT-1");
    EXPECT_EQ(h.http.count(), 1u);
    EXPECT_EQ(h.store.load("office")->refresh_token, "RT-2");
}
