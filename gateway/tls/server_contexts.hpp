// The downstream TLS of one configuration (SPEC 13): an OpenSSL context per certificate, the
// first the default, the others chosen by SNI (exact names first, then "*." wildcards of one
// label). TLS 1.2 and 1.3 with Mozilla's "intermediate" ciphers, ALPN http/1.1, session tickets
// and a session cache for resumption, and client certificates checked against client_ca when
// asked for. Built once per configuration and shared by every worker (OpenSSL contexts take
// concurrent handshakes); a reload builds new ones and open connections keep theirs.
#pragma once

#include "config/config.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct ssl_ctx_st;
struct ssl_st;

namespace gw::tls {

class server_contexts {
 public:
  // Throws std::runtime_error naming the file when a certificate, key or CA cannot be used.
  static std::shared_ptr<const server_contexts> build(const config::server_tls& settings);
  ~server_contexts();
  server_contexts(const server_contexts&) = delete;
  server_contexts& operator=(const server_contexts&) = delete;

  // What a handshake starts with; SNI may move it to another of these contexts.
  ssl_ctx_st* default_context() const { return contexts_.front().ctx; }
  bool asks_client_certificates() const { return asks_client_certificates_; }

  // For the expiry gauge: each server name served and when its certificate (or the first of
  // its chain to) expires; a default certificate that lists no names appears by its subject.
  struct served_name {
    std::string server_name;
    std::chrono::system_clock::time_point not_after;
  };
  const std::vector<served_name>& served() const { return served_; }

  // The context for `server_name` (lower case), or the default.
  ssl_ctx_st* choose(std::string_view server_name) const;

 private:
  server_contexts() = default;
  static int on_server_name(ssl_st* ssl, int* alert, void* self);

  struct entry {
    ssl_ctx_st* ctx = nullptr;
  };
  std::vector<entry> contexts_;
  std::unordered_map<std::string, std::size_t> exact_;     // name -> index
  std::unordered_map<std::string, std::size_t> wildcard_;  // "example.com" of "*.example.com"
  std::vector<served_name> served_;
  bool asks_client_certificates_ = false;
};

// The SHA-256 fingerprint (lower-case hex) and RFC 2253 subject of the certificate the client
// showed on `ssl`, when it showed one and it was verified; empty strings otherwise.
struct client_certificate {
  std::string sha256;
  std::string subject;
};
client_certificate verified_client_certificate(ssl_st* ssl);

}  // namespace gw::tls
