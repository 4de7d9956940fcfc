// `authorize`: a person grants the relay a refresh token, without copying codes or writing curl.
//  - default: authorization code flow with PKCE (RFC 7636) and a checked `state`; the browser comes
//    back to a one-shot listener on the loopback redirect (RFC 8252 section 7.3);
//  - --paste: the same URL, but the browser runs elsewhere and the admin pastes the address it was
//    redirected to (the page itself fails to load; the address bar holds the code);
//  - --device: the device authorization grant (RFC 8628) for headless servers.
// The tokens are stored like `token import` stores them; a running relay picks them up.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "auth/http_client.hpp"
#include "auth/loopback_listener.hpp"
#include "auth/oauth_flows.hpp"
#include "auth/token_endpoint.hpp"
#include "auth/token_store.hpp"
#include "conf/redirect_uri.hpp"
#include "relay/cli/check_diagnosis.hpp"
#include "relay/cli/cli.hpp"

namespace relay::cli {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr const char* kAuthorizeHelp = R"(usage: smtp-oauth2-relay authorize --account NAME [--device | --paste] [--timeout SECONDS] [--config FILE]

  Signs a person in at the account's provider and stores the refresh token the relay will use.
  default    prints a URL to open in a browser on this machine; after sign-in the browser is sent
             back to the account's redirect_uri (default http://localhost, any free port), the
             code is redeemed with PKCE and the tokens are stored in state_dir/tokens/NAME.json.
  --paste    for a browser on another machine: open the URL there, then paste the address the
             browser was redirected to (it shows an error page; the address bar has the code).
  --device   device code flow for headless servers: prints a short code to enter at the
             provider's device login page from any device (not available for Google mail scopes).
  --timeout  how long to wait for the sign-in (default 300 s; --device: the code's lifetime).
  Then run `smtp-oauth2-relay check --account NAME`.
)";

void say(const std::string& text) {
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
}

void complain(const std::string& text) {
    std::fputs(text.c_str(), stderr);
    std::fflush(stderr);
}

int store(const conf::Config& config, const conf::Account& account, const auth::TokenSet& set,
          const std::string& config_flag) {
    if (set.refresh_token.empty()) {
        complain(fmt::format("authorize: account {}: the provider returned no refresh token; the scope must include "
                             "offline_access (Microsoft) or the app must ask for offline access (Google)\n",
                             account.name));
        return kRuntimeError;
    }
    auth::StoredTokens stored;
    stored.refresh_token = set.refresh_token;
    stored.access_token = set.access_token;
    stored.access_expires_at = set.expires_at;
    stored.access_obtained_at = set.obtained_at;
    stored.last_refresh = set.obtained_at;
    auth::TokenStore token_store(config.relay.state_dir);
    token_store.save(account.name, stored);
    say(fmt::format("authorize: account {}: signed in; tokens stored in {} (mode 0600)\n", account.name,
                    token_store.path_for(account.name).string()));
    say(fmt::format("authorize: a running relay picks the new token up by itself. Next, verify the whole path:\n"
                    "  smtp-oauth2-relay check{} --account {}\n", config_flag, account.name));
    return kOk;
}

int report_token_error(const conf::Account& account, const auth::TokenError& e, std::string_view what) {
    complain(fmt::format("authorize: account {}: {}: {}\n", account.name, what, e.what()));
    // The diagnosis `check` gives (one table of AADSTS causes and fixes, check_diagnosis.hpp).
    const auto diagnosis = check::diagnose_token(e, account);
    complain(fmt::format("authorize: cause: {}\nauthorize: what to do: {}\n", diagnosis.cause, diagnosis.fix));
    return kRuntimeError;
}

int redeem(const conf::Config& config, const conf::Account& account, const auth::RedirectParameters& p,
           const std::string& expected_state, const std::string& verifier, const std::string& redirect_uri,
           const std::string& config_flag) {
    if (!p.error.empty()) {
        complain(fmt::format("authorize: account {}: sign-in failed: {}{}\n", account.name, p.error,
                             p.error_description.empty() ? "" : ": " + p.error_description));
        if (p.error == "access_denied")
            complain("authorize: what to do: the person (or an admin policy) declined; sign in again and accept the "
                     "requested permissions, or ask an admin to grant consent for the app\n");
        return kRuntimeError;
    }
    // RFC 6749 section 10.12: a code that did not come back with our state may be an attacker's.
    if (p.state != expected_state) {
        complain(fmt::format("authorize: account {}: the state parameter does not match this authorization; "
                             "the code was not used. Run authorize again.\n", account.name));
        return kRuntimeError;
    }
    try {
        auth::CurlHttpClient http;
        auto set = auth::request_token(http, account, auth::authorization_code_form(account, p.code, verifier, redirect_uri),
                                       auth::Clock::now());
        return store(config, account, set, config_flag);
    } catch (const auth::TokenError& e) {
        return report_token_error(account, e, "the token endpoint refused the authorization code");
    }
}

int code_flow(const conf::Config& config, const conf::Account& account, bool paste, std::chrono::seconds timeout,
              const std::string& config_flag) {
    if (account.authorize_url.empty()) {
        complain(fmt::format("authorize: account {}: no authorize_url: set authorize_url in [accounts.{}]{}\n",
                             account.name, account.name,
                             account.provider == conf::Provider::microsoft ? " (or tenant, which the preset needs)" : ""));
        return kUsageError;
    }
    const auto redirect = conf::parse_loopback_redirect(account.redirect_uri);  // validated at load
    const auth::Pkce pkce = auth::make_pkce();
    const std::string state = auth::random_state();

    if (paste) {
        const std::string redirect_uri = redirect->with_port(redirect->port);
        say(fmt::format("authorize: account {}: open this URL in a browser (on any machine) and sign in as {}:\n\n  {}\n\n",
                        account.name, account.email, auth::build_authorize_url(account, redirect_uri, state, pkce.challenge)));
        say("The browser then shows an error page at " + redirect_uri +
            " (nothing listens there); copy the whole address from its address bar and paste it here:\n");
        std::string line;
        if (!std::getline(std::cin, line)) {
            complain("authorize: no address was pasted (end of input)\n");
            return kRuntimeError;
        }
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
        auto parameters = auth::parse_redirect(line);
        if (!parameters) {
            complain("authorize: the pasted text has no code= or error= parameter; paste the complete address the "
                     "browser was sent to (it starts with " + redirect_uri + ")\n");
            return kRuntimeError;
        }
        return redeem(config, account, *parameters, state, pkce.verifier, redirect_uri, config_flag);
    }

    std::optional<auth::LoopbackListener> listener;
    try {
        listener.emplace(*redirect);
    } catch (const std::exception& e) {
        complain(fmt::format("authorize: account {}: {} (redirect_uri {}); choose another port in redirect_uri or use "
                             "--paste\n", account.name, e.what(), account.redirect_uri));
        return kRuntimeError;
    }
    const std::string redirect_uri = redirect->with_port(listener->port());
    say(fmt::format("authorize: account {}: open this URL in a browser on this machine and sign in as {}:\n\n  {}\n\n",
                    account.name, account.email, auth::build_authorize_url(account, redirect_uri, state, pkce.challenge)));
    say(fmt::format("authorize: waiting up to {} s for the browser to come back to {} (browser elsewhere? use --paste)\n",
                    timeout.count(), redirect_uri));
    auto outcome = listener->wait(SteadyClock::now() + timeout, state);
    if (!outcome) {
        complain(fmt::format("authorize: account {}: no sign-in arrived within {} s; run authorize again and finish "
                             "signing in within that time (or use --timeout, --paste or --device)\n",
                             account.name, timeout.count()));
        return kRuntimeError;
    }
    return redeem(config, account, outcome->parameters, state, pkce.verifier, redirect_uri, config_flag);
}

int device_flow(const conf::Config& config, const conf::Account& account, std::optional<std::chrono::seconds> timeout,
                const std::string& config_flag) {
    if (account.devicecode_url.empty()) {
        if (account.provider == conf::Provider::google)
            complain(fmt::format("authorize: account {}: Google does not allow the device flow for the mail scope "
                                 "(https://mail.google.com/); run authorize without --device (or with --paste when "
                                 "the browser is on another machine)\n", account.name));
        else
            complain(fmt::format("authorize: account {}: no devicecode_url: set it in [accounts.{}]{} or run authorize "
                                 "without --device\n", account.name, account.name,
                                 account.provider == conf::Provider::microsoft ? " (or tenant, which the preset needs)" : ""));
        return kUsageError;
    }
    auth::CurlHttpClient http;
    auth::DeviceAuthorization device;
    try {
        auth::HttpResponse response;
        try {
            response = http.post_form(account.devicecode_url, auth::device_code_request_form(account));
        } catch (const auth::HttpError& e) {
            throw auth::TokenError(auth::TokenFailure::temporary, "transport_error", e.what(), 0);
        }
        device = auth::parse_device_authorization(response.status, response.body);
    } catch (const auth::TokenError& e) {
        return report_token_error(account, e, "the device code request failed");
    }
    say(fmt::format("authorize: account {}: on any device, open {} and enter the code {}\n", account.name,
                    device.verification_uri, device.user_code));
    say(fmt::format("authorize: then sign in as {}. Waiting up to {} s (polling every {} s)...\n", account.email,
                    device.expires_in.count(), device.interval.count()));

    auto interval = device.interval;
    auto limit = device.expires_in + 2 * interval;  // a little grace so the endpoint's expired_token is seen
    if (timeout) limit = std::min(limit, *timeout);
    const auto deadline = SteadyClock::now() + limit;
    while (true) {
        if (SteadyClock::now() + interval > deadline) {
            complain(fmt::format("authorize: account {}: the device code expired before the sign-in was finished; "
                                 "run authorize --device again\n", account.name));
            return kRuntimeError;
        }
        std::this_thread::sleep_for(interval);
        try {
            auto set = auth::request_token(http, account, auth::device_token_form(account, device.device_code),
                                           auth::Clock::now());
            return store(config, account, set, config_flag);
        } catch (const auth::TokenError& e) {
            // RFC 8628 section 3.5: keep polling on authorization_pending, slow down by 5 s on slow_down.
            const std::string& error = e.oauth_error();
            if (error == "authorization_pending") continue;
            if (error == "slow_down") {
                interval += std::chrono::seconds(5);
                say(fmt::format("authorize: the provider asked to poll more slowly; now every {} s\n", interval.count()));
                continue;
            }
            if (error == "expired_token") {
                complain(fmt::format("authorize: account {}: the device code expired before the sign-in was "
                                     "finished; run authorize --device again\n", account.name));
                return kRuntimeError;
            }
            if (error == "authorization_declined" || error == "access_denied") {
                complain(fmt::format("authorize: account {}: the sign-in was declined at the provider; run authorize "
                                     "--device again and accept the requested permissions\n", account.name));
                return kRuntimeError;
            }
            if (error == "bad_verification_code") {
                complain(fmt::format("authorize: account {}: the provider does not know this device code; run "
                                     "authorize --device again\n", account.name));
                return kRuntimeError;
            }
            if (e.kind() == auth::TokenFailure::temporary) {
                say(fmt::format("authorize: token endpoint unavailable ({}); still polling\n", e.what()));
                continue;
            }
            return report_token_error(account, e, "the token endpoint refused the device code");
        }
    }
}

}  // namespace

// Creates state_dir/tokens/ if needed and a probe file in it, removed at once. Empty when writable.
static std::string can_store_tokens(const std::filesystem::path& state_dir) {
    std::error_code ec;
    const std::filesystem::path dir = state_dir / "tokens";
    // Made 0700 as the token store makes it: under sudo root's umask (022) would leave it 0755, and the
    // relay's first start would greet the admin with a permissions_fixed warning.
    if (std::filesystem::create_directories(dir, ec))
        std::filesystem::permissions(dir, std::filesystem::perms::owner_all, ec);
    if (ec) return fmt::format("{}: {}", dir.string(), ec.message());
    const std::filesystem::path probe = dir / fmt::format(".authorize-probe-{}", ::getpid());
    int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fmt::format("{}: {}", dir.string(), std::strerror(errno));
    ::close(fd);
    ::unlink(probe.c_str());
    return {};
}

int run_authorize(const std::vector<std::string>& args) {
    auto options = parse_options("authorize", args,
                                 {{"--account", true}, {"--device", false}, {"--paste", false}, {"--timeout", true}},
                                 kAuthorizeHelp);
    if (!options) return kUsageError;
    if (options->help) return kOk;
    auto usage = [](const std::string& problem) {
        std::fprintf(stderr, "smtp-oauth2-relay authorize: %s\n\n%s", problem.c_str(), kAuthorizeHelp);
        return kUsageError;
    };
    if (!options->has("--account")) return usage("--account NAME is required");
    if (options->has("--device") && options->has("--paste")) return usage("--device and --paste exclude each other");
    std::optional<std::chrono::seconds> timeout;
    if (options->has("--timeout")) {
        auto parsed = conf::parse_duration(options->get("--timeout"));
        if (!parsed || parsed->count() == 0) return usage("--timeout expects seconds, e.g. 300 or 5m");
        timeout = *parsed;
    }
    auto config = load_config_or_report(*options);
    if (!config) return kUsageError;
    // Under sudo: the token file must belong to the relay's user, or the relay cannot read it.
    if (auto problem = act_as_owner_of(config->relay.state_dir, "authorize"); !problem.empty()) {
        std::fprintf(stderr, "smtp-oauth2-relay %s\n", problem.c_str());
        return kRuntimeError;
    }
    const std::string name = options->get("--account");
    const conf::Account* account = config->find_account(name);
    if (!account) {
        std::string known;
        for (const auto& [n, a] : config->accounts) known += (known.empty() ? "" : ", ") + n;
        return usage(fmt::format("no account '{}' in {} (accounts: {})", name, config->source.string(), known));
    }
    const std::string config_flag = options->has("--config") ? " --config " + options->get("--config") : "";
    // Before any URL or code: a sign-in whose token cannot be stored afterwards wastes the person's
    // time and leaves a browser saying "done" for nothing.
    if (auto problem = can_store_tokens(config->relay.state_dir); !problem.empty()) {
        complain(fmt::format("authorize: account {}: cannot store tokens: {}; nothing was signed in\n", name, problem));
        return kRuntimeError;
    }
    try {
        if (options->has("--device")) return device_flow(*config, *account, timeout, config_flag);
        return code_flow(*config, *account, options->has("--paste"), timeout.value_or(std::chrono::seconds(300)),
                         config_flag);
    } catch (const std::exception& e) {
        complain(fmt::format("authorize: account {}: {}\n", name, e.what()));
        return kRuntimeError;
    }
}

}  // namespace relay::cli
