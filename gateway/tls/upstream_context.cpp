// TLS to upstreams (see upstream_context.hpp).
#include "tls/upstream_context.hpp"

#include "config/tls_files.hpp"

#include <boost/asio/ip/address.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace gw::tls {

std::shared_ptr<const upstream_context> upstream_context::build(
    const config::upstream_tls& settings) {
  std::shared_ptr<upstream_context> out{new upstream_context};
  ERR_clear_error();
  out->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!out->ctx_) throw std::runtime_error(config::openssl_error("cannot make a TLS context"));
  out->server_name_ = settings.server_name;
  out->verify_ = settings.verify;
  SSL_CTX_set_min_proto_version(out->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_options(out->ctx_, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (settings.ca.empty()) {
    if (SSL_CTX_set_default_verify_paths(out->ctx_) != 1)
      throw std::runtime_error(config::openssl_error("cannot use the system's CA certificates"));
  } else if (SSL_CTX_load_verify_locations(out->ctx_, settings.ca.c_str(), nullptr) != 1) {
    throw std::runtime_error(config::openssl_error("cannot use the CAs in \"" + settings.ca + "\""));
  }
  // A key file that turned encrypted since the loader read it must fail, not prompt a tty.
  SSL_CTX_set_default_passwd_cb(out->ctx_, [](char*, int, int, void*) { return 0; });
  if (!settings.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(out->ctx_, settings.cert.c_str()) != 1)
      throw std::runtime_error(
          config::openssl_error("cannot use the client certificate in \"" + settings.cert + "\""));
    if (SSL_CTX_use_PrivateKey_file(out->ctx_, settings.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(out->ctx_) != 1)
      throw std::runtime_error(config::openssl_error("cannot use the key in \"" + settings.key + "\""));
  }
  static constexpr unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  if (SSL_CTX_set_alpn_protos(out->ctx_, http11, sizeof http11) != 0)  // 0 is success here
    throw std::runtime_error(config::openssl_error("cannot offer ALPN http/1.1"));
  return out;
}

upstream_context::~upstream_context() { SSL_CTX_free(ctx_); }

SSL* upstream_context::new_session(const std::string& host) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) throw std::runtime_error(config::openssl_error("cannot make a TLS session"));
  const std::string& name = server_name_.empty() ? host : server_name_;
  boost::system::error_code ec;
  const bool is_address = (boost::asio::ip::make_address(name, ec), !ec);
  // SNI carries names only (RFC 6066); an address is checked as an IP subjectAltName.
  if (!is_address && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) {
    SSL_free(ssl);
    throw std::runtime_error(config::openssl_error("cannot send the server name \"" + name + "\""));
  }
  if (verify_) {
    SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = is_address ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                               : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (set != 1) {
      SSL_free(ssl);
      throw std::runtime_error(config::openssl_error("cannot verify against \"" + name + "\""));
    }
  } else {
    SSL_set_verify(ssl, SSL_VERIFY_NONE, nullptr);
  }
  return ssl;
}

}  // namespace gw::tls
