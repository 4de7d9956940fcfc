// Connection caps within RLIMIT_NOFILE. See fd_budget.hpp.
#include "relay/intake/fd_budget.hpp"

#include <algorithm>
#include <sys/resource.h>

namespace relay {

namespace {
// stdio, log/journal socket, control socket, metrics, inotify, the event loop, curl's sockets and
// DNS, the token and state files written at any moment: generous, it is cheap.
constexpr std::size_t kBaseReserve = 64;
constexpr std::size_t kPerClient = 2;
}  // namespace

FdBudget plan_fd_budget(std::uint64_t fd_limit, std::size_t max_clients, std::size_t max_clients_per_ip,
                        std::size_t upstream_sessions, std::size_t listeners) {
    FdBudget b;
    b.limit = fd_limit;
    b.reserve = kBaseReserve + listeners + 2 * upstream_sessions;
    const std::uint64_t room = fd_limit > b.reserve ? fd_limit - b.reserve : 0;
    const std::size_t fit = static_cast<std::size_t>(std::max<std::uint64_t>(1, room / kPerClient));
    b.max_clients = std::min(max_clients, fit);
    b.max_clients_per_ip = std::min(max_clients_per_ip, max_clients);
    if (b.max_clients < max_clients) {
        b.reduced = true;
        // The configured share of the total for one address (default a quarter), at least one.
        const double share = max_clients == 0 ? 1.0 : static_cast<double>(b.max_clients_per_ip) / static_cast<double>(max_clients);
        b.max_clients_per_ip = std::max<std::size_t>(1, static_cast<std::size_t>(static_cast<double>(b.max_clients) * share));
    }
    return b;
}

std::uint64_t raise_fd_limit() {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    // RLIM_INFINITY is not a number of descriptors: the kernel's own ceiling (nr_open) applies.
    return limit.rlim_cur == RLIM_INFINITY ? 1u << 20 : static_cast<std::uint64_t>(limit.rlim_cur);
}

}  // namespace relay
