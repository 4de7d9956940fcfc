// The TokenManager tests' harness (test_token_manager.cpp, test_token_upkeep.cpp): a fake HTTP client
// (scripted, thread-safe, counting), a fake clock, a token store in a temporary directory, and an
// io_context driven until the futures a test waits for are ready.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <stdlib.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>

#include "auth/token_manager.hpp"

namespace token_testing {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace relay::auth;
using namespace std::chrono_literals;

struct FakeHttp : HttpClient {
    std::mutex mutex;
    std::deque<HttpResponse> script;
    std::vector<FormFields> requests;
    std::chrono::milliseconds delay{0};
    std::function<void()> on_request;  // runs on the pool thread before answering

    void push(long status, std::string body) {
        std::lock_guard lock(mutex);
        script.push_back({status, std::move(body)});
    }
    void push_token(const std::string& access, int expires_in, const std::string& refresh = "") {
        std::string body = R"({"token_type":"Bearer","access_token":")" + access + R"(","expires_in":)" +
                           std::to_string(expires_in);
        if (!refresh.empty()) body += R"(,"refresh_token":")" + refresh + '"';
        push(200, body + "}");
    }
    std::size_t count() {
        std::lock_guard lock(mutex);
        return requests.size();
    }
    std::string refresh_token_sent(std::size_t i) {
        std::lock_guard lock(mutex);
        for (auto& [k, v] : requests.at(i))
            if (k == "refresh_token") return v;
        return {};
    }
    HttpResponse post_form(const std::string& url, const FormFields& form) override {
        if (delay.count()) std::this_thread::sleep_for(delay);
        if (on_request) on_request();
        std::lock_guard lock(mutex);
        requests.push_back(form);
        if (script.empty()) throw HttpError("POST " + url + " failed: no scripted response");
        HttpResponse r = script.front();
        script.pop_front();
        return r;
    }
};

inline std::string invalid_grant_body() {
    return R"({"error":"invalid_grant","error_description":"AADSTS70008: The refresh token has expired due to )"
           R"(inactivity.\r\nTrace ID: 1\r\nCorrelation ID: 2","error_codes":[70008]})";
}

struct Harness {
    fs::path dir;
    TokenStore store;
    FakeHttp http;
    asio::io_context io;
    asio::thread_pool pool{2};
    std::atomic<long long> now_ms{1'700'000'000'000};
    relay::conf::Account account;
    std::unique_ptr<TokenManager> manager;

    Harness() : dir(make_dir()), store(dir) {
        account.name = "office";
        account.client_id = "client-id";
        account.scope = "https://outlook.office.com/SMTP.Send offline_access";
        account.token_url = "https://login.example/token";
        manager = make_manager();
    }
    ~Harness() {
        pool.join();
        fs::remove_all(dir);
    }
    static fs::path make_dir() {
        std::string tmpl = (fs::temp_directory_path() / "relay-tm-XXXXXX").string();
        return ::mkdtemp(tmpl.data());
    }
    std::unique_ptr<TokenManager> make_manager() {
        return std::make_unique<TokenManager>(account, store, http, io.get_executor(), pool,
                                              [this] { return now(); });
    }
    Clock::time_point now() const { return Clock::time_point(std::chrono::milliseconds(now_ms.load())); }
    void advance(std::chrono::milliseconds d) { now_ms += d.count(); }

    void store_tokens(const std::string& refresh, const std::string& access = "",
                      std::chrono::seconds age = 0s, std::chrono::seconds lifetime = 0s) {
        StoredTokens t;
        t.refresh_token = refresh;
        t.access_token = access;
        auto obtained = std::chrono::time_point_cast<std::chrono::seconds>(now()) - age;
        t.access_obtained_at = obtained;
        t.access_expires_at = obtained + lifetime;
        store.save(account.name, t);
    }

    // Runs the io_context until every future is ready. (restart(): the previous drive's guard
    // reaching zero work stopped the context.)
    template <class T>
    void drive(std::vector<std::future<T>>& futures) {
        io.restart();
        auto guard = asio::make_work_guard(io);
        for (auto& f : futures)
            while (f.wait_for(0s) != std::future_status::ready) io.run_one_for(10ms);
    }
    std::string get(TokenManager& m) {
        std::vector<std::future<std::string>> f;
        f.push_back(asio::co_spawn(io, m.access_token(), asio::use_future));
        drive(f);
        return f[0].get();
    }
    std::string get() { return get(*manager); }
    std::string rejected(const std::string& token) {
        std::vector<std::future<std::string>> f;
        f.push_back(asio::co_spawn(io, manager->token_rejected(token), asio::use_future));
        drive(f);
        return f[0].get();
    }
    TokenError get_error() {
        try {
            get();
        } catch (const TokenError& e) {
            return e;
        }
        ADD_FAILURE() << "expected TokenError";
        return TokenError(TokenFailure::other, "", "", 0);
    }
};

}  // namespace token_testing
