// Consumer lookup by hashed API key (see consumers.hpp).
#include "identity/consumers.hpp"

namespace gw::identity {

consumer_directory::consumer_directory(const std::vector<config::consumer>& consumers) {
  for (const auto& c : consumers) by_hash_.emplace(c.key_sha256, &c);
}

const config::consumer* consumer_directory::find(std::string_view key_sha256) const {
  const auto it = by_hash_.find(std::string{key_sha256});
  return it == by_hash_.end() ? nullptr : it->second;
}

}  // namespace gw::identity
