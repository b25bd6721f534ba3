// A throwaway PKI for the TLS tests, made with OpenSSL at run time in a temp dir of its own: a CA,
// then server and client certificates it signs (ECDSA P-256, as the benchmark uses), each written
// as PEM files. Nothing is read from or left on the machine (the dir goes with the object, kept
// when GW_TEST_KEEP_TMP is set).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace gw::test {

struct issued_certificate {
  std::string cert_file;  // PEM: the certificate
  std::string key_file;   // PEM: its private key
  std::string sha256;     // lower-case hex of the DER, as cert_sha256 and client_cert use it
  std::string common_name;
};

struct certificate_request {
  std::string common_name;
  std::vector<std::string> dns_names;  // subjectAltName; a server's names
  bool client = false;                 // extendedKeyUsage clientAuth instead of serverAuth
  // Validity from now: [now + not_before, now + not_after].
  std::chrono::seconds not_before{-3600};
  std::chrono::seconds not_after{std::chrono::hours(24 * 90)};
  // Signed with SHA-1: parses, but OpenSSL's default security level will not use it.
  bool sha1_signature = false;
};

class test_pki {
 public:
  // Makes the CA (`name` is its common name: two PKIs are two CAs that trust nothing of each
  // other's).
  explicit test_pki(std::string name = "gateway test CA");
  ~test_pki();
  test_pki(const test_pki&) = delete;
  test_pki& operator=(const test_pki&) = delete;

  const std::string& ca_file() const { return ca_file_; }
  const std::string& dir() const { return dir_; }
  issued_certificate issue(const certificate_request& request);
  // A file of this text in the PKI's dir (for broken files).
  std::string write_file(const std::string& name, const std::string& text) const;

 private:
  struct keys;
  std::unique_ptr<keys> keys_;
  std::string dir_;
  std::string ca_file_;
  long serial_ = 1;
};

}  // namespace gw::test
