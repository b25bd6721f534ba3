// The gateway's configuration as plain, immutable structs with the defaults of SPEC section 3.
// config/loader.hpp fills them from YAML; nothing here knows about YAML.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw::config {

using duration = std::chrono::milliseconds;
using namespace std::chrono_literals;

// host:port as written; host is an IP literal or a name, resolved when a snapshot is built.
struct endpoint {
  std::string host;
  std::uint16_t port = 0;

  std::string to_string() const;  // "1.2.3.4:80", "[::1]:80"
  bool operator==(const endpoint&) const = default;
};

// TLS (SPEC 13): file paths as written; the loader checks the files, tls/ builds the contexts.
enum class tls_version { v1_2, v1_3 };
enum class client_auth { none, optional, required };

struct tls_certificate {
  std::string cert;  // PEM: the certificate, then its chain
  std::string key;   // PEM private key
  // Lower case; "*.example.com" matches one label. The first certificate is the default for
  // names none lists (and for clients that send no SNI).
  std::vector<std::string> server_names;
};

struct server_tls {
  std::vector<tls_certificate> certificates;  // at least one
  tls_version min_version = tls_version::v1_2;
  std::string client_ca;  // PEM bundle; empty: no client certificate is asked for
  client_auth auth = client_auth::none;  // YAML: client_auth; with client_ca, default optional
};

struct upstream_tls {
  std::string ca;           // PEM bundle; empty: the system's store
  std::string server_name;  // SNI and the name verified; empty: each server's host
  bool verify = true;
  std::string cert;  // client certificate for upstream mTLS; empty: none
  std::string key;
};

struct server_settings {
  endpoint listen{"0.0.0.0", 8080};
  unsigned workers = 0;  // 0 = one per CPU core
  std::size_t max_connections = 10000;
  duration header_timeout = 10s;
  duration idle_timeout = 60s;
  std::size_t max_header_bytes = 16 * 1024;
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;  // 0 = no limit
  duration drain_timeout = 15s;
  std::string log_level = "info";
  bool access_log = true;
  // Reload when the file, or what it links to, changes (a mounted ConfigMap); SIGHUP still works.
  bool watch_config = false;
  std::optional<server_tls> tls;  // absent: plain HTTP
};

struct admin_settings {
  endpoint listen{"127.0.0.1", 9901};
};

struct upstream {
  std::string name;
  std::vector<endpoint> servers;
  duration connect_timeout = 2s;
  duration timeout = 30s;  // until the response head arrives; also between two body reads
  std::size_t max_idle_per_server = 64;
  unsigned eject_after_failures = 3;
  duration eject_for = 10s;
  std::optional<upstream_tls> tls;  // absent: plain HTTP to the servers
};

struct route_match {
  // At most one of the three path matchers; none matches every path.
  std::optional<std::string> path;
  std::optional<std::string> path_prefix;
  std::optional<std::string> path_regex;
  std::vector<std::string> methods;  // upper case; empty = any
  std::optional<std::string> host;   // lower case, without port
};

struct identity_settings {
  // CIDRs ("10.0.0.0/8", "::1/128"; a bare address = /32 or /128). The loader stores them in
  // canonical form: "192.168.1.7" -> "192.168.1.7/32", "10.1.2.3/8" -> "10.0.0.0/8".
  std::vector<std::string> trusted_proxies;
  std::string forwarded_header = "X-Forwarded-For";
  std::string api_key_header = "X-API-Key";
};

struct consumer {
  std::string name;
  std::string key_sha256;  // lower-case hex; computed at load time when the file gives `key`
  std::string cert_sha256;  // lower-case hex: a client certificate's SHA-256 (of its DER)
  std::string tier;        // "" when none
};

enum class failure_mode { open, closed };
enum class store_backend { memory, redis, redis_cluster };
std::string_view to_string(store_backend backend);  // as in the YAML: "memory", "redis", ...

struct redis_settings {
  endpoint address{"127.0.0.1", 6379};
  std::vector<endpoint> nodes;  // redis_cluster seed nodes
  std::string username;
  std::string password_env;     // name of the environment variable holding the password
  unsigned database = 0;
  std::string key_prefix = "rl:";
  duration connect_timeout = 1s;
  duration command_timeout = 50ms;
  unsigned connections_per_worker = 1;
};

// storage.lease (SPEC 12): a worker takes several units of a hot key in one store call.
struct lease_settings {
  std::uint64_t max_units = 64;  // most units one worker holds for one key
  duration max_duration = 50ms;  // most time a lease lives (windows: also the window's end)
};

struct storage_settings {
  store_backend backend = store_backend::memory;
  std::optional<lease_settings> lease;           // absent: every check goes to the store
  failure_mode on_failure = failure_mode::open;  // YAML: failure_mode
  bool local_cache = true;
  std::size_t memory_max_keys = 1'000'000;       // YAML: memory.max_keys
  redis_settings redis;
};

enum class limit_algorithm { gcra, token_bucket, sliding_window, sliding_log, fixed_window };

// One part of a limit's key. For header and query parts `name` is the header (lower-cased) or
// query parameter name.
struct key_part {
  enum kind_t {
    client_ip, api_key, consumer, tier, route, method, path, header, query,
    client_cert  // the verified client certificate's SHA-256 fingerprint (TLS with client_ca)
  } kind;
  std::string name;
  bool operator==(const key_part&) const = default;
};

struct limit_override {
  // `when`: every condition given must hold. api_key is stored hashed (lower-case hex SHA-256).
  // What the override leaves out comes from the limit; a burst unset on both is the effective
  // requests. The loader checks the combined values (cost <= capacity, capacity x window <= 2^53).
  std::optional<std::string> consumer;
  std::optional<std::string> tier;
  std::optional<std::string> api_key_sha256;
  std::optional<std::uint64_t> requests;
  std::optional<duration> window;
  std::optional<std::uint64_t> burst;
};

struct limit {
  std::string name;
  std::vector<key_part> key;
  limit_algorithm algorithm = limit_algorithm::gcra;
  std::uint64_t requests = 0;
  duration window{0};
  std::optional<std::uint64_t> burst;  // gcra and token_bucket only; default = requests
  std::uint64_t cost = 1;
  bool lease = true;  // false: never leased, even with storage.lease
  std::vector<limit_override> overrides;  // first match wins
};

enum class auth_mode { none, optional, required };

struct route {
  std::string name;
  route_match match;
  std::string upstream;
  bool strip_prefix = false;  // only with match.path_prefix
  auth_mode auth = auth_mode::none;
  std::optional<failure_mode> on_failure;  // YAML: failure_mode; unset = storage.failure_mode
  bool shadow = false;
  bool ietf_headers = true;    // YAML: headers: [ietf, legacy]
  bool legacy_headers = true;
  std::vector<limit> limits;   // names unique within the route
};

// The Envoy rate limit service (SPEC 11): its listener and the domains of its files.
// Envoy's RateLimitResponse.RateLimit.Unit, in its numbering; `unknown` for a window of ours
// that is no whole unit.
enum class rls_unit { unknown, second, minute, hour, day, month, year, week };

struct rls_rate_limit {
  std::string name;                 // optional; what `replaces` refers to
  bool unlimited = false;           // OK without counting
  limit_algorithm algorithm = limit_algorithm::fixed_window;
  std::uint64_t requests = 0;       // requests_per_unit
  duration window{0};               // the unit's length, or `window`
  rls_unit unit = rls_unit::unknown;  // as Envoy is told in current_limit
  std::optional<std::uint64_t> burst;
  std::vector<std::string> replaces;  // names of limits this one replaces when both match
  bool lease = true;                  // false: never leased (storage.lease)
};

// One entry of a domain's tree: a key, optionally a value (a trailing '*' matches a prefix).
struct rls_descriptor {
  std::string key;
  std::optional<std::string> value;
  std::optional<rls_rate_limit> rate_limit;
  bool shadow_mode = false;
  std::vector<rls_descriptor> descriptors;
  int line = 0;  // where it starts, for messages
};

struct rls_domain {
  std::string domain;
  std::string file;  // where it was read from
  std::vector<rls_descriptor> descriptors;
};

struct rls_settings {
  endpoint listen{"127.0.0.1", 8081};
  std::vector<std::string> config;  // files, or folders of *.yaml / *.yml, as written
  failure_mode on_failure = failure_mode::open;  // YAML: failure_mode
  bool ietf_headers = true;                      // YAML: headers: [ietf, legacy]
  bool legacy_headers = false;
  std::vector<rls_domain> domains;  // one per file, names unique
};

struct gateway_config {
  server_settings server;
  admin_settings admin;
  identity_settings identity;
  std::vector<consumer> consumers;  // names and keys unique
  storage_settings storage;
  std::vector<upstream> upstreams;  // in file order; names are unique
  std::vector<route> routes;        // first match wins; names are unique
  std::optional<rls_settings> rls;  // absent: no gRPC listener

  const upstream* find_upstream(std::string_view name) const;
};

}  // namespace gw::config
