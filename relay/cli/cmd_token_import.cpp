// `token import`: the replacement for the hand-written curl POST. Reads a refresh token on stdin,
// redeems it once (so a typo or a dead token is caught now, not at 3 a.m.) and stores the result.
#include <cstdio>
#include <iostream>
#include <iterator>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include "auth/http_client.hpp"
#include "auth/token_endpoint.hpp"
#include "auth/token_hints.hpp"
#include "auth/token_store.hpp"
#include "relay/cli/cli.hpp"

namespace relay::cli {

int run_token_import(const std::vector<std::string>& args) {
    auto options = parse_options("token import", args, {{"--account", true}}, kTokenHelp);
    if (!options) return kUsageError;
    if (options->help) return kOk;
    if (!options->has("--account")) {
        std::fprintf(stderr, "smtp-oauth2-relay token import: --account NAME is required\n\n%s", kTokenHelp);
        return kUsageError;
    }
    auto config = load_config_or_report(*options);
    if (!config) return kUsageError;
    // Under sudo: the token file must belong to the relay's user, or the relay cannot read it.
    if (auto problem = act_as_owner_of(config->relay.state_dir, "token import"); !problem.empty()) {
        std::fprintf(stderr, "smtp-oauth2-relay %s\n", problem.c_str());
        return kRuntimeError;
    }
    std::string name = options->get("--account");
    const conf::Account* account = config->find_account(name);
    if (!account) {
        std::string known;
        for (const auto& [n, a] : config->accounts) known += (known.empty() ? "" : ", ") + n;
        std::fprintf(stderr, "smtp-oauth2-relay token import: no account '%s' in %s (accounts: %s)\n",
                     name.c_str(), config->source.c_str(), known.c_str());
        return kUsageError;
    }

    if (account->upstream_auth != conf::UpstreamAuth::xoauth2 && account->upstream_auth != conf::UpstreamAuth::oauthbearer) {
        std::fprintf(stderr, "smtp-oauth2-relay token import: account '%s' has upstream_auth = \"%s\": it logs in "
                             "without a token, so there is nothing to import\n", name.c_str(),
                     std::string(conf::to_string(account->upstream_auth)).c_str());
        return kUsageError;
    }
    if (account->auth == conf::AuthMode::client_credentials) {
        std::fprintf(stderr, "smtp-oauth2-relay token import: account '%s' has auth = \"client_credentials\": it has "
                             "no refresh token to import (the relay gets app tokens itself with the client secret or "
                             "certificate)\n", name.c_str());
        return kUsageError;
    }

    std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto first = input.find_first_not_of(" \t\r\n");
    auto last = input.find_last_not_of(" \t\r\n");
    std::string refresh_token = first == std::string::npos ? "" : input.substr(first, last - first + 1);
    if (refresh_token.empty() || refresh_token.find_first_of(" \t\r\n") != std::string::npos) {
        std::fprintf(stderr, "smtp-oauth2-relay token import: expected one refresh token on stdin\n");
        return kUsageError;
    }

    try {
        auth::CurlHttpClient http;
        auto now = auth::Clock::now();
        auth::TokenSet set = auth::request_token(http, *account, auth::refresh_grant_form(*account, refresh_token), now);
        auth::StoredTokens stored;
        stored.refresh_token = set.refresh_token.empty() ? refresh_token : set.refresh_token;
        stored.access_token = set.access_token;
        stored.access_expires_at = set.expires_at;
        stored.access_obtained_at = set.obtained_at;
        stored.last_refresh = now;
        auth::TokenStore store(config->relay.state_dir);
        store.save(name, stored);
        auto minutes = std::chrono::duration_cast<std::chrono::minutes>(set.expires_at - now).count();
        std::printf("token import: account %s: refresh token accepted by %s%s\n", name.c_str(),
                    account->token_url.c_str(), set.refresh_token.empty() ? "" : " (rotated: the new one is stored)");
        std::printf("token import: access token valid for %lld minutes; stored in %s (mode 0600)\n",
                    static_cast<long long>(minutes), store.path_for(name).c_str());
        return kOk;
    } catch (const auth::TokenError& e) {
        std::fprintf(stderr, "token import: account %s: the token endpoint refused the refresh token: %s\n",
                     name.c_str(), e.what());
        std::fprintf(stderr, "token import: what to do: %s\n", auth::token_hint(e, *account).fix.c_str());
        return kRuntimeError;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "token import: account %s: %s\n", name.c_str(), e.what());
        return kRuntimeError;
    }
}

}  // namespace relay::cli
