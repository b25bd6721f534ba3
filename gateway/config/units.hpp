// Parsers for the scalar forms of the YAML: durations, sizes, host:port endpoints.
#pragma once

#include "config/config.hpp"

#include <optional>
#include <string_view>

namespace gw::config {

// "250ms", "10s", "5m", "1h", "1d"; a unit is required.
std::optional<duration> parse_duration(std::string_view text);
// "1024", "16KiB", "10MiB", "1GiB".
std::optional<std::uint64_t> parse_size(std::string_view text);
// "0.0.0.0:8080", "[::]:8080", "localhost:9000"; port 1-65535.
std::optional<endpoint> parse_endpoint(std::string_view text);

}  // namespace gw::config
