// Issue 13, items 1 and 12: AUTH attempts are counted before they are checked, so parallel
// guesses cannot exceed auth_max_failures per window; unknown names cost what a real user's wrong
// password costs. AuthAttempts is driven with core::FakeClock; RelaySessionHooks with a real config.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "auth/password_hash.hpp"
#include "conf/config.hpp"
#include "../conf/config_test_support.hpp"
#include "relay/core/clock.hpp"
#include "relay/intake/auth_attempts.hpp"
#include "relay/intake/smtp_server.hpp"

namespace {

using namespace relay;
using namespace std::chrono_literals;
using Verdict = AuthAttempts::Verdict;

TEST(AuthAttempts, LockoutAfterMaxFailuresForTheLockoutPeriod) {
    core::FakeClock clock;
    AuthAttempts attempts({.max_failures = 3, .lockout = 60s});
    for (int i = 0; i < 2; ++i) {
        ASSERT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::go);
        EXPECT_FALSE(attempts.finish("10.0.0.1", false, clock.now()));
        clock.advance(1s);
    }
    EXPECT_FALSE(attempts.locked("10.0.0.1", clock.now()));
    ASSERT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::go);
    EXPECT_TRUE(attempts.finish("10.0.0.1", false, clock.now()));   // the third starts the lockout
    EXPECT_TRUE(attempts.locked("10.0.0.1", clock.now()));
    EXPECT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::locked);
    EXPECT_EQ(attempts.begin("10.0.0.2", clock.now()), Verdict::go);    // per address
    clock.advance(59s);
    EXPECT_TRUE(attempts.locked("10.0.0.1", clock.now()));
    clock.advance(1s);
    EXPECT_FALSE(attempts.locked("10.0.0.1", clock.now()));
    EXPECT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::go);
}

TEST(AuthAttempts, OldFailuresAreForgiven) {
    core::FakeClock clock;
    AuthAttempts attempts({.max_failures = 2, .lockout = 60s});
    ASSERT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::go);
    EXPECT_FALSE(attempts.finish("10.0.0.1", false, clock.now()));
    clock.advance(61s);
    ASSERT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::go);
    EXPECT_FALSE(attempts.finish("10.0.0.1", false, clock.now()));
    clock.advance(1s);
    ASSERT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::go);
    EXPECT_TRUE(attempts.finish("10.0.0.1", false, clock.now()));
}

// The probe: 200 guesses in parallel sessions, all sent before the first check returned. Counting
// only answered failures let every one be checked; counting at the start allows max_failures.
TEST(AuthAttempts, ParallelGuessesNeverExceedMaxFailuresPerWindow) {
    core::FakeClock clock;
    AuthAttempts attempts({.max_failures = 10, .lockout = 900s, .max_in_flight_per_address = 200,
                           .max_in_flight = 1000});
    std::size_t checked = 0;
    for (int round = 0; round < 5; ++round) {   // waves of 200, each answered before the next
        std::size_t began = 0;
        for (int i = 0; i < 200; ++i)
            if (attempts.begin("192.0.2.7", clock.now()) == Verdict::go) ++began;
        for (std::size_t i = 0; i < began; ++i) attempts.finish("192.0.2.7", false, clock.now());
        checked += began;
        clock.advance(10s);
    }
    EXPECT_EQ(checked, 10u);
    EXPECT_TRUE(attempts.locked("192.0.2.7", clock.now()));
    // After the lockout, the next window again allows at most max_failures checks.
    clock.advance(900s);
    std::size_t next_window = 0;
    for (int i = 0; i < 200; ++i)
        if (attempts.begin("192.0.2.7", clock.now()) == Verdict::go) ++next_window;
    EXPECT_EQ(next_window, 10u);
}

TEST(AuthAttempts, ChecksInFlightAreBoundedPerAddressAndInTotal) {
    core::FakeClock clock;
    AuthAttempts attempts({.max_failures = 100, .lockout = 900s, .max_in_flight_per_address = 2,
                           .max_in_flight = 3});
    EXPECT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::go);
    EXPECT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::go);
    EXPECT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::busy);
    EXPECT_EQ(attempts.begin("10.0.0.2", clock.now()), Verdict::go);
    EXPECT_EQ(attempts.begin("10.0.0.3", clock.now()), Verdict::busy);   // total
    EXPECT_EQ(attempts.in_flight(), 3u);
    attempts.finish("10.0.0.1", true, clock.now());
    EXPECT_EQ(attempts.begin("10.0.0.3", clock.now()), Verdict::go);
    EXPECT_FALSE(attempts.finish("10.0.0.9", false, clock.now()));   // never begun: ignored
    EXPECT_EQ(attempts.in_flight(), 3u);
}

TEST(AuthAttempts, SuccessDoesNotCountAsFailure) {
    core::FakeClock clock;
    AuthAttempts attempts({.max_failures = 2, .lockout = 60s});
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::go);
        EXPECT_FALSE(attempts.finish("10.0.0.1", true, clock.now()));
    }
    EXPECT_FALSE(attempts.failed_without_check("10.0.0.1", clock.now()));
    EXPECT_TRUE(attempts.failed_without_check("10.0.0.1", clock.now()));
    EXPECT_EQ(attempts.begin("10.0.0.1", clock.now()), Verdict::locked);
}

// ---- RelaySessionHooks: the accounting as sessions use it ---------------------------------------

std::shared_ptr<const conf::Config> users_config(const std::string& hash) {
    return std::make_shared<const conf::Config>(conf::parse_config(
        "[relay]\nauth_max_failures = 10\n" + conf::config_testing::kAccount +
            "[[users]]\nname = \"printer\"\npassword_hash = \"" + hash + "\"\naccount = \"office\"\n"
            "[[users]]\nname = \"scanner\"\npassword = \"plain-secret\"\naccount = \"office\"\n",
        "t.toml"));
}

const std::string& printer_hash() {
    static const std::string hash = auth::hash_password("right", auth::kPbkdf2MinIterations).to_string();
    return hash;
}

TEST(RelaySessionHooks, ParallelSlowChecksStopAtMaxFailures) {
    auto config = users_config(printer_hash());
    AuthAttempts attempts({.max_failures = 10, .lockout = 900s, .max_in_flight_per_address = 100,
                           .max_in_flight = 100});
    // 15 sessions send a new wrong password each before any check returns, then the right one.
    std::vector<std::unique_ptr<RelaySessionHooks>> sessions;
    std::size_t slow = 0, refused = 0;
    for (int i = 0; i < 15; ++i) {
        sessions.push_back(std::make_unique<RelaySessionHooks>(config, "192.0.2.7", &attempts));
        auto r = sessions.back()->authenticate("printer", "guess-" + std::to_string(i));
        if (r.needs_slow_check) ++slow;
        if (!r.refusal.empty()) {
            ++refused;
            EXPECT_EQ(r.refusal.substr(0, 9), "454 4.7.0");
        }
    }
    EXPECT_EQ(slow, 10u);
    EXPECT_EQ(refused, 5u);
    for (auto& s : sessions) s->slow_check_finished(false);
    RelaySessionHooks last(config, "192.0.2.7", &attempts);
    auto r = last.authenticate("printer", "right");
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.needs_slow_check);
    EXPECT_EQ(r.refusal.substr(0, 9), "454 4.7.0");
    EXPECT_FALSE(last.auth_refusal().empty());
}

TEST(RelaySessionHooks, SessionEndingDuringItsCheckStillSpendsTheAttempt) {
    auto config = users_config(printer_hash());
    AuthAttempts attempts({.max_failures = 2, .lockout = 900s});
    for (int i = 0; i < 2; ++i) {
        RelaySessionHooks gone(config, "192.0.2.8", &attempts);
        EXPECT_TRUE(gone.authenticate("printer", "guess-x" + std::to_string(i)).needs_slow_check);
    }   // destroyed without slow_check_finished: counted as failures
    EXPECT_TRUE(attempts.locked("192.0.2.8", std::chrono::steady_clock::now()));
}

TEST(RelaySessionHooks, CheapChecksAreCountedToo) {
    auto config = users_config(printer_hash());
    AuthAttempts attempts({.max_failures = 3, .lockout = 900s});
    RelaySessionHooks hooks(config, "192.0.2.9", &attempts);
    for (int i = 0; i < 3; ++i) {
        auto r = hooks.authenticate("scanner", "wrong");
        EXPECT_FALSE(r.ok);
        EXPECT_TRUE(r.refusal.empty());
        hooks.note("auth_failed", "user=scanner");   // as the session does after a 535
    }
    EXPECT_EQ(hooks.authenticate("scanner", "plain-secret").refusal.substr(0, 9), "454 4.7.0");
    EXPECT_EQ(hooks.auth_failures, 3u);
}

// Item 12: an unknown name takes the KDF path like a real user's wrong password (it did not: it
// was answered at once, 170 ms before a real user's), and the same cache on a repeat.
TEST(RelaySessionHooks, UnknownUserCostsWhatAWrongPasswordCosts) {
    auto config = users_config(printer_hash());
    RelaySessionHooks hooks(config, "192.0.2.10");
    auto unknown = hooks.authenticate("nobody", "pw-1");
    auto known = hooks.authenticate("printer", "pw-1");
    EXPECT_TRUE(unknown.needs_slow_check);
    EXPECT_TRUE(known.needs_slow_check);
    auto timed = [&](const char* user, const char* password) {
        const auto start = std::chrono::steady_clock::now();
        EXPECT_FALSE(hooks.authenticate_slow(user, password).ok);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    timed("nobody", "warm-up");   // makes the dummy hash once
    // Medians of interleaved runs: the machine may be busy. Before, an unknown name cost ~nothing.
    std::vector<double> known_runs, unknown_runs;
    for (int i = 0; i < 3; ++i) {
        known_runs.push_back(timed("printer", ("pw-2-" + std::to_string(i)).c_str()));
        unknown_runs.push_back(timed("nobody", ("pw-2-" + std::to_string(i)).c_str()));
    }
    std::sort(known_runs.begin(), known_runs.end());
    std::sort(unknown_runs.begin(), unknown_runs.end());
    const double known_s = known_runs[1], unknown_s = unknown_runs[1];
    EXPECT_GT(unknown_s, known_s * 0.3) << "unknown " << unknown_s << " s, known " << known_s << " s";
    EXPECT_LT(unknown_s, known_s * 3.0) << "unknown " << unknown_s << " s, known " << known_s << " s";
    timed("printer", "pw-2");
    timed("nobody", "pw-2");
    // A repeat is answered from the cache in both cases.
    EXPECT_FALSE(hooks.authenticate("nobody", "pw-2").needs_slow_check);
    EXPECT_FALSE(hooks.authenticate("printer", "pw-2").needs_slow_check);
}

}  // namespace
