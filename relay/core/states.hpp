// The one vocabulary for message and account states (issue 12, item 5): `status`, `queue list`,
// the metrics' labels and HELP text, the logs, the README and the man page all use these words, so
// an admin never has to translate "ready" in one place into "deferred" in another. Add a state here
// first; tests/unit/core/test_states.cpp checks that every name is unique and described.
#pragma once

#include <array>
#include <string_view>

namespace relay::state {

// Where a message is. A message is in exactly one state; `delivered` and `failed` are final.
enum class Message { queued, active, deferred, held, failed, delivered };
// What an account is doing about its mail.
enum class Account { ready, backing_off, waiting_for_token, held };

struct Described {
    std::string_view name;      // the word everywhere (label value, status text, queue list column)
    std::string_view meaning;   // one line for the docs and metrics HELP
};

inline constexpr std::array<Described, 6> kMessageStates{{
    {"queued", "waiting for its turn: new, due for a retry, or behind an account that may not send now"},
    {"active", "being sent upstream right now"},
    {"deferred", "failed temporarily; waiting for its retry time"},
    {"held", "kept by `queue hold ID` until `queue release ID`"},
    {"failed", "failed for good; kept in spool_dir/failed with the reason (a bounce went out when bounce = true)"},
    {"delivered", "accepted by the upstream and removed from the spool"},
}};

inline constexpr std::array<Described, 4> kAccountStates{{
    {"ready", "may send: mail goes out as soon as a session is free"},
    {"backing-off", "the upstream had trouble (cannot connect, 421/432, quota); waiting before the next try"},
    {"waiting-for-token", "the token endpoint failed briefly; retried within seconds to a minute, mail goes when the token comes"},
    {"held", "a person must act (see hold reason and action); nothing is attempted until then"},
}};

constexpr std::string_view name(Message s) { return kMessageStates[static_cast<std::size_t>(s)].name; }
constexpr std::string_view name(Account s) { return kAccountStates[static_cast<std::size_t>(s)].name; }
constexpr std::string_view meaning(Message s) { return kMessageStates[static_cast<std::size_t>(s)].meaning; }
constexpr std::string_view meaning(Account s) { return kAccountStates[static_cast<std::size_t>(s)].meaning; }

// An account's state from its flags, most urgent first: a hold needs a person, a token wait heals
// by itself within a minute, a backoff after upstream trouble takes longer.
constexpr Account account_state(bool held, bool waiting_for_token, bool backing_off) {
    if (held) return Account::held;
    if (waiting_for_token) return Account::waiting_for_token;
    if (backing_off) return Account::backing_off;
    return Account::ready;
}

// Message states a queue snapshot counts (status, metrics), in display order.
inline constexpr std::array<Message, 4> kWaitingStates{Message::queued, Message::active, Message::deferred, Message::held};

}  // namespace relay::state
