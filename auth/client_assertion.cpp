// JWT client assertions signed with OpenSSL's EVP interface (RFC 7515 compact serialization,
// RFC 7518 section 3.3 RS256 = RSASSA-PKCS1-v1_5 with SHA-256). The thumbprints are hashes of the
// certificate's DER encoding (RFC 7515 sections 4.1.7 and 4.1.8), base64url without padding.
#include "auth/client_assertion.hpp"

#include <memory>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "relay/core/base64.hpp"

namespace relay::auth {

using core::base64_decode;
using core::base64_encode;
using core::base64url_encode;
namespace {

namespace json = boost::json;

struct Free {
    void operator()(BIO* p) const { BIO_free(p); }
    void operator()(X509* p) const { X509_free(p); }
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
template <class T>
using Owned = std::unique_ptr<T, Free>;

Owned<BIO> open_file(const std::filesystem::path& file) {
    Owned<BIO> bio(BIO_new_file(file.c_str(), "r"));
    if (!bio) throw ClientCertificateError(fmt::format("cannot read {}", file.string()));
    return bio;
}

// Never prompts on the terminal for a passphrase: an encrypted key is an error in a daemon.
int no_passphrase(char*, int, int, void*) { return 0; }

std::string digest(const EVP_MD* md, const std::string& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), out, &length, md, nullptr) != 1)
        throw ClientCertificateError("cannot hash the certificate");
    return std::string(reinterpret_cast<char*>(out), length);
}

std::string random_jti() {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) throw ClientCertificateError("no random bytes for the assertion id");
    bytes[6] = (bytes[6] & 0x0F) | 0x40;  // shaped as a version 4 UUID, as Microsoft's own libraries do
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    std::string hex;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) hex += '-';
        hex += fmt::format("{:02x}", bytes[i]);
    }
    return hex;
}

}  // namespace

std::string make_client_assertion(const std::filesystem::path& certificate_file,
                                  const std::filesystem::path& key_file, std::string_view client_id,
                                  std::string_view token_url, std::chrono::system_clock::time_point now) {
    Owned<X509> certificate(PEM_read_bio_X509(open_file(certificate_file).get(), nullptr, no_passphrase, nullptr));
    if (!certificate) throw ClientCertificateError(fmt::format("{} holds no PEM certificate", certificate_file.string()));
    Owned<EVP_PKEY> key(PEM_read_bio_PrivateKey(open_file(key_file).get(), nullptr, no_passphrase, nullptr));
    if (!key)
        throw ClientCertificateError(fmt::format("{} holds no unencrypted PEM private key", key_file.string()));
    if (EVP_PKEY_base_id(key.get()) != EVP_PKEY_RSA)
        throw ClientCertificateError(fmt::format("{}: an RSA key is needed (RS256)", key_file.string()));
    if (X509_check_private_key(certificate.get(), key.get()) != 1)
        throw ClientCertificateError(fmt::format("{} is not the private key of the certificate in {}",
                                                 key_file.string(), certificate_file.string()));

    unsigned char* der = nullptr;
    const int der_length = i2d_X509(certificate.get(), &der);
    if (der_length <= 0) throw ClientCertificateError(fmt::format("{}: cannot encode the certificate", certificate_file.string()));
    const std::string der_bytes(reinterpret_cast<char*>(der), static_cast<std::size_t>(der_length));
    OPENSSL_free(der);

    json::object header{{"alg", "RS256"}, {"typ", "JWT"},
                        {"x5t#S256", base64url_encode(digest(EVP_sha256(), der_bytes))},
                        {"x5t", base64url_encode(digest(EVP_sha1(), der_bytes))}};
    const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    const auto expires = seconds + std::chrono::duration_cast<std::chrono::seconds>(kAssertionLifetime).count();
    json::object claims{{"aud", token_url}, {"iss", client_id}, {"sub", client_id}, {"jti", random_jti()},
                        {"nbf", seconds}, {"iat", seconds}, {"exp", expires}};
    const std::string signing_input =
        base64url_encode(json::serialize(header)) + "." + base64url_encode(json::serialize(claims));

    Owned<EVP_MD_CTX> context(EVP_MD_CTX_new());
    std::size_t signature_length = 0;
    const auto* input = reinterpret_cast<const unsigned char*>(signing_input.data());
    if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
        EVP_DigestSign(context.get(), nullptr, &signature_length, input, signing_input.size()) != 1)
        throw ClientCertificateError(fmt::format("{}: cannot sign with this key", key_file.string()));
    std::string signature(signature_length, '\0');
    if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &signature_length, input,
                       signing_input.size()) != 1)
        throw ClientCertificateError(fmt::format("{}: cannot sign with this key", key_file.string()));
    signature.resize(signature_length);
    return signing_input + "." + base64url_encode(signature);
}

}  // namespace relay::auth
