// See aliases.hpp.
#include "conf/aliases.hpp"

#include <algorithm>
#include <cctype>

#include "relay/core/ascii.hpp"

namespace relay::conf {
namespace {

using core::lower;
using core::trim;

void add_entry(AliasTable& table, std::string_view entry, std::vector<std::string>* skipped) {
    auto colon = entry.find(':');
    if (colon == std::string_view::npos) return;
    std::string name = lower(trim(entry.substr(0, colon)));
    if (name.empty()) return;
    std::string_view rest = entry.substr(colon + 1);
    std::vector<std::string> targets;
    while (!rest.empty()) {
        auto comma = rest.find(',');
        std::string_view target = trim(rest.substr(0, comma));
        if (target.size() >= 2 && target.front() == '"' && target.back() == '"') target = target.substr(1, target.size() - 2);
        if (!target.empty()) {
            if (target.front() == '|' || target.front() == '/' || target.starts_with(":include:")) {
                if (skipped) skipped->push_back(name + ": " + std::string(target));
            } else {
                targets.emplace_back(target);
            }
        }
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    if (!targets.empty()) table[name] = std::move(targets);
}

}  // namespace

AliasTable parse_alias_file(std::string_view text, std::vector<std::string>* skipped) {
    AliasTable table;
    std::string entry;
    auto flush = [&] {
        if (!entry.empty()) add_entry(table, entry, skipped);
        entry.clear();
    };
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (trim(line).empty() || trim(line).front() == '#') continue;
        if (line.front() == ' ' || line.front() == '\t') {   // aliases(5): a continuation line
            entry += " ";
            entry += line;
            continue;
        }
        flush();
        entry = std::string(line);
    }
    flush();
    return table;
}

std::vector<std::string> AliasResolver::resolve(std::string_view recipient) const {
    std::vector<std::string> out;
    auto add = [&](std::string address) {
        if (std::none_of(out.begin(), out.end(), [&](const std::string& a) { return lower(a) == lower(address); }))
            out.push_back(std::move(address));
    };
    // Depth-first over local names; `seen` breaks loops (a: b, b: a).
    std::vector<std::string> seen;
    auto visit = [&](auto& self, std::string_view name, int depth) -> void {
        std::string address(trim(name));
        auto at = address.rfind('@');
        std::string local = lower(address.substr(0, at));
        if (at != std::string::npos) {
            std::string domain = lower(address.substr(at + 1));
            if (std::find(local_domains.begin(), local_domains.end(), domain) == local_domains.end()) {
                add(address);
                return;
            }
        }
        const bool looping = std::find(seen.begin(), seen.end(), local) != seen.end();
        if (!looping && depth < 16) {
            for (const AliasTable* table : {config_aliases, system_aliases}) {
                if (!table) continue;
                if (auto it = table->find(local); it != table->end()) {
                    seen.push_back(local);
                    for (const auto& target : it->second) {
                        // "root: root" style self-references end here rather than looping.
                        if (lower(target) == local) add(local + "@" + default_domain);
                        else self(self, target, depth + 1);
                    }
                    return;
                }
            }
        }
        add(local + "@" + default_domain);
    };
    visit(visit, recipient, 0);
    return out;
}

}  // namespace relay::conf
