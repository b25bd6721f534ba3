// TLS on the gateway's listener (SPEC 13), with real handshakes against certificates made at
// test time (support/test_pki.hpp): SNI chooses the certificate (seen from the client's side),
// TLS 1.1 and plain HTTP on the TLS port are refused (plain HTTP with a plain 400), a required
// client certificate is enforced, a limit keyed by client_cert counts two certificates apart, a
// consumer named by its certificate gets its tier, the upstream hears X-Forwarded-Proto and
// X-Forwarded-Client-Cert, sessions resume (across a reload too), and a reload swaps the served
// certificate while an open connection goes on.
#include "admin_probes.hpp"
#include "e2e_config.hpp"
#include "support/fault_proxy.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/test_pki.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <csignal>
#include <filesystem>
#include <optional>
#include <ctime>
#include <stdexcept>
#include <string>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;

class tls_test : public ::testing::Test {
 protected:
  tls_test()
      : api_(pki_.issue({"api.example.com", {"api.example.com"}})),
        wildcard_(pki_.issue({"wildcard.example.org", {"*.example.org"}})),
        alice_(pki_.issue({"alice", {}, true})),
        bob_(pki_.issue({"bob", {}, true})) {}

  // server.tls with the two certificates, client certificates `client_auth`.
  std::string tls_block(const std::string& client_auth, const std::string& default_cert = {},
                        const std::string& default_key = {}) const {
    std::string yaml = server_extra_ + "  tls:\n" + tls_extra_ + "    certificates:\n";
    yaml += "      - cert: " + (default_cert.empty() ? api_.cert_file : default_cert) + "\n";
    yaml += "        key: " + (default_key.empty() ? api_.key_file : default_key) + "\n";
    yaml += "        server_names: [api.example.com]\n";
    yaml += "      - cert: " + wildcard_.cert_file + "\n        key: " + wildcard_.key_file + "\n";
    yaml += "        server_names: [\"*.example.org\"]\n";
    yaml += "    client_ca: " + pki_.ca_file() + "\n    client_auth: " + client_auth + "\n";
    return yaml;
  }

  std::string config(const std::string& client_auth, const std::string& default_cert = {},
                     const std::string& default_key = {}) const {
    const std::string routes =
        "routes:\n"
        "  - name: per_cert\n    match: { path_prefix: /per-cert }\n    upstream: backend\n"
        "    limits:\n      - name: by_cert\n        key: [client_cert]\n"
        "        algorithm: gcra\n        requests: 2\n        window: 1h\n"
        "  - name: tiered\n    match: { path_prefix: /tiered }\n    upstream: backend\n"
        "    auth: required\n"
        "    limits:\n      - name: by_consumer\n        key: [consumer]\n"
        "        algorithm: gcra\n        requests: 1\n        window: 1h\n"
        "        overrides:\n          - when: { tier: gold }\n            requests: 3\n"
        "  - name: all\n    match: { path_prefix: / }\n    upstream: backend\n";
    std::string yaml = e2e_config(ports_, {upstream_.port()}, tls_block(client_auth, default_cert,
                                                                         default_key),
                                  "", routes);
    yaml += "consumers:\n  - name: alice-service\n    cert_sha256: " + alice_.sha256 +
            "\n    tier: gold\n";
    return yaml;
  }

  tls_options client(const std::string& server_name,
                     const issued_certificate* cert = nullptr) const {
    tls_options o;
    o.enabled = true;
    o.server_name = server_name;
    o.ca_file = pki_.ca_file();
    if (cert) {
      o.cert_file = cert->cert_file;
      o.key_file = cert->key_file;
    }
    return o;
  }

  http_reply get(const tls_options& tls, const std::string& target,
                 const std::string& extra_lines = {}) {
    client_connection c{ports_.listen, tls};
    c.send("GET " + target + " HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n" +
           extra_lines + "\r\n");
    return c.read_reply();
  }

  // A full handshake at `version` and one request on it (TLS 1.3 tickets come after the
  // handshake: a reply brings them): the options to come back with and the session to resume.
  std::pair<tls_options, tls_session> new_session(int version) {
    auto options = client("api.example.com");
    options.min_version = options.max_version = version;
    client_connection c{ports_.listen, options};
    c.send("GET /hello HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
    EXPECT_EQ(c.read_reply().status, 200);
    return {options, c.tls()};
  }

  // Whether gateway_config_reloads_total{result} reaches `count` within 10 s.
  bool reloads_reach(const std::string& result, int count) const {
    return eventually(
        [&] {
          return metric(ports_.admin, "gateway_config_reloads_total",
                        {"result=\"" + result + "\""}) == count;
        },
        std::chrono::seconds(10));
  }

  std::string server_extra_;  // more server lines
  std::string tls_extra_;     // more server.tls lines
  test_pki pki_;
  issued_certificate api_, wildcard_, alice_, bob_;
  test_upstream upstream_;
  e2e_ports ports_;
};

TEST_F(tls_test, sni_chooses_the_certificate_and_alpn_says_http11) {
  gateway_process gateway{gateway_binary(), config("optional")};
  gateway.wait_ready(ports_.admin);
  struct expectation {
    std::string sni, common_name;
  };
  for (const auto& [sni, common_name] : {expectation{"api.example.com", "api.example.com"},
                                         expectation{"shop.example.org", "wildcard.example.org"},
                                         expectation{"API.EXAMPLE.COM", "api.example.com"},
                                         // Unknown names, and none, get the first certificate.
                                         expectation{"other.test", "api.example.com"},
                                         expectation{"", "api.example.com"}}) {
    auto options = client(sni);
    options.ca_file.clear();  // the wildcard one would not verify for "other.test"
    options.alpn = {"h2", "http/1.1"};
    client_connection c{ports_.listen, options};
    const auto session = c.tls();
    EXPECT_EQ(session.peer_common_name, common_name) << "SNI " << sni;
    EXPECT_EQ(session.alpn, "http/1.1") << "SNI " << sni;
    c.send("GET /hello HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
    EXPECT_EQ(c.read_reply().status, 200);
  }
  // Each served name's certificate expiry, for the alert (Unix time: 90 days ahead here).
  const double now = static_cast<double>(std::time(nullptr));
  for (const char* name : {R"(server_name="api.example.com")", R"(server_name="*.example.org")"}) {
    const double expiry = metric(ports_.admin, "gateway_tls_certificate_expiry_seconds", {name});
    EXPECT_GT(expiry, now + 89 * 86400.0) << name;
    EXPECT_LT(expiry, now + 91 * 86400.0) << name;
  }
  // A wildcard covers one label only.
  auto deep = client("a.b.example.org");
  deep.ca_file.clear();
  EXPECT_EQ(client_connection(ports_.listen, deep).tls().peer_common_name, "api.example.com");
}

TEST_F(tls_test, the_upstream_hears_https_and_the_verified_client_certificate) {
  gateway_process gateway{gateway_binary(), config("optional")};
  gateway.wait_ready(ports_.admin);
  // TLS 1.3 by default with a verified server certificate.
  client_connection c{ports_.listen, client("api.example.com", &bob_)};
  EXPECT_EQ(c.tls().version, "TLSv1.3");
  c.send("GET /hello HTTP/1.1\r\nHost: api.example.com\r\n"
         "X-Forwarded-Client-Cert: Hash=forged\r\n\r\n");
  EXPECT_EQ(c.read_reply().status, 200);
  // Without a client certificate (optional): no such header, forged ones dropped (with "_"
  // too, which CGI-style upstreams read as the same header).
  EXPECT_EQ(get(client("api.example.com"), "/plain",
                "X-Forwarded-Client-Cert: Hash=forged\r\nX_Forwarded_Client_Cert: Hash=forged\r\n")
                .status,
            200);

  const auto seen = upstream_.requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].header("X-Forwarded-Proto"), "https");
  EXPECT_EQ(seen[0].header("X-Forwarded-Client-Cert"),
            "Hash=" + bob_.sha256 + ";Subject=\"CN=bob,O=gateway tests\"");
  EXPECT_EQ(seen[1].header("X-Forwarded-Proto"), "https");
  EXPECT_FALSE(seen[1].has_header("X-Forwarded-Client-Cert"));
  EXPECT_FALSE(seen[1].has_header("X_Forwarded_Client_Cert"));
}

TEST_F(tls_test, old_protocols_plain_http_and_untrusted_certificates_are_refused) {
  gateway_process gateway{gateway_binary(), config("optional")};
  gateway.wait_ready(ports_.admin);
  auto old = client("api.example.com");
  old.max_version = TLS1_1_VERSION;
  // The server's refusal (its protocol_version alert), not the client refusing to offer 1.1.
  try {
    client_connection refused{ports_.listen, old};
    ADD_FAILURE() << "a TLS 1.1 handshake succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string{e.what()}.find("protocol version"), std::string::npos) << e.what();
  }

  // Plain HTTP on the TLS port: a plain 400 that says so (as nginx answers), then closed;
  // nothing forwarded.
  client_connection plain{ports_.listen};
  plain.send("GET / HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
  const auto reply = plain.read_reply();
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.header("Content-Type"), "application/json");
  EXPECT_NE(reply.body.find("Plain HTTP request sent to the TLS port"), std::string::npos)
      << reply.body;
  EXPECT_FALSE(reply.keep_alive);
  EXPECT_TRUE(plain.wait_closed(5s));
  EXPECT_TRUE(upstream_.requests().empty());

  // A client certificate from another CA fails the handshake even when certificates are
  // optional: a certificate shown must verify.
  test_pki other{"someone else's CA"};
  const auto stranger = other.issue({"mallory", {}, true});
  EXPECT_THROW(get(client("api.example.com", &stranger), "/hello"), std::runtime_error);
  EXPECT_EQ(get(client("api.example.com"), "/hello").status, 200);
  EXPECT_TRUE(gateway.running());
  // Each refusal counted by why: TLS 1.1 and plain HTTP are protocol, the stranger certificate.
  EXPECT_TRUE(eventually(
      [&] {
        return metric(ports_.admin, "gateway_tls_handshake_errors_total",
                      {R"(reason="protocol")"}) == 2 &&
               metric(ports_.admin, "gateway_tls_handshake_errors_total",
                      {R"(reason="certificate")"}) == 1;
      },
      5s));
  EXPECT_EQ(metric(ports_.admin, "gateway_tls_handshake_errors_total", {R"(reason="timeout")"}), 0);
}

TEST_F(tls_test, min_version_13_refuses_tls_12) {
  tls_extra_ = "    min_version: \"1.3\"\n";
  gateway_process gateway{gateway_binary(), config("optional")};
  gateway.wait_ready(ports_.admin);
  auto tls12 = client("api.example.com");
  tls12.max_version = TLS1_2_VERSION;
  EXPECT_THROW(client_connection(ports_.listen, tls12), std::runtime_error);
  // Refused by the gateway's TLS (not a refused connect, not a timeout).
  EXPECT_TRUE(eventually(
      [&] {
        return metric(ports_.admin, "gateway_tls_handshake_errors_total",
                      {R"(reason="protocol")"}) == 1;
      },
      5s));
  EXPECT_EQ(client_connection(ports_.listen, client("api.example.com")).tls().version, "TLSv1.3");
}

TEST_F(tls_test, a_stalled_handshake_is_closed_at_header_timeout) {
  server_extra_ = "  header_timeout: 300ms\n";
  gateway_process gateway{gateway_binary(), config("optional")};
  gateway.wait_ready(ports_.admin);
  // TCP only: no ClientHello ever comes.
  client_connection stalled{ports_.listen};
  EXPECT_TRUE(stalled.wait_closed(5s));
  EXPECT_TRUE(eventually(
      [&] {
        return metric(ports_.admin, "gateway_tls_handshake_errors_total",
                      {R"(reason="timeout")"}) == 1;
      },
      5s));
}

TEST_F(tls_test, required_client_certificates_are_enforced) {
  gateway_process gateway{gateway_binary(), config("required")};
  gateway.wait_ready(ports_.admin);
  // TLS 1.3 sends the alert after the client's Finished: the first read sees it.
  EXPECT_THROW(get(client("api.example.com"), "/hello"), std::runtime_error);
  EXPECT_TRUE(eventually(
      [&] {
        return metric(ports_.admin, "gateway_tls_handshake_errors_total",
                      {R"(reason="certificate")"}) == 1;
      },
      5s));
  EXPECT_TRUE(upstream_.requests().empty());
  EXPECT_EQ(get(client("api.example.com", &alice_), "/hello").status, 200);
}

TEST_F(tls_test, a_limit_keyed_by_client_cert_counts_each_certificate_apart) {
  gateway_process gateway{gateway_binary(), config("optional")};
  gateway.wait_ready(ports_.admin);
  for (const auto* who : {&alice_, &bob_}) {
    EXPECT_EQ(get(client("api.example.com", who), "/per-cert").status, 200) << who->common_name;
    EXPECT_EQ(get(client("api.example.com", who), "/per-cert").status, 200) << who->common_name;
    EXPECT_EQ(get(client("api.example.com", who), "/per-cert").status, 429) << who->common_name;
  }
  // Without a certificate the limit's key is incomplete: the limit does not apply.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(get(client("api.example.com"), "/per-cert").status, 200);
}

TEST_F(tls_test, a_consumer_named_by_its_certificate_gets_its_tier) {
  gateway_process gateway{gateway_binary(), config("optional")};
  gateway.wait_ready(ports_.admin);
  // alice's certificate is alice-service (gold: 3); bob's names nobody: auth required refuses.
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(get(client("api.example.com", &alice_), "/tiered").status, 200) << i;
  EXPECT_EQ(get(client("api.example.com", &alice_), "/tiered").status, 429);
  EXPECT_EQ(get(client("api.example.com", &bob_), "/tiered").status, 401);
  const auto seen = upstream_.requests();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen[0].header("X-Consumer"), "alice-service");
}

TEST_F(tls_test, a_returning_client_resumes_its_session) {
  gateway_process gateway{gateway_binary(), config("optional")};
  gateway.wait_ready(ports_.admin);
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    auto [options, first] = new_session(version);
    EXPECT_FALSE(first.resumed);
    ASSERT_TRUE(first.session);
    options.resume = first.session;
    client_connection again{ports_.listen, options};
    EXPECT_TRUE(again.tls().resumed) << first.version;
  }
}

TEST_F(tls_test, a_session_from_before_a_reload_resumes_after_it) {
  // Ticket keys belong to the process, not to a configuration's contexts.
  gateway_process gateway{gateway_binary(), config("optional")};
  gateway.wait_ready(ports_.admin);
  std::vector<std::pair<tls_options, tls_session>> sessions;
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION})
    sessions.push_back(new_session(version));
  gateway.send_signal(SIGHUP);
  ASSERT_TRUE(reloads_reach("success", 1));
  for (auto& [options, session] : sessions) {
    ASSERT_TRUE(session.session);
    options.resume = session.session;
    client_connection again{ports_.listen, options};
    EXPECT_TRUE(again.tls().resumed) << session.version;
  }
}

TEST_F(tls_test, a_reload_serves_the_new_certificate_and_keeps_open_connections) {
  gateway_process gateway{gateway_binary(), config("optional")};
  gateway.wait_ready(ports_.admin);
  client_connection open{ports_.listen, client("api.example.com")};
  EXPECT_EQ(open.tls().peer_common_name, "api.example.com");

  const auto renewed = pki_.issue({"api.example.com renewed", {"api.example.com"}});
  gateway.write_config(config("optional", renewed.cert_file, renewed.key_file));
  gateway.send_signal(SIGHUP);
  ASSERT_TRUE(reloads_reach("success", 1));
  EXPECT_EQ(client_connection(ports_.listen, client("api.example.com")).tls().peer_common_name,
            "api.example.com renewed");
  // The connection from before goes on, on its old certificate.
  open.send("GET /hello HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
  EXPECT_EQ(open.read_reply().status, 200);

  // Renewal in place: the same paths, new contents (what certbot and cert-manager do).
  const auto third = pki_.issue({"api.example.com third", {"api.example.com"}});
  std::filesystem::copy_file(third.cert_file, renewed.cert_file,
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(third.key_file, renewed.key_file,
                             std::filesystem::copy_options::overwrite_existing);
  gateway.send_signal(SIGHUP);
  ASSERT_TRUE(reloads_reach("success", 2));
  EXPECT_EQ(client_connection(ports_.listen, client("api.example.com")).tls().peer_common_name,
            "api.example.com third");

  // A key that does not match its certificate: the reload fails, the served one stays.
  gateway.write_config(config("optional", renewed.cert_file, api_.key_file));
  gateway.send_signal(SIGHUP);
  ASSERT_TRUE(reloads_reach("failure", 1));
  EXPECT_EQ(client_connection(ports_.listen, client("api.example.com")).tls().peer_common_name,
            "api.example.com third");
}

TEST_F(tls_test, check_config_reports_broken_and_expiring_certificates) {
  const auto expired = pki_.issue({"expired", {"api.example.com"}, false, -std::chrono::hours(48),
                                   -std::chrono::hours(24)});
  const auto soon = pki_.issue({"soon", {"api.example.com"}, false, -std::chrono::hours(1),
                                std::chrono::hours(24 * 10)});
  const auto not_pem = pki_.write_file("broken.pem", "not a certificate\n");
  certificate_request weak{"api.example.com", {"api.example.com"}};
  weak.sha1_signature = true;
  const auto sha1 = pki_.issue(weak);
  struct expectation {
    std::string cert, key;
    int exit_code;
    std::string says;
  };
  for (const auto& [cert, key, exit_code, says] :
       {expectation{expired.cert_file, expired.key_file, 1, "has expired"},
        expectation{soon.cert_file, soon.key_file, 0, "expires in 9 days"},
        expectation{not_pem, api_.key_file, 1, "holds no PEM certificate"},
        expectation{sha1.cert_file, sha1.key_file, 1, "OpenSSL will not use the certificate"},
        expectation{api_.cert_file, alice_.key_file, 1, "does not match the certificate"},
        expectation{pki_.dir() + "/missing.pem", api_.key_file, 1, "cannot read"}}) {
    const auto file = write_temp_file(config("optional", cert, key), "gateway.yaml");
    const auto result = run_gateway(gateway_binary(), {"--check-config", file});
    EXPECT_EQ(result.exit_code, exit_code) << result.out;
    EXPECT_NE(result.out.find(says), std::string::npos) << result.out;
    EXPECT_NE(result.out.find(":8:9:"), std::string::npos)
        << "the certificate's line: " << result.out;
  }
}

// TLS to the upstream: gateway "front" (plain, one worker) has an upstream with tls whose server
// is gateway "back" (TLS on its listener, client certificates optional), in front of the test
// upstream. What front's TLS settings make of back's certificate shows in front's answers and
// metrics, and in what back forwards (X-Forwarded-Client-Cert for front's client certificate).
class upstream_tls_test : public tls_test {
 protected:
  upstream_tls_test() : front_client_(pki_.issue({"front-gateway", {}, true})) {
    back_.emplace(gateway_binary(), config("optional"));
    back_->wait_ready(ports_.admin);
  }

  // `servers`: front's upstream servers, back alone unless given.
  std::string front_config(const std::string& tls_lines, std::string servers = {}) const {
    if (servers.empty()) servers = "127.0.0.1:" + std::to_string(ports_.listen);
    std::string yaml = "server:\n  listen: 127.0.0.1:" + std::to_string(front_ports_.listen) +
                       "\n  workers: 1\n  access_log: false\n";
    yaml += "admin:\n  listen: 127.0.0.1:" + std::to_string(front_ports_.admin) + "\n";
    yaml += "upstreams:\n  secure:\n    servers: [" + servers + "]\n    tls:\n" + tls_lines;
    yaml += "routes:\n  - name: all\n    match: { path_prefix: / }\n    upstream: secure\n";
    return yaml;
  }

  double tls_errors() const {
    return metric(front_ports_.admin, "gateway_upstream_errors_total",
                  {R"(upstream="secure")", R"(kind="tls")"});
  }

  issued_certificate front_client_;
  std::optional<gateway_process> back_;
  e2e_ports front_ports_;
};

TEST_F(upstream_tls_test, a_verified_upstream_is_used_with_a_client_certificate_and_pooled) {
  // Between front and back, a relay that counts the TCP connections front opens.
  fault_proxy relay{ports_.listen};
  gateway_process front{gateway_binary(),
                        // Only the wildcard certificate covers this name: SNI must have chosen it.
                        front_config("      ca: " + pki_.ca_file() +
                                         "\n      server_name: svc.example.org\n      cert: " +
                                         front_client_.cert_file + "\n      key: " +
                                         front_client_.key_file + "\n",
                                     "127.0.0.1:" + std::to_string(relay.port()))};
  front.wait_ready(front_ports_.admin);
  for (int i = 0; i < 3; ++i) {
    client_connection c{front_ports_.listen};
    c.send("GET /hello HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(c.read_reply().status, 200) << i;
  }
  const auto seen = upstream_.requests();
  ASSERT_EQ(seen.size(), 3u);
  // back saw front come over TLS with front's certificate.
  EXPECT_EQ(seen[0].header("X-Forwarded-Client-Cert"),
            "Hash=" + front_client_.sha256 + ";Subject=\"CN=front-gateway,O=gateway tests\"");
  EXPECT_EQ(tls_errors(), 0);
  // One TLS connection from front's pool carried all three.
  EXPECT_EQ(relay.accepted(), 1u);
  EXPECT_EQ(metric(ports_.admin, "gateway_connections_active"), 1);
}

TEST_F(upstream_tls_test, a_certificate_that_does_not_verify_is_502_counted_as_tls) {
  test_pki other{"someone else's CA"};
  struct case_t {
    std::string what, tls_lines;
  };
  for (const auto& [what, tls_lines] :
       {case_t{"another CA", "      ca: " + other.ca_file() + "\n"},
        case_t{"another name",
               "      ca: " + pki_.ca_file() + "\n      server_name: db.example.com\n"},
        // The server's host as written (127.0.0.1) is not in back's certificate either.
        case_t{"the address", "      ca: " + pki_.ca_file() + "\n"}}) {
    gateway_process front{gateway_binary(), front_config(tls_lines)};
    front.wait_ready(front_ports_.admin);
    const auto reply = request(front_ports_.listen, "GET", "/hello");
    EXPECT_EQ(reply.status, 502) << what;
    EXPECT_NE(reply.body.find("TLS to the upstream failed"), std::string::npos) << reply.body;
    EXPECT_EQ(tls_errors(), 1) << what;
  }
  EXPECT_TRUE(upstream_.requests().empty());
}

TEST_F(upstream_tls_test, a_server_whose_certificate_does_not_verify_is_skipped_and_ejected) {
  // An impostor: a gateway like back, on its own ports, with a certificate for the same name
  // from another CA.
  test_pki other{"someone else's CA"};
  const auto forged = other.issue({"api.example.com", {"api.example.com"}});
  e2e_ports impostor_ports;
  std::string yaml = config("optional", forged.cert_file, forged.key_file);
  for (const auto& [from, to] : {std::pair{ports_.listen, impostor_ports.listen},
                                 std::pair{ports_.admin, impostor_ports.admin}}) {
    const auto at = yaml.find("127.0.0.1:" + std::to_string(from));
    ASSERT_NE(at, std::string::npos);
    yaml.replace(at, 10 + std::to_string(from).size(), "127.0.0.1:" + std::to_string(to));
  }
  gateway_process impostor{gateway_binary(), yaml};
  impostor.wait_ready(impostor_ports.admin);
  gateway_process front{
      gateway_binary(),
      front_config("      ca: " + pki_.ca_file() + "\n      server_name: api.example.com\n" +
                       "    eject_after_failures: 2\n    eject_for: 1m\n",
                   "127.0.0.1:" + std::to_string(impostor_ports.listen) + ", 127.0.0.1:" +
                       std::to_string(ports_.listen))};
  front.wait_ready(front_ports_.admin);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(request(front_ports_.listen, "GET", "/hello").status, 200) << i;
  EXPECT_EQ(upstream_.requests().size(), 10u);  // all through back
  // Counted until two failures ejected it.
  EXPECT_GE(tls_errors(), 1);
  EXPECT_LE(tls_errors(), 2);
}

TEST_F(upstream_tls_test, an_upstream_refusing_the_gateways_certificate_is_502_counted_as_tls) {
  // TLS 1.3 (what the two gateways agree on): the refusal comes after the client's side of the
  // handshake is done, on the first read of the response. It is TLS, not a broken reply.
  back_.reset();
  back_.emplace(gateway_binary(), config("required"));
  back_->wait_ready(ports_.admin);
  gateway_process front{gateway_binary(), front_config("      ca: " + pki_.ca_file() +
                                                       "\n      server_name: api.example.com\n")};
  front.wait_ready(front_ports_.admin);
  const auto reply = request(front_ports_.listen, "GET", "/hello");
  EXPECT_EQ(reply.status, 502);
  EXPECT_NE(reply.body.find("TLS to the upstream failed"), std::string::npos) << reply.body;
  EXPECT_EQ(tls_errors(), 1);
  EXPECT_TRUE(upstream_.requests().empty());
}

TEST_F(upstream_tls_test, verify_false_accepts_any_certificate) {
  test_pki other{"someone else's CA"};
  gateway_process front{gateway_binary(),
                        front_config("      ca: " + other.ca_file() + "\n      verify: false\n")};
  front.wait_ready(front_ports_.admin);
  EXPECT_EQ(request(front_ports_.listen, "GET", "/hello").status, 200);
  EXPECT_EQ(tls_errors(), 0);
}

}  // namespace
