// What the loader checks of the TLS files a configuration names (SPEC 13), before anything is
// built from them: each reads, parses, and fits with its partner. The contexts themselves are
// tls/'s to build; this only reads.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

struct x509_st;

namespace gw::config {

struct certificate_facts {
  std::chrono::system_clock::time_point not_before, not_after;
  std::string subject;                 // one line, RFC 2253
  std::vector<std::string> dns_names;  // subjectAltName DNS entries
  std::string sha256;                  // lower-case hex of the DER
};

// A PEM certificate (then its chain) and its private key. `error`: why they cannot serve,
// as a sentence naming the file; else the leaf certificate's facts. An expired certificate is
// reported by the caller (it knows the time), not here.
struct certificate_check {
  std::optional<std::string> error;
  certificate_facts leaf;
  // The earliest expiry among the chain after the leaf (max when there is none): an expired
  // intermediate fails every client as surely as an expired leaf.
  std::chrono::system_clock::time_point chain_not_after = std::chrono::system_clock::time_point::max();
};
certificate_check check_certificate_and_key(const std::string& cert_path,
                                            const std::string& key_path);

// The facts of a parsed certificate (the leaf a client or a file showed).
certificate_facts facts_of(x509_st* cert);

// Why OpenSSL's last call failed, from the first error on this thread's queue (the cause; those
// after it wrap it), as a phrase; the queue is emptied. "unknown error" when it is empty.
std::string openssl_reason();
// `what`, and ": " and openssl_reason() when OpenSSL said why (its queue may be empty).
std::string openssl_error(std::string what);

// A PEM bundle of CA certificates: why it cannot be used, or nothing.
std::optional<std::string> check_ca_bundle(const std::string& path);

}  // namespace gw::config
