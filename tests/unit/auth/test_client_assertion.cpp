// JWT client assertions (RFC 7523): made from a freshly generated RSA key and self-signed
// certificate, the result is verified here with OpenSSL as a server would (signature over
// header.payload, x5t#S256 = SHA-256 of the DER certificate, claims); unusable inputs fail with the
// file named and no key material in the message.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <unistd.h>

#include <boost/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "relay/core/base64.hpp"
#include "auth/client_assertion.hpp"
#include "auth/token_endpoint.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace relay::auth;
using namespace relay::core;

std::string from_base64url(std::string text) {
    for (char& c : text) c = c == '-' ? '+' : c == '_' ? '/' : c;
    while (text.size() % 4) text += '=';
    return base64_decode(text).value_or("(undecodable)");
}

struct KeyPair {
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    explicit KeyPair(EVP_PKEY* k) : key(k), cert(X509_new()) {
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
        X509_set_pubkey(cert, key);
        X509_NAME* name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("app"), -1, -1, 0);
        X509_set_issuer_name(cert, name);
        X509_sign(cert, key, EVP_sha256());
    }
    ~KeyPair() {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    void write(const fs::path& cert_file, const fs::path& key_file) const {
        FILE* c = std::fopen(cert_file.c_str(), "w");
        PEM_write_X509(c, cert);
        std::fclose(c);
        FILE* k = std::fopen(key_file.c_str(), "w");
        PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr);
        std::fclose(k);
    }
};

struct Files {
    fs::path dir = fs::temp_directory_path() / ("assertion-" + std::to_string(::getpid()) + "-" +
                                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
    Files() { fs::create_directories(dir); }
    ~Files() { fs::remove_all(dir); }
};

TEST(ClientAssertion, IsAVerifiableRs256JwtWithTheRightClaims) {
    Files f;
    KeyPair pair(EVP_RSA_gen(2048));
    pair.write(f.dir / "app.crt", f.dir / "app.key");
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
    const std::string jwt = make_client_assertion(f.dir / "app.crt", f.dir / "app.key", "client-1",
                                                  "https://login.example/t/oauth2/v2.0/token", now);
    const auto dot1 = jwt.find('.'), dot2 = jwt.rfind('.');
    ASSERT_NE(dot1, dot2);
    const json::object header = json::parse(from_base64url(jwt.substr(0, dot1))).as_object();
    const json::object claims = json::parse(from_base64url(jwt.substr(dot1 + 1, dot2 - dot1 - 1))).as_object();
    EXPECT_EQ(header.at("alg").as_string(), "RS256");
    EXPECT_EQ(header.at("typ").as_string(), "JWT");
    unsigned char* der = nullptr;
    const int der_length = i2d_X509(pair.cert, &der);
    unsigned char sha256[32];
    EVP_Digest(der, der_length, sha256, nullptr, EVP_sha256(), nullptr);
    OPENSSL_free(der);
    EXPECT_EQ(header.at("x5t#S256").as_string(), base64url_encode(std::string(reinterpret_cast<char*>(sha256), 32)));
    EXPECT_EQ(claims.at("aud").as_string(), "https://login.example/t/oauth2/v2.0/token");
    EXPECT_EQ(claims.at("iss").as_string(), "client-1");
    EXPECT_EQ(claims.at("sub").as_string(), "client-1");
    EXPECT_EQ(claims.at("nbf").as_int64(), 1'800'000'000);
    EXPECT_EQ(claims.at("iat").as_int64(), 1'800'000'000);
    EXPECT_EQ(claims.at("exp").as_int64(), 1'800'000'600);
    EXPECT_EQ(claims.at("jti").as_string().size(), 36u);

    const std::string signature = from_base64url(jwt.substr(dot2 + 1));
    const std::string input = jwt.substr(0, dot2);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    ASSERT_EQ(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, X509_get0_pubkey(pair.cert)), 1);
    EXPECT_EQ(EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                               reinterpret_cast<const unsigned char*>(input.data()), input.size()), 1);

    // Each assertion is single-use: a new jti every time.
    const std::string again = make_client_assertion(f.dir / "app.crt", f.dir / "app.key", "client-1", "aud", now);
    EXPECT_NE(json::parse(from_base64url(again.substr(again.find('.') + 1, again.rfind('.') - again.find('.') - 1)))
                  .as_object().at("jti"), claims.at("jti"));
}

TEST(ClientAssertion, UnusableFilesAreReportedByNameOnly) {
    Files f;
    KeyPair pair(EVP_RSA_gen(2048)), other(EVP_RSA_gen(2048));
    pair.write(f.dir / "app.crt", f.dir / "app.key");
    other.write(f.dir / "other.crt", f.dir / "other.key");
    KeyPair ec(EVP_EC_gen("P-256"));
    ec.write(f.dir / "ec.crt", f.dir / "ec.key");
    const auto now = std::chrono::system_clock::now();
    auto message = [&](const fs::path& cert, const fs::path& key) -> std::string {
        try {
            make_client_assertion(cert, key, "c", "aud", now);
        } catch (const ClientCertificateError& e) {
            return e.what();
        }
        return "(no error)";
    };
    EXPECT_EQ(message(f.dir / "app.crt", f.dir / "other.key"),
              (f.dir / "other.key").string() + " is not the private key of the certificate in " + (f.dir / "app.crt").string());
    EXPECT_EQ(message(f.dir / "missing.crt", f.dir / "app.key"), "cannot read " + (f.dir / "missing.crt").string());
    EXPECT_EQ(message(f.dir / "app.key", f.dir / "app.key"), (f.dir / "app.key").string() + " holds no PEM certificate");
    EXPECT_EQ(message(f.dir / "ec.crt", f.dir / "ec.key"), (f.dir / "ec.key").string() + ": an RSA key is needed (RS256)");

    // Through the grant form, a broken certificate is a permanent client problem, not a crash.
    relay::conf::Account account;
    account.client_id = "c";
    account.client_certificate_file = f.dir / "app.crt";
    account.client_key_file = f.dir / "other.key";
    try {
        client_credentials_form(account, now);
        ADD_FAILURE() << "expected TokenError";
    } catch (const TokenError& e) {
        EXPECT_EQ(e.kind(), TokenFailure::invalid_client);
        EXPECT_EQ(e.oauth_error(), "client_certificate_unusable");
    }
    account.client_key_file = f.dir / "app.key";
    const FormFields form = client_credentials_form(account, now);
    EXPECT_EQ(form.at(0), (std::pair<std::string, std::string>{"grant_type", "client_credentials"}));
    EXPECT_EQ(form.at(3).first, "client_assertion_type");
    EXPECT_EQ(form.at(3).second, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    EXPECT_EQ(form.at(4).first, "client_assertion");
    for (const auto& [k, v] : form) EXPECT_NE(k, "client_secret");
}

}  // namespace
