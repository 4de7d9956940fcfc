// Fuzzes the config loader with arbitrary TOML text: it must either produce a Config or throw
// ConfigError whose every message starts with "file:" (the file:line:col form), never crash or throw
// anything else.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "conf/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        relay::conf::parse_config(text, "/nonexistent-fuzz-dir/fuzz.toml");
    } catch (const relay::conf::ConfigError& e) {
        if (e.errors().empty()) std::abort();
        for (const auto& line : e.errors())
            if (!line.starts_with("/nonexistent-fuzz-dir/fuzz.toml:")) std::abort();
    }
    return 0;
}
