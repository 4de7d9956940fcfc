// The pure parts of `authorize` and of local password hashes: PKCE (RFC 7636 appendix B vector),
// the authorize URL, the redirected URL's query, the grant forms, device code responses, the
// loopback redirect_uri grammar, and PBKDF2 hashes (RFC 7914 section 11 vector, format, cache).
#include <gtest/gtest.h>

#include <map>

#include "auth/oauth_flows.hpp"
#include "auth/password_hash.hpp"
#include "auth/token_endpoint.hpp"
#include "conf/redirect_uri.hpp"

using namespace relay::auth;
using relay::conf::parse_loopback_redirect;

namespace {

relay::conf::Account account(std::string secret = "") {
    relay::conf::Account a;
    a.name = "office";
    a.client_id = "cid-1";
    a.client_secret = relay::conf::Secret(std::move(secret));
    a.scope = "https://outlook.office.com/SMTP.Send offline_access";
    a.authorize_url = "https://login.microsoftonline.com/contoso/oauth2/v2.0/authorize";
    return a;
}

std::map<std::string, std::string> as_map(const FormFields& form) {
    return std::map<std::string, std::string>(form.begin(), form.end());
}

std::map<std::string, std::string> query_map(const std::string& url) {
    std::map<std::string, std::string> out;
    std::string query = url.substr(url.find('?') + 1);
    std::size_t at = 0;
    while (at <= query.size()) {
        auto amp = query.find('&', at);
        std::string pair = query.substr(at, amp == std::string::npos ? std::string::npos : amp - at);
        auto eq = pair.find('=');
        out[form_decode(pair.substr(0, eq))] = form_decode(pair.substr(eq + 1));
        if (amp == std::string::npos) break;
        at = amp + 1;
    }
    return out;
}

}  // namespace

TEST(Pkce, Rfc7636AppendixBVector) {
    EXPECT_EQ(pkce_s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
              "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

TEST(Pkce, FreshVerifiersAreLongUnreservedAndDistinct) {
    Pkce a = make_pkce(), b = make_pkce();
    EXPECT_EQ(a.verifier.size(), 43u);  // RFC 7636 4.1: 43..128 characters
    EXPECT_EQ(a.verifier.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"),
              std::string::npos);
    EXPECT_NE(a.verifier, b.verifier);
    EXPECT_EQ(a.challenge, pkce_s256_challenge(a.verifier));
    EXPECT_NE(random_state(), random_state());
}

TEST(AuthorizeUrl, CarriesEveryParameterEncoded) {
    std::string url = build_authorize_url(account(), "http://localhost:8400/", "st&te", "chal");
    EXPECT_TRUE(url.starts_with("https://login.microsoftonline.com/contoso/oauth2/v2.0/authorize?")) << url;
    auto q = query_map(url);
    EXPECT_EQ(q["client_id"], "cid-1");
    EXPECT_EQ(q["response_type"], "code");
    EXPECT_EQ(q["redirect_uri"], "http://localhost:8400/");
    EXPECT_EQ(q["scope"], "https://outlook.office.com/SMTP.Send offline_access");
    EXPECT_EQ(q["state"], "st&te");
    EXPECT_EQ(q["code_challenge"], "chal");
    EXPECT_EQ(q["code_challenge_method"], "S256");
    EXPECT_EQ(q.count("access_type"), 0u);
    EXPECT_EQ(url.find(' '), std::string::npos);
}

TEST(AuthorizeUrl, GoogleAsksForOfflineAccessAndAnExistingQueryIsExtended) {
    auto a = account();
    a.provider = relay::conf::Provider::google;
    a.authorize_url = "https://accounts.google.com/o/oauth2/auth?hd=example.com";
    std::string url = build_authorize_url(a, "http://127.0.0.1:5000", "s", "c");
    EXPECT_NE(url.find("auth?hd=example.com&client_id="), std::string::npos) << url;
    auto q = query_map(url);
    EXPECT_EQ(q["access_type"], "offline");
    EXPECT_EQ(q["prompt"], "consent");
}

TEST(Redirect, ParsesCodeAndStateFromUrlOrTarget) {
    auto p = parse_redirect("http://localhost:8400/?code=0.AAA%2Fb%2Bc&state=xyz&session_state=q");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->code, "0.AAA/b+c");
    EXPECT_EQ(p->state, "xyz");
    EXPECT_TRUE(p->error.empty());
    auto t = parse_redirect("/?state=s1&code=c1#frag");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->code, "c1");
    EXPECT_EQ(redirect_path("/?state=s1"), "/");
    EXPECT_EQ(redirect_path("/favicon.ico"), "/favicon.ico");
    EXPECT_EQ(redirect_path("http://localhost:8400?code=1"), "/");
    EXPECT_EQ(redirect_path("http://localhost/cb?code=1"), "/cb");
}

TEST(Redirect, ErrorsAndEmptyQueries) {
    auto e = parse_redirect("/?error=access_denied&error_description=The+user+said+no%21&state=s");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->error, "access_denied");
    EXPECT_EQ(e->error_description, "The user said no!");
    EXPECT_FALSE(parse_redirect("/"));
    EXPECT_FALSE(parse_redirect("/favicon.ico"));
    EXPECT_FALSE(parse_redirect("/?foo=bar"));
    EXPECT_EQ(form_decode("a%2"), "a%2");  // a broken escape stays as it was
}

TEST(Forms, AuthorizationCodeAndDeviceGrants) {
    auto code = as_map(authorization_code_form(account("s3cret"), "the-code", "the-verifier", "http://localhost:1/"));
    EXPECT_EQ(code["grant_type"], "authorization_code");
    EXPECT_EQ(code["code"], "the-code");
    EXPECT_EQ(code["code_verifier"], "the-verifier");
    EXPECT_EQ(code["redirect_uri"], "http://localhost:1/");
    EXPECT_EQ(code["client_secret"], "s3cret");
    EXPECT_EQ(as_map(authorization_code_form(account(), "c", "v", "r")).count("client_secret"), 0u);

    auto request = as_map(device_code_request_form(account()));
    EXPECT_EQ(request["client_id"], "cid-1");
    EXPECT_EQ(request["scope"], "https://outlook.office.com/SMTP.Send offline_access");
    auto poll = as_map(device_token_form(account(), "dc"));
    EXPECT_EQ(poll["grant_type"], "urn:ietf:params:oauth:grant-type:device_code");
    EXPECT_EQ(poll["device_code"], "dc");
}

TEST(DeviceCode, ParsesMicrosoftAndGoogleShapes) {
    auto ms = parse_device_authorization(200, R"({"user_code":"ABCD-EFGH","device_code":"DC","verification_uri":
        "https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"To sign in..."})");
    EXPECT_EQ(ms.user_code, "ABCD-EFGH");
    EXPECT_EQ(ms.device_code, "DC");
    EXPECT_EQ(ms.verification_uri, "https://microsoft.com/devicelogin");
    EXPECT_EQ(ms.expires_in, std::chrono::seconds(900));
    EXPECT_EQ(ms.message, "To sign in...");
    auto g = parse_device_authorization(200, R"({"user_code":"X","device_code":"D","verification_url":"https://www.google.com/device","expires_in":"1800"})");
    EXPECT_EQ(g.verification_uri, "https://www.google.com/device");
    EXPECT_EQ(g.expires_in, std::chrono::seconds(1800));
    EXPECT_EQ(g.interval, std::chrono::seconds(5));  // RFC 8628 3.2 default
}

TEST(DeviceCode, ErrorsBecomeTokenErrors) {
    try {
        parse_device_authorization(400, R"({"error":"invalid_client","error_description":"AADSTS7000218: public client flows"})");
        FAIL();
    } catch (const TokenError& e) {
        EXPECT_EQ(e.oauth_error(), "invalid_client");
    }
    EXPECT_THROW(parse_device_authorization(200, R"({"user_code":"X"})"), TokenError);
    EXPECT_THROW(parse_device_authorization(200, "<html>"), TokenError);
}

TEST(RedirectUri, LoopbackOnlyWithOptionalPortAndPath) {
    auto plain = parse_loopback_redirect("http://localhost");
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->host, "localhost");
    EXPECT_EQ(plain->port, 0);
    EXPECT_EQ(plain->path, "");
    EXPECT_EQ(plain->with_port(8400), "http://localhost:8400");
    auto full = parse_loopback_redirect("http://127.0.0.1:8400/cb");
    ASSERT_TRUE(full);
    EXPECT_EQ(full->port, 8400);
    EXPECT_EQ(full->path, "/cb");
    auto v6 = parse_loopback_redirect("http://[::1]:9/");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->with_port(10), "http://[::1]:10/");
    for (const char* bad : {"https://localhost", "http://example.com", "http://10.0.0.1/", "http://localhost:0",
                            "http://localhost:70000", "http://localhost/?x=1", "http://u@localhost",
                            "http://localhost:", "localhost", "http://[::2]/"})
        EXPECT_FALSE(parse_loopback_redirect(bad)) << bad;
}

TEST(PasswordHash, Pbkdf2MatchesRfc7914Vector) {
    // RFC 7914 section 11: PBKDF2-HMAC-SHA256("passwd", "salt", c=1), first 32 bytes.
    PasswordHash h = hash_password_with_salt("passwd", "salt", 1);
    std::string hex;
    for (unsigned char c : h.hash) hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
    EXPECT_EQ(hex, "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc");
}

TEST(PasswordHash, FormatRoundTripsAndVerifies) {
    // Same as Python's hashlib.pbkdf2_hmac("sha256", b"printer-pass", b"0123456789abcdef", 200000).
    const std::string known = "$pbkdf2-sha256$200000$MDEyMzQ1Njc4OWFiY2RlZg==$9IKm/D2oGqCORwjotINSW1RpNjYCYef9ATg/oiwSEj4=";
    auto parsed = parse_password_hash(known);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->iterations, 200000u);
    EXPECT_EQ(parsed->to_string(), known);
    EXPECT_TRUE(verify_password(*parsed, "printer-pass"));
    EXPECT_FALSE(verify_password(*parsed, "printer-pasS"));

    PasswordHash fresh = hash_password("x", kPbkdf2MinIterations);
    EXPECT_EQ(fresh.salt.size(), 16u);
    EXPECT_TRUE(parse_password_hash(fresh.to_string()));
    EXPECT_NE(hash_password("x", kPbkdf2MinIterations).salt, fresh.salt);
}

TEST(PasswordHash, MalformedOrWeakHashesAreRefusedWithAReason) {
    std::string why;
    for (const char* bad : {"", "plain", "$pbkdf2-sha256$200000$MDEy", "$pbkdf2-sha256$abc$MDEyMzQ1Njc4OWFi$AAAA",
                            "$pbkdf2-sha256$1000$MDEyMzQ1Njc4OWFiY2RlZg==$9IKm/D2oGqCORwjotINSW1RpNjYCYef9ATg/oiwSEj4=",
                            "$pbkdf2-sha256$200000$MDEyMzQ1Njc4OWFiY2RlZg==$AAAA",
                            "$pbkdf2-sha256$200000$!!$9IKm/D2oGqCORwjotINSW1RpNjYCYef9ATg/oiwSEj4="}) {
        why.clear();
        EXPECT_FALSE(parse_password_hash(bad, &why)) << bad;
        EXPECT_FALSE(why.empty()) << bad;
    }
}

TEST(PasswordHash, CachedVerificationFollowsPasswordAndStoredHash) {
    const std::string stored = hash_password("right", kPbkdf2MinIterations).to_string();
    EXPECT_FALSE(verify_password_cached("u", stored, "wrong"));
    EXPECT_TRUE(verify_password_cached("u", stored, "right"));
    EXPECT_TRUE(verify_password_cached("u", stored, "right"));   // from the cache
    EXPECT_FALSE(verify_password_cached("u", stored, "wrong"));  // a cached success does not admit others
    const std::string changed = hash_password("new", kPbkdf2MinIterations).to_string();
    EXPECT_FALSE(verify_password_cached("u", changed, "right")); // hash changed by a reload
    EXPECT_TRUE(verify_password_cached("u", changed, "new"));
    EXPECT_FALSE(verify_password_cached("v", stored, "new"));
    EXPECT_FALSE(verify_password_cached("v", stored, "new"));    // a remembered failure
    EXPECT_TRUE(verify_password_cached("v", stored, "right"));   // does not block the right password
}

TEST(PasswordHash, CachedAnswersCostNoKdfRun) {
    // A KDF run (600,000 iterations) takes far longer than a digest lookup; repeated answers must be cheap.
    const std::string stored = hash_password("slow", 600000).to_string();
    auto timed = [&](const char* password) {
        auto start = std::chrono::steady_clock::now();
        bool ok = verify_password_cached("slow-user", stored, password);
        return std::pair{ok, std::chrono::steady_clock::now() - start};
    };
    auto [first_ok, first] = timed("slow");
    auto [again_ok, again] = timed("slow");
    auto [wrong_ok, wrong] = timed("bad");
    auto [wrong_again_ok, wrong_again] = timed("bad");
    EXPECT_TRUE(first_ok && again_ok);
    EXPECT_FALSE(wrong_ok || wrong_again_ok);
    EXPECT_LT(again * 20, first);
    EXPECT_LT(wrong_again * 20, wrong);
}
