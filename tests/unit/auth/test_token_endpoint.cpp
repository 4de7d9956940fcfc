// Token endpoint: the refresh grant form and the classification of real-world responses
// (Microsoft identity platform v2.0 bodies, Google's, and broken ones).
#include <gtest/gtest.h>

#include "auth/http_client.hpp"
#include "auth/token_endpoint.hpp"

using namespace relay::auth;
using namespace std::chrono_literals;

namespace {

const Clock::time_point kNow = Clock::time_point(1'700'000'000s);

relay::conf::Account account(std::string secret = "") {
    relay::conf::Account a;
    a.name = "office";
    a.client_id = "11111111-2222-3333-4444-555555555555";
    a.client_secret = relay::conf::Secret(std::move(secret));
    a.scope = "https://outlook.office.com/SMTP.Send offline_access";
    a.token_url = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token";
    return a;
}

std::string ms_error(const std::string& error, const std::string& aadsts, const std::string& text) {
    return R"({"error":")" + error + R"(","error_description":")" + aadsts + ": " + text +
           R"(\r\nTrace ID: 0b5c2d1e-aaaa\r\nCorrelation ID: 77c1\r\nTimestamp: 2024-05-01 10:00:00Z","error_codes":[)" +
           aadsts.substr(6) + R"(],"timestamp":"2024-05-01 10:00:00Z","trace_id":"0b5c","correlation_id":"77c1"})";
}

TokenError parse_error(long status, const std::string& body) {
    try {
        parse_token_response(status, body, kNow);
    } catch (const TokenError& e) {
        return e;
    }
    ADD_FAILURE() << "no TokenError for " << body;
    return TokenError(TokenFailure::other, "", "", 0);
}

}  // namespace

TEST(TokenEndpoint, RefreshFormWithoutSecretForPublicClients) {
    FormFields form = refresh_grant_form(account(), "0.AAA-rt");
    FormFields expected{{"grant_type", "refresh_token"},
                        {"client_id", "11111111-2222-3333-4444-555555555555"},
                        {"refresh_token", "0.AAA-rt"},
                        {"scope", "https://outlook.office.com/SMTP.Send offline_access"}};
    EXPECT_EQ(form, expected);
    FormFields with_secret = refresh_grant_form(account("s3cr3t~x"), "rt");
    ASSERT_EQ(with_secret.size(), 5u);
    EXPECT_EQ(with_secret.back(), (std::pair<std::string, std::string>{"client_secret", "s3cr3t~x"}));
}

TEST(TokenEndpoint, FormEncodingEscapesEverythingReserved) {
    EXPECT_EQ(url_encode("a b+c/d=e&f~g.h-i_j%"), "a%20b%2Bc%2Fd%3De%26f~g.h-i_j%25");
    EXPECT_EQ(url_encode_form({{"scope", "https://x/y z"}, {"k", ""}}), "scope=https%3A%2F%2Fx%2Fy%20z&k=");
}

TEST(TokenEndpoint, SuccessWithNumberOrStringExpiresIn) {
    TokenSet t = parse_token_response(
        200,
        R"({"token_type":"Bearer","scope":"https://outlook.office.com/SMTP.Send","expires_in":4523,)"
        R"("ext_expires_in":4523,"access_token":"eyJ0eXAi.AT","refresh_token":"0.AUcA.RT2"})",
        kNow);
    EXPECT_EQ(t.access_token, "eyJ0eXAi.AT");
    EXPECT_EQ(t.refresh_token, "0.AUcA.RT2");
    EXPECT_EQ(t.obtained_at, kNow);
    EXPECT_EQ(t.expires_at, kNow + 4523s);

    TokenSet g = parse_token_response(200, R"({"access_token":"ya29.x","expires_in":"3599","token_type":"Bearer"})", kNow);
    EXPECT_EQ(g.expires_at, kNow + 3599s);
    EXPECT_TRUE(g.refresh_token.empty());
}

TEST(TokenEndpoint, MalformedSuccessIsOther) {
    for (const char* body : {"", "<html>ok</html>", "[]", R"({"expires_in":3600})",
                             R"({"access_token":"","expires_in":60})", R"({"access_token":7,"expires_in":60})"}) {
        TokenError e = parse_error(200, body);
        EXPECT_EQ(e.kind(), TokenFailure::other) << body;
    }
}

// Issue 13, item 3: expires_in >= ~7.4e9 overflowed the clock (undefined behaviour) and made every
// upstream session stale at once: 2,635 logins in 10 s. Every value now gives a lifetime in
// (0, 24 h]: huge ones are clamped to a day, nonsense gives the short default.
TEST(TokenEndpoint, ExpiresInIsClampedAndValidated) {
    struct Case {
        std::string expires_in;   // JSON text of the value; empty: the key is missing
        std::chrono::seconds lifetime;
    };
    const Case cases[] = {
        {"3599", 3599s},
        {"\"3599\"", 3599s},
        {"86400", 86400s},
        {"86401", kMaxExpiresIn},
        {"7400000000", kMaxExpiresIn},
        {"1e10", kMaxExpiresIn},
        {"1.7976931348623157e308", kMaxExpiresIn},
        {"\"99999999999\"", kMaxExpiresIn},
        {"\"99999999999999999999\"", kMaxExpiresIn},
        {"9223372036854775807", kMaxExpiresIn},
        {"18446744073709551615", kMaxExpiresIn},
        {"-9223372036854775808", kDefaultExpiresIn},
        {"-1", kDefaultExpiresIn},
        {"-1e300", kDefaultExpiresIn},
        {"0", kDefaultExpiresIn},
        {"0.5", kDefaultExpiresIn},
        {"\"soon\"", kDefaultExpiresIn},
        {"\"-5\"", kDefaultExpiresIn},
        {"null", kDefaultExpiresIn},
        {"[3600]", kDefaultExpiresIn},
        {"", kDefaultExpiresIn},
    };
    EXPECT_EQ(kMaxExpiresIn, 24h);
    EXPECT_GT(kDefaultExpiresIn, 0s);
    EXPECT_LE(kDefaultExpiresIn, 600s);
    for (const Case& c : cases) {
        const std::string body = c.expires_in.empty()
                                     ? std::string(R"({"access_token":"a"})")
                                     : R"({"access_token":"a","expires_in":)" + c.expires_in + "}";
        TokenSet t = parse_token_response(200, body, kNow);
        EXPECT_EQ(t.expires_at - t.obtained_at, c.lifetime) << body;
    }
}

TEST(TokenEndpoint, ErrorClassificationTable) {
    struct Case {
        long status;
        std::string body;
        TokenFailure kind;
        std::string oauth_error;
    };
    const Case cases[] = {
        {400, ms_error("invalid_grant", "AADSTS70008", "The provided authorization code or refresh token has expired due to inactivity."),
         TokenFailure::invalid_grant, "invalid_grant"},
        {400, ms_error("invalid_grant", "AADSTS50173", "The provided grant has expired due to it being revoked."),
         TokenFailure::invalid_grant, "invalid_grant"},
        {400, ms_error("invalid_grant", "AADSTS65001", "The user or administrator has not consented to use the application."),
         TokenFailure::consent_required, "invalid_grant"},
        {400, R"({"error":"consent_required","error_description":"need consent"})", TokenFailure::consent_required, "consent_required"},
        {401, ms_error("invalid_client", "AADSTS7000215", "Invalid client secret provided."),
         TokenFailure::invalid_client, "invalid_client"},
        {400, ms_error("unauthorized_client", "AADSTS700016", "Application not found in the directory."),
         TokenFailure::invalid_client, "unauthorized_client"},
        {503, ms_error("temporarily_unavailable", "AADSTS50196", "The server is temporarily unavailable."),
         TokenFailure::temporary, "temporarily_unavailable"},
        {400, R"({"error":"temporarily_unavailable"})", TokenFailure::temporary, "temporarily_unavailable"},
        {500, R"({"error":"server_error","error_description":"boom"})", TokenFailure::temporary, "server_error"},
        {502, "<html><body>Bad Gateway</body></html>", TokenFailure::temporary, "http_error"},
        {429, "Too Many Requests", TokenFailure::temporary, "http_error"},
        {400, ms_error("invalid_request", "AADSTS900144", "The request body must contain the following parameter: 'grant_type'."),
         TokenFailure::other, "invalid_request"},
        {400, ms_error("invalid_scope", "AADSTS70011", "The provided value for the input parameter 'scope' is not valid."),
         TokenFailure::other, "invalid_scope"},
        {404, "Not Found", TokenFailure::other, "http_error"},
        {403, "{}", TokenFailure::other, "http_error"},
    };
    for (const Case& c : cases) {
        TokenError e = parse_error(c.status, c.body);
        EXPECT_EQ(e.kind(), c.kind) << c.body;
        EXPECT_EQ(e.oauth_error(), c.oauth_error) << c.body;
        EXPECT_EQ(e.http_status(), c.status);
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
        EXPECT_EQ(std::string(e.what()).find('\r'), std::string::npos) << e.what();
    }
}

TEST(TokenEndpoint, DescriptionKeepsOnlyTheFirstLine) {
    TokenError e = parse_error(400, ms_error("invalid_grant", "AADSTS70008", "expired."));
    EXPECT_EQ(e.description(), "AADSTS70008: expired.");
    EXPECT_EQ(std::string(e.what()), "token request failed: invalid_grant (HTTP 400): AADSTS70008: expired.");
}

TEST(TokenEndpoint, RetryAfterIsKeptFromTheResponse) {
    EXPECT_EQ(parse_retry_after_seconds("7"), std::chrono::seconds(7));
    EXPECT_EQ(parse_retry_after_seconds(" 30 "), std::chrono::seconds(30));
    EXPECT_EQ(parse_retry_after_seconds(""), std::nullopt);
    EXPECT_EQ(parse_retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
    EXPECT_EQ(parse_retry_after_seconds("99999999999"), std::nullopt);
}

namespace {
struct ScriptedHttp : HttpClient {
    std::string url;
    FormFields form;
    bool fail = false;
    HttpResponse post_form(const std::string& u, const FormFields& f) override {
        url = u;
        form = f;
        if (fail) throw HttpError("POST " + u + " failed: Could not resolve host");
        return {200, R"({"access_token":"AT","expires_in":3600})"};
    }
};
}  // namespace

TEST(TokenEndpoint, RequestTokenPostsToTokenUrlAndMapsTransportErrors) {
    ScriptedHttp http;
    relay::conf::Account a = account("topsecret");
    TokenSet t = request_token(http, a, refresh_grant_form(a, "RT"), kNow);
    EXPECT_EQ(http.url, a.token_url);
    EXPECT_EQ(t.access_token, "AT");
    http.fail = true;
    try {
        request_token(http, a, refresh_grant_form(a, "RT"), kNow);
        FAIL();
    } catch (const TokenError& e) {
        EXPECT_EQ(e.kind(), TokenFailure::temporary);
        EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("Could not resolve host"), std::string::npos);
    }
}
