// The SMTP upstream as a Transport (transport.hpp): today's way out to Office 365 (or any SMTP
// submission server). A session is one UpstreamSession, connected with STARTTLS or implicit TLS and
// authenticated with the account's SASL mechanism (auth::sasl_login); it sends one transaction per
// max_recipients_per_message recipients and is replaced before the access token that opened it
// goes stale, since providers may drop a session whose token expired.
#pragma once

#include <memory>

#include "relay/delivery/transport.hpp"

namespace relay {

// Throws std::runtime_error when the account's upstream_ca_file cannot be loaded.
std::unique_ptr<Transport> make_smtp_transport(const conf::Account& account, const TransportDeps& deps);

}  // namespace relay
