// Local TLS context and the first-start self-signed certificate. See local_tls.hpp.
#include "relay/intake/local_tls.hpp"

#include <utility>

#include <cstdio>
#include <stdexcept>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "relay/core/durable_file.hpp"
#include "relay/core/log.hpp"

namespace relay {
namespace {

namespace fs = std::filesystem;

std::string openssl_reason() {
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (code == 0) return "unknown OpenSSL error";
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    return text;
}

template <class T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const { Free(p); }
};
using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(size));
}

int tls_version(const std::string& text) {
    if (text == "1.0") return TLS1_VERSION;
    if (text == "1.1") return TLS1_1_VERSION;
    if (text == "1.3") return TLS1_3_VERSION;
    return TLS1_2_VERSION;
}

}  // namespace

void generate_self_signed(const fs::path& cert_file, const fs::path& key_file, const std::string& hostname) {
    PKey key(EVP_EC_gen("P-256"));
    if (!key) throw std::runtime_error("generating an EC key: " + openssl_reason());
    Cert cert(X509_new());
    X509_set_version(cert.get(), 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;   // a positive INTEGER (RFC 5280 4.1.2.2)
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 10L * 365 * 86400);
    X509_set_pubkey(cert.get(), key.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(hostname.c_str()), -1, -1, 0);
    X509_set_issuer_name(cert.get(), name);
    const std::string san = "DNS:" + hostname;
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    if (X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str())) {
        X509_add_ext(cert.get(), ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
        throw std::runtime_error("signing the self-signed certificate: " + openssl_reason());

    Bio key_pem(BIO_new(BIO_s_mem())), cert_pem(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_PrivateKey(key_pem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) ||
        !PEM_write_bio_X509(cert_pem.get(), cert.get()))
        throw std::runtime_error("encoding the self-signed pair: " + openssl_reason());
    ensure_directory(key_file.parent_path(), 0700);
    // The key first: a certificate without its key would be unusable after a crash.
    write_file_durably(key_file, bio_text(key_pem.get()), 0600);
    write_file_durably(cert_file, bio_text(cert_pem.get()), 0644);
}

std::string certificate_fingerprint(const fs::path& cert_file) {
    std::FILE* f = std::fopen(cert_file.c_str(), "r");
    if (!f) throw std::runtime_error(cert_file.string() + ": cannot open");
    Cert cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
    std::fclose(f);
    if (!cert) throw std::runtime_error(cert_file.string() + ": not a PEM certificate: " + openssl_reason());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    X509_digest(cert.get(), EVP_sha256(), digest, &length);
    std::string out;
    for (unsigned i = 0; i < length; ++i) out += fmt::format("{}{:02X}", i ? ":" : "", digest[i]);
    return out;
}

std::shared_ptr<boost::asio::ssl::context> make_local_tls_context(const conf::RelaySettings& settings) {
    fs::path cert_file = settings.tls_cert, key_file = settings.tls_key;
    if (cert_file.empty()) {
        cert_file = settings.state_dir / "tls" / "cert.pem";
        key_file = settings.state_dir / "tls" / "key.pem";
        std::error_code ec;
        if (!fs::exists(cert_file, ec) || !fs::exists(key_file, ec)) {
            generate_self_signed(cert_file, key_file, settings.hostname);
            log::info("tls_certificate_generated", {{"cert", cert_file.string()}, {"key", key_file.string()}});
        }
    }
    auto context = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
    SSL_CTX* native = context->native_handle();
    SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
    const int min_version = tls_version(settings.min_tls_version);
    if (min_version < TLS1_2_VERSION) {
        // RFC 8996 deprecates TLS 1.0/1.1; Debian's default security level refuses them, so the opt-in
        // has to lower it too.
        SSL_CTX_set_security_level(native, 0);
        log::warning("tls_legacy_enabled", {{"min_tls_version", settings.min_tls_version},
                                            {"detail", "TLS below 1.2 is obsolete (RFC 8996); enabled by allow_legacy_tls"}});
    }
    SSL_CTX_set_min_proto_version(native, min_version);
    if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1)
        throw std::runtime_error(cert_file.string() + ": cannot use as TLS certificate: " + openssl_reason());
    if (SSL_CTX_use_PrivateKey_file(native, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        throw std::runtime_error(key_file.string() + ": cannot use as TLS key: " + openssl_reason());
    if (SSL_CTX_check_private_key(native) != 1)
        throw std::runtime_error(key_file.string() + ": does not match " + cert_file.string());
    log::info("tls_certificate", {{"cert", cert_file.string()}, {"sha256", certificate_fingerprint(cert_file)},
                                  {"min_tls_version", settings.min_tls_version}});
    return context;
}

}  // namespace relay
