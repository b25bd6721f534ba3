// Reading the TLS files with OpenSSL (see tls_files.hpp).
#include "config/tls_files.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>

namespace gw::config {

namespace {

struct bio_free {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct x509_free {
  void operator()(X509* x) const { X509_free(x); }
};
struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using bio_ptr = std::unique_ptr<BIO, bio_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

std::string quoted(const std::string& path) { return "\"" + path + "\""; }

std::chrono::system_clock::time_point to_time_point(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

std::string openssl_reason() {
  const unsigned long code = ERR_peek_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  // A failed fopen is a system error: its reason is the errno.
  if (ERR_SYSTEM_ERROR(code)) return std::strerror(static_cast<int>(ERR_GET_REASON(code)));
  const char* reason = ERR_reason_error_string(code);
  return reason ? reason : "unknown error";
}

std::string openssl_error(std::string what) {
  if (ERR_peek_error() != 0) what += ": " + openssl_reason();
  return what;
}

certificate_facts facts_of(X509* cert) {
  certificate_facts f;
  f.not_before = to_time_point(X509_get0_notBefore(cert));
  f.not_after = to_time_point(X509_get0_notAfter(cert));
  if (bio_ptr out{BIO_new(BIO_s_mem())}) {
    X509_NAME_print_ex(out.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long n = BIO_get_mem_data(out.get(), &data);
    if (n > 0) f.subject.assign(data, static_cast<std::size_t>(n));
  }
  if (auto* names = static_cast<GENERAL_NAMES*>(
          X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type != GEN_DNS) continue;
      const auto* text = ASN1_STRING_get0_data(name->d.dNSName);
      f.dns_names.emplace_back(reinterpret_cast<const char*>(text),
                               static_cast<std::size_t>(ASN1_STRING_length(name->d.dNSName)));
    }
    GENERAL_NAMES_free(names);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &length) == 1) {
    static constexpr char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < length; ++i) {
      f.sha256 += hex[digest[i] >> 4];
      f.sha256 += hex[digest[i] & 15];
    }
  }
  return f;
}

certificate_check check_certificate_and_key(const std::string& cert_path,
                                            const std::string& key_path) {
  certificate_check out;
  ERR_clear_error();
  bio_ptr cert_file{BIO_new_file(cert_path.c_str(), "r")};
  if (!cert_file) {
    out.error = "cannot read " + quoted(cert_path) + ": " + openssl_reason();
    return out;
  }
  x509_ptr leaf{PEM_read_bio_X509(cert_file.get(), nullptr, nullptr, nullptr)};
  if (!leaf) {
    out.error = quoted(cert_path) + " holds no PEM certificate (" + openssl_reason() + ")";
    return out;
  }
  // The chain after it must parse too: a broken intermediate would fail every handshake.
  while (x509_ptr next{PEM_read_bio_X509(cert_file.get(), nullptr, nullptr, nullptr)})
    out.chain_not_after = std::min(out.chain_not_after, to_time_point(X509_get0_notAfter(next.get())));
  const unsigned long last = ERR_peek_last_error();
  if (last != 0 && !(ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)) {
    out.error = quoted(cert_path) + ": a certificate of its chain does not parse (" +
                openssl_reason() + ")";
    return out;
  }
  ERR_clear_error();

  bio_ptr key_file{BIO_new_file(key_path.c_str(), "r")};
  if (!key_file) {
    out.error = "cannot read " + quoted(key_path) + ": " + openssl_reason();
    return out;
  }
  // No passphrase callback: an encrypted key cannot be used by a gateway that starts alone.
  pkey_ptr key{PEM_read_bio_PrivateKey(key_file.get(), nullptr,
                                       [](char*, int, int, void*) { return 0; }, nullptr)};
  if (!key) {
    out.error = quoted(key_path) + " holds no usable PEM private key (" + openssl_reason() +
                "; an encrypted key is not supported)";
    return out;
  }
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    ERR_clear_error();
    out.error = "the key in " + quoted(key_path) + " does not match the certificate in " +
                quoted(cert_path);
    return out;
  }
  // Parsing is not using: the context refuses what its security level forbids (a SHA-1
  // signature, a 1024-bit RSA key) although every PEM above parsed. The same two calls the
  // listener and the upstream connections make, on a context of their own.
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> scratch{SSL_CTX_new(TLS_method()),
                                                           &SSL_CTX_free};
  if (!scratch) {
    out.error = "cannot make a TLS context (" + openssl_reason() + ")";
    return out;
  }
  if (SSL_CTX_use_certificate_chain_file(scratch.get(), cert_path.c_str()) != 1) {
    out.error = "OpenSSL will not use the certificate chain in " + quoted(cert_path) + " (" +
                openssl_reason() + ")";
    return out;
  }
  if (SSL_CTX_use_PrivateKey_file(scratch.get(), key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
    out.error = "OpenSSL will not use the key in " + quoted(key_path) + " (" + openssl_reason() +
                ")";
    return out;
  }
  out.leaf = facts_of(leaf.get());
  return out;
}

std::optional<std::string> check_ca_bundle(const std::string& path) {
  ERR_clear_error();
  bio_ptr file{BIO_new_file(path.c_str(), "r")};
  if (!file) return "cannot read " + quoted(path) + ": " + openssl_reason();
  int count = 0;
  while (x509_ptr cert{PEM_read_bio_X509(file.get(), nullptr, nullptr, nullptr)}) ++count;
  const unsigned long last = ERR_peek_last_error();
  if (last != 0 && !(ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE))
    return quoted(path) + ": a certificate does not parse (" + openssl_reason() + ")";
  ERR_clear_error();
  if (count == 0) return quoted(path) + " holds no PEM certificate";
  return std::nullopt;
}

}  // namespace gw::config
