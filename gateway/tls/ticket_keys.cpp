// Rotating session ticket keys (see ticket_keys.hpp), through OpenSSL 3's ticket key callback:
// AES-256-CBC for the ticket, HMAC-SHA256 over it, a random 16-byte name per key.
#include "tls/ticket_keys.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <array>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace gw::tls {

namespace {

struct ticket_key {
  std::array<unsigned char, 16> name{};
  std::array<unsigned char, 32> aes{};
  std::array<unsigned char, 32> hmac{};
  std::chrono::steady_clock::time_point made;
};

ticket_key new_key(std::chrono::steady_clock::time_point now) {
  ticket_key k;
  if (RAND_bytes(k.name.data(), k.name.size()) != 1 || RAND_bytes(k.aes.data(), k.aes.size()) != 1 ||
      RAND_bytes(k.hmac.data(), k.hmac.size()) != 1)
    throw std::runtime_error("no random bytes for a session ticket key");
  k.made = now;
  return k;
}

class ticket_keys {
 public:
  // OpenSSL's contract: 1 = sealed or opened; 2 = opened, but seal a new ticket (an old key);
  // 0 = not ours (a full handshake); -1 = failure.
  int use(unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac,
          bool seal) {
    std::lock_guard lock{mutex_};
    const auto now = std::chrono::steady_clock::now();
    try {
      if (!current_) {
        current_ = new_key(now);
      } else if (now - current_->made >= ticket_key_rotation) {
        previous_ = current_;
        current_ = new_key(now);
      }
    } catch (const std::exception&) {
      return -1;
    }
    const ticket_key* key = nullptr;
    int result = 1;
    if (seal) {
      key = &*current_;
      std::memcpy(name, key->name.data(), key->name.size());
      if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1) return -1;
    } else if (std::memcmp(name, current_->name.data(), current_->name.size()) == 0) {
      key = &*current_;
    } else if (previous_ && now - previous_->made < 2 * ticket_key_rotation &&
               std::memcmp(name, previous_->name.data(), previous_->name.size()) == 0) {
      key = &*previous_;
      result = 2;
    } else {
      return 0;
    }
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                          const_cast<unsigned char*>(key->hmac.data()),
                                          key->hmac.size()),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end()};
    if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
    const int ok = seal ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv)
                        : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv);
    return ok == 1 ? result : -1;
  }

 private:
  std::mutex mutex_;
  std::optional<ticket_key> current_;  // made at the first handshake
  std::optional<ticket_key> previous_;
};

ticket_keys& process_keys() {
  static ticket_keys keys;
  return keys;
}

int on_ticket(SSL*, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
              EVP_MAC_CTX* mac, int seal) {
  return process_keys().use(name, iv, cipher, mac, seal != 0);
}

}  // namespace

void use_rotating_ticket_keys(SSL_CTX* ctx) {
  if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket) != 1)
    throw std::runtime_error("cannot set the session ticket key callback");
}

}  // namespace gw::tls
