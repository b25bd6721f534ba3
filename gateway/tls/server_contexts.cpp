// Downstream TLS contexts (see server_contexts.hpp).
#include "tls/server_contexts.hpp"

#include "config/tls_files.hpp"
#include "tls/ticket_keys.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstring>
#include <stdexcept>

namespace gw::tls {

namespace {

// Mozilla's "intermediate" configuration (v5.7) for TLS 1.2; TLS 1.3 keeps OpenSSL's suites,
// which are the same three.
constexpr const char* intermediate_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
constexpr const char* intermediate_groups = "X25519:prime256v1:secp384r1";

// Resumed sessions must come from this gateway's contexts (OpenSSL refuses to resume a session
// with client verification without one).
constexpr unsigned char session_id_context[] = "gateway";


// ALPN: HTTP/1.1 when the client offers it; a client that offers only others (h2) goes on
// without ALPN, as nginx lets it.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
                unsigned int in_length, void*) {
  static constexpr unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_length, http11, sizeof http11, in, in_length) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

SSL_CTX* make_context(const config::server_tls& settings, const config::tls_certificate& cert) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) throw std::runtime_error(config::openssl_error("cannot make a TLS context"));
  auto fail = [&](std::string what) {
    const auto message = config::openssl_error(std::move(what));
    SSL_CTX_free(ctx);
    throw std::runtime_error(message);
  };
  SSL_CTX_set_min_proto_version(
      ctx, settings.min_version == config::tls_version::v1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_cipher_list(ctx, intermediate_ciphers) != 1) fail("cannot set the ciphers");
  SSL_CTX_set_dh_auto(ctx, 1);  // the DHE-RSA suites need parameters: OpenSSL's ffdhe groups
  if (SSL_CTX_set1_groups_list(ctx, intermediate_groups) != 1) fail("cannot set the groups");
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  if (SSL_CTX_set_session_id_context(ctx, session_id_context, sizeof session_id_context - 1) != 1)
    fail("cannot set the session id context");
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  try {
    use_rotating_ticket_keys(ctx);
  } catch (const std::exception& e) {
    fail(e.what());
  }
  // A key file that turned encrypted since the loader read it must fail, not prompt a tty.
  SSL_CTX_set_default_passwd_cb(ctx, [](char*, int, int, void*) { return 0; });
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.cert.c_str()) != 1)
    fail("cannot use the certificate in \"" + cert.cert + "\"");
  if (SSL_CTX_use_PrivateKey_file(ctx, cert.key.c_str(), SSL_FILETYPE_PEM) != 1)
    fail("cannot use the key in \"" + cert.key + "\"");
  if (SSL_CTX_check_private_key(ctx) != 1)
    fail("the key in \"" + cert.key + "\" does not match the certificate in \"" + cert.cert + "\"");
  if (!settings.client_ca.empty() && settings.auth != config::client_auth::none) {
    if (SSL_CTX_load_verify_locations(ctx, settings.client_ca.c_str(), nullptr) != 1)
      fail("cannot use the CAs in \"" + settings.client_ca + "\"");
    // The names sent in the CertificateRequest, by which a client picks one of its certificates.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(settings.client_ca.c_str());
    if (!names) fail("cannot read the CA names in \"" + settings.client_ca + "\"");
    SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (settings.auth == config::client_auth::required) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
  }
  return ctx;
}

}  // namespace

std::shared_ptr<const server_contexts> server_contexts::build(const config::server_tls& settings) {
  if (settings.certificates.empty()) throw std::runtime_error("server.tls has no certificate");
  std::shared_ptr<server_contexts> out{new server_contexts};
  out->asks_client_certificates_ =
      !settings.client_ca.empty() && settings.auth != config::client_auth::none;
  ERR_clear_error();
  for (std::size_t i = 0; i < settings.certificates.size(); ++i) {
    const auto& cert = settings.certificates[i];
    out->contexts_.push_back({make_context(settings, cert)});
    const auto facts = config::check_certificate_and_key(cert.cert, cert.key);
    if (facts.error) throw std::runtime_error(*facts.error);
    const auto not_after = std::min(facts.leaf.not_after, facts.chain_not_after);
    if (not_after <= std::chrono::system_clock::now())
      throw std::runtime_error("the certificate in \"" + cert.cert + "\" (or its chain) has expired");
    for (const auto& name : cert.server_names) {
      // The first certificate to list a name serves it (the loader refuses a name listed twice).
      const bool inserted = name.starts_with("*.") ? out->wildcard_.emplace(name.substr(2), i).second
                                                   : out->exact_.emplace(name, i).second;
      if (inserted) out->served_.push_back({name, not_after});
    }
    // The default serves every name no certificate lists; a later one without names serves none.
    if (i == 0 && cert.server_names.empty()) out->served_.push_back({facts.leaf.subject, not_after});
  }
  SSL_CTX_set_tlsext_servername_callback(out->default_context(), on_server_name);
  SSL_CTX_set_tlsext_servername_arg(out->default_context(), out.get());
  return out;
}

server_contexts::~server_contexts() {
  for (auto& e : contexts_) SSL_CTX_free(e.ctx);
}

SSL_CTX* server_contexts::choose(std::string_view server_name) const {
  if (const auto it = exact_.find(std::string{server_name}); it != exact_.end())
    return contexts_[it->second].ctx;
  // "*.example.com" covers "api.example.com", not "example.com" nor "a.b.example.com".
  if (const auto dot = server_name.find('.'); dot != std::string_view::npos && dot > 0)
    if (const auto it = wildcard_.find(std::string{server_name.substr(dot + 1)});
        it != wildcard_.end())
      return contexts_[it->second].ctx;
  return default_context();
}

int server_contexts::on_server_name(SSL* ssl, int*, void* self) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  std::string lower{name};
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  SSL_CTX* chosen = static_cast<const server_contexts*>(self)->choose(lower);
  // SSL_set_SSL_CTX takes the certificate, key and verify store of `chosen`, not its verify
  // mode or client CA names: those stay the default context's. Every context is made from the
  // same settings, so they agree; per-certificate client settings would have to be set here.
  if (chosen != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, chosen);
  return SSL_TLSEXT_ERR_OK;
}

client_certificate verified_client_certificate(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert || SSL_get_verify_result(ssl) != X509_V_OK) return {};
  auto facts = config::facts_of(cert);
  return {std::move(facts.sha256), std::move(facts.subject)};
}

}  // namespace gw::tls
