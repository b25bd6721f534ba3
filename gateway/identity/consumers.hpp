// Who the consumer is (SPEC 4.4, 13): by hashed API key, or by the SHA-256 fingerprint of a
// verified client certificate. Keys are only ever held as SHA-256 hashes.
#pragma once

#include "config/config.hpp"

#include <string>
#include <string_view>
#include <unordered_map>

namespace gw::identity {

class consumer_directory {
 public:
  explicit consumer_directory(const std::vector<config::consumer>& consumers);

  // The consumer whose key hashes to `key_sha256`, or null.
  const config::consumer* find(std::string_view key_sha256) const;
  // The consumer a client certificate with this fingerprint (lower-case hex) is, or null.
  const config::consumer* find_by_cert(std::string_view cert_sha256) const;

 private:
  std::unordered_map<std::string, const config::consumer*> by_hash_;
  std::unordered_map<std::string, const config::consumer*> by_cert_;
};

}  // namespace gw::identity
