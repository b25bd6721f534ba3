// SHA-256 through OpenSSL (see key_hash.hpp).
#include "config/key_hash.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace gw::config {

std::string sha256_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error{"SHA-256 is not available from OpenSSL"};
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(2 * length, '0');
  for (unsigned i = 0; i < length; ++i) {
    out[2 * i] = hex[digest[i] >> 4];
    out[2 * i + 1] = hex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace gw::config
