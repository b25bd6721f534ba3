// Consumer lookup by hashed API key (see consumers.hpp).
#include "identity/consumers.hpp"

#include <openssl/evp.h>

namespace gw::identity {

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(length * 2, '0');
  for (unsigned i = 0; i < length; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 0xf];
  }
  return out;
}

consumer_directory::consumer_directory(const std::vector<config::consumer>& consumers) {
  for (const auto& c : consumers) by_hash_.emplace(c.key_sha256, &c);
}

const config::consumer* consumer_directory::find(std::string_view key_sha256) const {
  const auto it = by_hash_.find(std::string{key_sha256});
  return it == by_hash_.end() ? nullptr : it->second;
}

}  // namespace gw::identity
