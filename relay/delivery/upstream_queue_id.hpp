// The queue id an upstream gave in its 250 after DATA, for the `delivered` log line, so an admin can
// quote it to the provider ("which message?"). Exchange Online answers
// "250 2.0.0 OK <4A5B...@MN2PR11MB4048.namprd11.prod.outlook.com> [Hostname=...]"; Postfix and most
// others "250 2.0.0 Ok: queued as 4Bc2Lk0mXz"; Gmail "250 2.0.0 OK  1700000000 a1-20020a...gsmtp".
// RFC 5321 does not define the text, so this is a best effort; empty when nothing looks like an id.
#pragma once

#include <string>
#include <string_view>

namespace relay {

inline std::string upstream_queue_id(std::string_view reply) {
    if (auto open = reply.find('<'); open != std::string_view::npos) {
        auto close = reply.find('>', open);
        if (close != std::string_view::npos && close > open + 1) return std::string(reply.substr(open + 1, close - open - 1));
    }
    constexpr std::string_view queued_as = "queued as ";
    if (auto at = reply.find(queued_as); at != std::string_view::npos) {
        std::string_view rest = reply.substr(at + queued_as.size());
        return std::string(rest.substr(0, rest.find_first_of(" \t/")));
    }
    // "250 2.0.0 OK  <epoch> <id> - gsmtp": the last word before "- gsmtp".
    if (auto gsmtp = reply.find(" - gsmtp"); gsmtp != std::string_view::npos) {
        std::string_view head = reply.substr(0, gsmtp);
        auto space = head.rfind(' ');
        if (space != std::string_view::npos && space + 1 < head.size()) return std::string(head.substr(space + 1));
    }
    return {};
}

}  // namespace relay
