// The tests' PKI, with OpenSSL's API (see test_pki.hpp).
#include "support/test_pki.hpp"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace gw::test {

namespace {

struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct x509_free {
  void operator()(X509* x) const { X509_free(x); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;

pkey_ptr make_key() {
  pkey_ptr key{EVP_EC_gen("P-256")};
  if (!key) throw std::runtime_error("test_pki: cannot make a P-256 key");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) throw std::runtime_error("test_pki: bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

x509_ptr make_certificate(const std::string& common_name, EVP_PKEY* key, long serial,
                          std::chrono::seconds not_before, std::chrono::seconds not_after) {
  x509_ptr cert{X509_new()};
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), static_cast<long>(not_before.count()));
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(not_after.count()));
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("gateway tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  return cert;
}

void write_pem(const std::string& path, X509* cert) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f || PEM_write_X509(f, cert) != 1) throw std::runtime_error("test_pki: cannot write " + path);
  std::fclose(f);
}

void write_pem(const std::string& path, EVP_PKEY* key) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f || PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    throw std::runtime_error("test_pki: cannot write " + path);
  std::fclose(f);
}

}  // namespace

struct test_pki::keys {
  pkey_ptr ca_key;
  x509_ptr ca_cert;
};

test_pki::test_pki(std::string name) : keys_(std::make_unique<keys>()) {
  char pattern[] = "/tmp/gateway-pki-XXXXXX";
  if (!mkdtemp(pattern)) throw std::runtime_error("test_pki: cannot make a temp dir");
  dir_ = pattern;
  keys_->ca_key = make_key();
  keys_->ca_cert = make_certificate(name, keys_->ca_key.get(), serial_++, std::chrono::hours(-1),
                                    std::chrono::hours(24 * 365));
  X509* ca = keys_->ca_cert.get();
  X509_set_issuer_name(ca, X509_get_subject_name(ca));
  add_extension(ca, ca, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(ca, ca, NID_subject_key_identifier, "hash");
  if (X509_sign(ca, keys_->ca_key.get(), EVP_sha256()) == 0)
    throw std::runtime_error("test_pki: cannot sign the CA");
  ca_file_ = dir_ + "/ca.pem";
  write_pem(ca_file_, ca);
}

test_pki::~test_pki() {
  if (std::getenv("GW_TEST_KEEP_TMP")) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

issued_certificate test_pki::issue(const certificate_request& request) {
  auto key = make_key();
  const long serial = serial_++;
  auto cert = make_certificate(request.common_name, key.get(), serial, request.not_before,
                               request.not_after);
  X509* ca = keys_->ca_cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(ca));
  add_extension(cert.get(), ca, NID_basic_constraints, "critical,CA:FALSE");
  add_extension(cert.get(), ca, NID_key_usage, "critical,digitalSignature");
  add_extension(cert.get(), ca, NID_ext_key_usage, request.client ? "clientAuth" : "serverAuth");
  add_extension(cert.get(), ca, NID_authority_key_identifier, "keyid");
  if (!request.dns_names.empty()) {
    std::string names;
    for (const auto& n : request.dns_names) names += (names.empty() ? "DNS:" : ",DNS:") + n;
    add_extension(cert.get(), ca, NID_subject_alt_name, names);
  }
  if (X509_sign(cert.get(), keys_->ca_key.get(),
                request.sha1_signature ? EVP_sha1() : EVP_sha256()) == 0)
    throw std::runtime_error("test_pki: cannot sign " + request.common_name);

  issued_certificate out;
  out.common_name = request.common_name;
  const auto stem = dir_ + "/" + std::to_string(serial);
  out.cert_file = stem + ".pem";
  out.key_file = stem + ".key";
  write_pem(out.cert_file, cert.get());
  write_pem(out.key_file, key.get());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  X509_digest(cert.get(), EVP_sha256(), digest, &length);
  static constexpr char hex[] = "0123456789abcdef";
  for (unsigned i = 0; i < length; ++i) {
    out.sha256 += hex[digest[i] >> 4];
    out.sha256 += hex[digest[i] & 15];
  }
  return out;
}

std::string test_pki::write_file(const std::string& name, const std::string& text) const {
  const auto path = dir_ + "/" + name;
  std::ofstream{path} << text;
  return path;
}

}  // namespace gw::test
