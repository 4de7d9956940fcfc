// TokenManager::upkeep() with the fake HTTP client and clock (token_manager_harness.hpp): an idle
// account's refresh token is refreshed only when keepalive_refresh is due (or its age is unknown),
// an old one that cannot be refreshed draws a warning, and app-only accounts have none to keep.
#include <gtest/gtest.h>

#include <future>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include "auth/token_manager.hpp"
#include "token_manager_harness.hpp"

namespace asio = boost::asio;
using namespace relay::auth;
using namespace std::chrono_literals;
using namespace token_testing;

namespace {

void run_upkeep(Harness& h) {
    std::vector<std::future<void>> f;
    f.push_back(asio::co_spawn(h.io, h.manager->upkeep(), asio::use_future));
    h.drive(f);
    f[0].get();
}

void store_refreshed(Harness& h, std::chrono::hours ago) {
    StoredTokens t;
    t.refresh_token = "RT-1";
    t.last_refresh = std::chrono::time_point_cast<std::chrono::seconds>(h.now() - ago);
    h.store.save(h.account.name, t);
}

}  // namespace

TEST(TokenManager, UpkeepRefreshesAnIdleTokenOnlyWhenDue) {
    Harness h;
    store_refreshed(h, 24h);  // refreshed yesterday; keepalive is 7 days
    run_upkeep(h);
    EXPECT_EQ(h.http.count(), 0u);

    store_refreshed(h, 8 * 24h);
    h.http.push_token("AT-kept-alive", 3600);
    testing::internal::CaptureStderr();
    run_upkeep(h);
    std::string log = testing::internal::GetCapturedStderr();
    EXPECT_EQ(h.http.count(), 1u);
    EXPECT_NE(log.find("token_keepalive account=office idle_s=691200"), std::string::npos) << log;
    EXPECT_EQ(log.find("refresh_token_aging"), std::string::npos) << log;
    EXPECT_EQ(h.manager->status().last_refresh, h.now());
}

TEST(TokenManager, UpkeepWarnsWhenTheRefreshTokenIsOldAndCannotBeRefreshed) {
    Harness h;
    store_refreshed(h, 61 * 24h);
    h.http.push(400, invalid_grant_body());
    testing::internal::CaptureStderr();
    run_upkeep(h);
    std::string log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("token_refresh_failed"), std::string::npos) << log;
    EXPECT_NE(log.find("refresh_token_aging account=office days_since_refresh=61 warn_days=60"), std::string::npos) << log;

    // App-only accounts have no refresh token to keep alive or warn about.
    Harness app;
    app.account.auth = relay::conf::AuthMode::client_credentials;
    app.manager = app.make_manager();
    store_refreshed(app, 100 * 24h);
    testing::internal::CaptureStderr();
    run_upkeep(app);
    EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
    EXPECT_EQ(app.http.count(), 0u);
}

TEST(TokenManager, UpkeepRefreshesATokenFileWithoutLastRefresh) {
    Harness h;
    h.store_tokens("RT-1", "AT-old", 1min, 60min);  // no last_refresh, as a hand-written file
    h.http.push_token("AT-new", 3600);
    testing::internal::CaptureStderr();
    run_upkeep(h);
    std::string log = testing::internal::GetCapturedStderr();
    EXPECT_NE(log.find("token_keepalive account=office idle_s=unknown"), std::string::npos) << log;
    EXPECT_EQ(h.http.count(), 1u);
    EXPECT_EQ(h.store.load("office")->last_refresh, std::chrono::time_point_cast<std::chrono::seconds>(h.now()));
}
