// The relay's own TLS, for LAN devices that insist on it: STARTTLS on `listen` (RFC 3207) and
// implicit TLS on `listen_tls` (RFC 8314 port 465). The certificate comes from tls_cert/tls_key, or,
// when none is configured, a self-signed EC P-256 pair is generated once into state_dir/tls/ and its
// SHA-256 fingerprint logged so an admin can pin it on the device. Client certificates are not asked for.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "conf/config.hpp"

namespace relay {

// Builds the server context (min_tls_version applied; below 1.2 only with allow_legacy_tls, with a
// warning). Generates the self-signed pair when needed. Blocks on the disk: call at startup only.
// Throws std::runtime_error with the file and OpenSSL's reason on failure.
std::shared_ptr<boost::asio::ssl::context> make_local_tls_context(const conf::RelaySettings& settings);

// Writes a fresh self-signed EC P-256 certificate for `hostname` and its key (mode 0600).
void generate_self_signed(const std::filesystem::path& cert_file, const std::filesystem::path& key_file,
                          const std::string& hostname);

// "AB:CD:..." SHA-256 fingerprint of the first certificate in a PEM file.
std::string certificate_fingerprint(const std::filesystem::path& cert_file);

}  // namespace relay
