// Picks an account's transport; see transport.hpp. A new transport adds its case here.
#include "relay/delivery/transport.hpp"

#include "relay/delivery/graph_transport.hpp"
#include "relay/delivery/smtp_transport.hpp"

namespace relay {

std::unique_ptr<Transport> make_transport(const conf::Account& account, const TransportDeps& deps) {
    if (account.transport == conf::TransportKind::graph) return make_graph_transport(account, deps);
    return make_smtp_transport(account, deps);
}

}  // namespace relay
