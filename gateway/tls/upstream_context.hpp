// TLS to one upstream's servers (SPEC 13, upstreams.NAME.tls): an OpenSSL client context with
// the CAs to verify against (the system's when none are named), the client certificate for
// upstream mTLS, TLS 1.2 at least. Each connection is then set up for the name to send as SNI
// and to verify the certificate against: `server_name`, or else the server's own host.
#pragma once

#include "config/config.hpp"

#include <memory>
#include <string>

struct ssl_ctx_st;
struct ssl_st;

namespace gw::tls {

class upstream_context {
 public:
  // Throws std::runtime_error naming the file when a CA, certificate or key cannot be used.
  static std::shared_ptr<const upstream_context> build(const config::upstream_tls& settings);
  ~upstream_context();
  upstream_context(const upstream_context&) = delete;
  upstream_context& operator=(const upstream_context&) = delete;

  // A new TLS session for a connection to `host` (a name or an address): SNI for a name, and
  // the certificate checked against server_name or `host` when verify is on. Owned by the caller.
  ssl_st* new_session(const std::string& host) const;

 private:
  upstream_context() = default;
  ssl_ctx_st* ctx_ = nullptr;
  std::string server_name_;
  bool verify_ = true;
};

}  // namespace gw::tls
