// How API keys are hashed, in the file (`key:` becomes a key_sha256) and on the wire (the API key
// header is looked up by its hash): one function, so the two always agree.
#pragma once

#include <string>
#include <string_view>

namespace gw::config {

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace gw::config
