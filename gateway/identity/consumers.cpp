// Consumer lookup by hashed API key or certificate fingerprint (see consumers.hpp).
#include "identity/consumers.hpp"

namespace gw::identity {

consumer_directory::consumer_directory(const std::vector<config::consumer>& consumers) {
  for (const auto& c : consumers) {
    // A consumer known only by its certificate has no key: nothing must find it by "".
    if (!c.key_sha256.empty()) by_hash_.emplace(c.key_sha256, &c);
    if (!c.cert_sha256.empty()) by_cert_.emplace(c.cert_sha256, &c);
  }
}

const config::consumer* consumer_directory::find(std::string_view key_sha256) const {
  const auto it = by_hash_.find(std::string{key_sha256});
  return it == by_hash_.end() ? nullptr : it->second;
}

const config::consumer* consumer_directory::find_by_cert(std::string_view cert_sha256) const {
  const auto it = by_cert_.find(std::string{cert_sha256});
  return it == by_cert_.end() ? nullptr : it->second;
}

}  // namespace gw::identity
