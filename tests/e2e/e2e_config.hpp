// Shared by the end-to-end tests: a gateway YAML around ports picked at run time.
#pragma once

#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/test_pki.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace gw::test {

struct e2e_ports {
  std::uint16_t listen = free_port();
  std::uint16_t admin = free_port();
};

inline std::string server_list(const std::vector<std::uint16_t>& ports) {
  std::string out = "[";
  for (std::size_t i = 0; i < ports.size(); ++i) {
    if (i) out += ", ";
    out += "127.0.0.1:" + std::to_string(ports[i]);
  }
  return out + "]";
}

// Whether this run of the suite goes over TLS: ctest runs the proxy's suites a second time, as
// e2e_NAME_tls, with GW_TEST_TLS set.
inline bool e2e_over_tls() { return std::getenv("GW_TEST_TLS") != nullptr; }

// Over TLS: the server.tls lines for a listener on `listen_port` (a certificate for localhost
// from a PKI made once per test program), and the test client set to speak TLS to that port.
// Otherwise nothing.
inline std::string e2e_tls_lines(std::uint16_t listen_port) {
  if (!e2e_over_tls()) return {};
  // (The ports are random: one an earlier gateway listened on may be this one's admin port,
  // which e2e_config makes plain again.)
  static test_pki pki;
  static const issued_certificate cert = pki.issue({"localhost", {"localhost"}});
  tls_options client;
  client.enabled = true;
  client.server_name = "localhost";
  client.ca_file = pki.ca_file();
  use_tls_by_default(listen_port, client);
  return "  tls:\n    certificates:\n      - cert: " + cert.cert_file + "\n        key: " +
         cert.key_file + "\n";
}

// A config with one upstream "backend" over `upstream_ports` and, unless `routes` is given, one
// catch-all route "all". `server_extra` and `upstream_extra` are indented YAML lines.
inline std::string e2e_config(const e2e_ports& p, const std::vector<std::uint16_t>& upstream_ports,
                              const std::string& server_extra = "",
                              const std::string& upstream_extra = "",
                              const std::string& routes = "") {
  std::string yaml;
  yaml += "server:\n  listen: 127.0.0.1:" + std::to_string(p.listen) + "\n";
  yaml += "  workers: 2\n  access_log: true\n  log_level: info\n" + server_extra;
  use_plain_by_default(p.admin);  // if an earlier gateway's TLS listener had this port
  yaml += e2e_tls_lines(p.listen);
  yaml += "admin:\n  listen: 127.0.0.1:" + std::to_string(p.admin) + "\n";
  yaml += "upstreams:\n  backend:\n    servers: " + server_list(upstream_ports) + "\n" +
          upstream_extra;
  yaml += routes.empty() ? "routes:\n  - name: all\n    match: { path_prefix: / }\n"
                           "    upstream: backend\n"
                         : routes;
  return yaml;
}

}  // namespace gw::test
