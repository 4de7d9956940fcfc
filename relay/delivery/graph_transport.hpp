// Microsoft Graph sendMail as a Transport (issue 14): for tenants where SMTP AUTH is switched off.
// open() only fetches the account's Graph access token (there is no connection to keep: each
// message is one HTTPS POST, made by libcurl on the blocking pool so the I/O thread never waits);
// a session's send() reconciles the header with each chunk's recipients (graph_mail.hpp), posts the
// base64 MIME, and turns Graph's answer into the relay's Outcome. Per account: at most
// graph_concurrent_requests requests at once, and none before a 429/503/504's Retry-After expires
// (the Outcome then asks the scheduler to leave the account alone that long).
#pragma once

#include <memory>

#include "relay/delivery/transport.hpp"

namespace relay {

std::unique_ptr<Transport> make_graph_transport(const conf::Account& account, const TransportDeps& deps);

}  // namespace relay
