// Connection caps that fit the file-descriptor limit (issue 13, item 11). With 128 descriptors one
// host's idle connections starved everyone: max_clients (4096) and max_clients_per_ip (1024) were
// far above what the process could open, so the cap that bit was EMFILE at accept, for all
// addresses alike. At start the soft RLIMIT_NOFILE is raised to the hard limit; then the caps are
// cut to what fits after a reserve for the spool, upstream sessions, listeners and logs, keeping
// the configured ratio of per-address to total, so one address still cannot take everything.
#pragma once

#include <cstddef>
#include <cstdint>

namespace relay {

struct FdBudget {
    std::uint64_t limit = 0;                // descriptors the process may open (soft limit, after raising)
    std::size_t reserve = 0;                // kept for everything but client connections
    std::size_t max_clients = 0;            // effective caps
    std::size_t max_clients_per_ip = 0;
    bool reduced = false;                   // the configured caps did not fit
};

// Pure. Each client may hold two descriptors (its socket and, during DATA, its spool file);
// `upstream_sessions` is the sum of the accounts' max_connections (each a socket and the queue
// file it streams).
FdBudget plan_fd_budget(std::uint64_t fd_limit, std::size_t max_clients, std::size_t max_clients_per_ip,
                        std::size_t upstream_sessions, std::size_t listeners);

// Raises the soft RLIMIT_NOFILE to the hard limit (once; later calls only read it) and returns
// the soft limit now in force.
std::uint64_t raise_fd_limit();

}  // namespace relay
