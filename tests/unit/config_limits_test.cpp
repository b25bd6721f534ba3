// The YAML loader for identity, consumers, storage and route limits (SPEC section 3): defaults,
// the SPEC's example, and every problem with its exact position. Each YAML text starts with a
// newline, so its first key is on line 2.
#include "config/loader.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace gw::config {
namespace {

using namespace std::chrono_literals;

// SHA-256 of "1", the key of the SPEC's example consumer.
constexpr std::string_view sha256_of_1 =
    "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";

std::string list_problems(const load_result& result) {
  std::string out;
  for (const problem& p : result.problems) out += "\n  " + format_problem("test.yaml", p);
  return out.empty() ? "\n  (no problems)" : out;
}

// Passes when a problem of the given kind sits at line:column and its message contains `text`.
::testing::AssertionResult has(const load_result& result, bool warning, int line, int column,
                               std::string_view text) {
  for (const problem& p : result.problems) {
    if (p.warning == warning && p.line == line && p.column == column &&
        p.message.find(text) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure()
         << "no " << (warning ? "warning" : "error") << " at " << line << ":" << column
         << " containing \"" << text << "\"; got:" << list_problems(result);
}

::testing::AssertionResult has_error(const load_result& result, int line, int column,
                                     std::string_view text) {
  return has(result, false, line, column, text);
}

::testing::AssertionResult has_warning(const load_result& result, int line, int column,
                                       std::string_view text) {
  return has(result, true, line, column, text);
}

// A file that must fail with exactly one problem, at line:column, whose message contains `text`.
void expect_only_error(std::string_view yaml, int line, int column, std::string_view text) {
  load_result result = load_string(yaml);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 1u) << list_problems(result);
  EXPECT_TRUE(has_error(result, line, column, text));
}

const gateway_config& expect_valid(const load_result& result) {
  static const gateway_config none;
  EXPECT_TRUE(result.ok()) << list_problems(result);
  EXPECT_TRUE(result.problems.empty()) << list_problems(result);
  return result.ok() ? *result.config : none;
}

// Routes in these tests share one upstream, defined on the first line of each YAML text.
constexpr std::string_view upstream_line = "\nupstreams: { u: { servers: [127.0.0.1:1] } }\n";

std::string with_upstream(std::string_view rest) {
  return std::string{upstream_line} + std::string{rest};
}

// --- defaults ----------------------------------------------------------------------------------

TEST(config_limits, empty_file_gives_the_new_defaults) {
  load_result result = load_string("{}\n");
  const gateway_config& c = expect_valid(result);
  EXPECT_TRUE(c.identity.trusted_proxies.empty());
  EXPECT_EQ(c.identity.forwarded_header, "X-Forwarded-For");
  EXPECT_EQ(c.identity.api_key_header, "X-API-Key");
  EXPECT_TRUE(c.consumers.empty());
  EXPECT_EQ(c.storage.backend, store_backend::memory);
  EXPECT_EQ(c.storage.on_failure, failure_mode::open);
  EXPECT_TRUE(c.storage.local_cache);
  EXPECT_EQ(c.storage.memory_max_keys, 1'000'000u);
  const redis_settings& r = c.storage.redis;
  EXPECT_EQ(r.address, (endpoint{"127.0.0.1", 6379}));
  EXPECT_TRUE(r.nodes.empty());
  EXPECT_EQ(r.username, "");
  EXPECT_EQ(r.password_env, "");
  EXPECT_EQ(r.database, 0u);
  EXPECT_EQ(r.key_prefix, "rl:");
  EXPECT_EQ(r.connect_timeout, 1s);
  EXPECT_EQ(r.command_timeout, 50ms);
  EXPECT_EQ(r.connections_per_worker, 1u);
}

TEST(config_limits, empty_sections_keep_defaults) {
  load_result result = load_string(R"yaml(
identity:
consumers:
storage:
  memory:
  redis:
)yaml");
  const gateway_config& c = expect_valid(result);
  EXPECT_EQ(c.identity.forwarded_header, "X-Forwarded-For");
  EXPECT_EQ(c.storage.memory_max_keys, 1'000'000u);
  EXPECT_EQ(c.storage.redis.key_prefix, "rl:");
}

TEST(config_limits, route_and_limit_defaults) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    limits:
      - name: l
        key: [client_ip]
        requests: 10
        window: 1s
)yaml"));
  const gateway_config& c = expect_valid(result);
  ASSERT_EQ(c.routes.size(), 1u);
  const route& r = c.routes[0];
  EXPECT_EQ(r.auth, auth_mode::none);
  EXPECT_FALSE(r.on_failure);
  EXPECT_FALSE(r.shadow);
  EXPECT_TRUE(r.ietf_headers);
  EXPECT_TRUE(r.legacy_headers);
  ASSERT_EQ(r.limits.size(), 1u);
  const limit& l = r.limits[0];
  EXPECT_EQ(l.name, "l");
  EXPECT_EQ(l.key, (std::vector<key_part>{{key_part::client_ip, ""}}));
  EXPECT_EQ(l.algorithm, limit_algorithm::gcra);
  EXPECT_EQ(l.requests, 10u);
  EXPECT_EQ(l.window, 1s);
  EXPECT_FALSE(l.burst);
  EXPECT_EQ(l.cost, 1u);
  EXPECT_TRUE(l.overrides.empty());
}

// --- the SPEC's example ------------------------------------------------------------------------

// SPEC section 3's example as written; only the plain-text key's warning is expected.
TEST(config_limits, spec_example_is_read_into_the_structs) {
  load_result result = load_string(R"yaml(
server:
  listen: 0.0.0.0:8080          # host:port, [::]:8080 for IPv6
  workers: 0                    # threads; 0 = one per CPU core
  max_connections: 10000        # beyond this, new connections are refused
  header_timeout: 10s           # whole request head must arrive in this time (slowloris guard)
  idle_timeout: 60s             # keep-alive idle limit, client side
  max_header_bytes: 16KiB       # larger head -> 431
  max_body_bytes: 10MiB         # larger body -> 413; 0 = no limit
  drain_timeout: 15s
  log_level: info
  access_log: true              # one JSON line per request on stdout

admin:
  listen: 127.0.0.1:9901        # /metrics /healthz /readyz; keep it off the public network

identity:
  trusted_proxies: [127.0.0.1/32, 10.0.0.0/8]   # CIDRs; empty list = trust no forwarded header
  forwarded_header: X-Forwarded-For
  api_key_header: X-API-Key

consumers:                      # known API keys; the key itself never appears in logs or Redis
  - name: acme
    key_sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b
    tier: gold
  - name: dev-laptop
    key: "plain-text-key"       # allowed, but --check-config warns

storage:
  backend: memory               # memory | redis | redis_cluster
  failure_mode: open            # open | closed; what to do when the store cannot answer
  local_cache: true             # remember keys that are over their limit, skip the store until reset
  memory:
    max_keys: 1000000           # past this, least recently used keys are evicted (and counted)
  redis:
    address: 127.0.0.1:6379     # backend: redis
    nodes: [127.0.0.1:7000, 127.0.0.1:7001]   # backend: redis_cluster (seed nodes)
    username: ""
    password_env: REDIS_PASSWORD   # read the password from this environment variable
    database: 0
    key_prefix: "rl:"
    connect_timeout: 1s
    command_timeout: 50ms       # past this the check counts as a store failure
    connections_per_worker: 1

upstreams:
  users:
    servers: [127.0.0.1:9000, 127.0.0.1:9001]   # round robin over healthy servers
    connect_timeout: 2s
    timeout: 30s                # until the response head arrives
    max_idle_per_server: 64     # kept-alive connections, per worker
    eject_after_failures: 3     # consecutive connect failures take a server out ...
    eject_for: 10s              # ... for this long

routes:                         # first match wins
  - name: login
    match:
      path_prefix: /login       # or path: /exact, or path_regex: ^/v[0-9]+/login$
      methods: [POST]           # optional
      host: api.example.com     # optional, compared without port, case-insensitive
    upstream: users
    strip_prefix: false
    auth: none                  # none | optional | required (required: 401 without a known key)
    failure_mode: closed        # overrides storage.failure_mode for this route
    shadow: false               # evaluate and count limits, never reject (dry run)
    headers: [ietf, legacy]     # which rate-limit headers to send; [] for none
    limits:
      - name: per_ip
        key: [client_ip]        # parts: client_ip, api_key, consumer, tier, route, method, path,
                                # header:NAME, query:NAME
        algorithm: gcra         # gcra (default) | token_bucket | sliding_window | sliding_log |
                                # fixed_window
        requests: 5
        window: 1m
        burst: 5                # gcra and token_bucket only; default = requests
        cost: 1                 # units taken per request
      - name: per_key
        key: [consumer]
        algorithm: sliding_window
        requests: 1000
        window: 1h
        overrides:              # first matching override replaces requests/window/burst
          - when: { tier: gold }
            requests: 100000
          - when: { consumer: acme }
            requests: 5000
)yaml");
  ASSERT_TRUE(result.ok()) << list_problems(result);
  ASSERT_EQ(result.problems.size(), 1u) << list_problems(result);
  EXPECT_TRUE(has_warning(result, 27, 10,
                          "consumers[1].key: plain-text API key; store its SHA-256 as key_sha256 "
                          "instead"));
  const gateway_config& c = *result.config;

  EXPECT_EQ(c.identity.trusted_proxies, (std::vector<std::string>{"127.0.0.1/32", "10.0.0.0/8"}));
  EXPECT_EQ(c.identity.forwarded_header, "X-Forwarded-For");
  EXPECT_EQ(c.identity.api_key_header, "X-API-Key");

  ASSERT_EQ(c.consumers.size(), 2u);
  EXPECT_EQ(c.consumers[0].name, "acme");
  EXPECT_EQ(c.consumers[0].key_sha256, sha256_of_1);
  EXPECT_EQ(c.consumers[0].tier, "gold");
  EXPECT_EQ(c.consumers[1].name, "dev-laptop");
  // sha256("plain-text-key")
  EXPECT_EQ(c.consumers[1].key_sha256,
            "15e2e9fab6e429b5902735c675262847cbdc93dc649fd51d6c9ff682407b183c");
  EXPECT_EQ(c.consumers[1].tier, "");

  const storage_settings& s = c.storage;
  EXPECT_EQ(s.backend, store_backend::memory);
  EXPECT_EQ(s.on_failure, failure_mode::open);
  EXPECT_TRUE(s.local_cache);
  EXPECT_EQ(s.memory_max_keys, 1'000'000u);
  EXPECT_EQ(s.redis.address, (endpoint{"127.0.0.1", 6379}));
  EXPECT_EQ(s.redis.nodes, (std::vector<endpoint>{{"127.0.0.1", 7000}, {"127.0.0.1", 7001}}));
  EXPECT_EQ(s.redis.username, "");
  EXPECT_EQ(s.redis.password_env, "REDIS_PASSWORD");
  EXPECT_EQ(s.redis.database, 0u);
  EXPECT_EQ(s.redis.key_prefix, "rl:");
  EXPECT_EQ(s.redis.connect_timeout, 1s);
  EXPECT_EQ(s.redis.command_timeout, 50ms);
  EXPECT_EQ(s.redis.connections_per_worker, 1u);

  ASSERT_EQ(c.routes.size(), 1u);
  const route& login = c.routes[0];
  EXPECT_EQ(login.name, "login");
  EXPECT_EQ(login.auth, auth_mode::none);
  EXPECT_EQ(login.on_failure, failure_mode::closed);
  EXPECT_FALSE(login.shadow);
  EXPECT_TRUE(login.ietf_headers);
  EXPECT_TRUE(login.legacy_headers);
  ASSERT_EQ(login.limits.size(), 2u);

  const limit& per_ip = login.limits[0];
  EXPECT_EQ(per_ip.name, "per_ip");
  EXPECT_EQ(per_ip.key, (std::vector<key_part>{{key_part::client_ip, ""}}));
  EXPECT_EQ(per_ip.algorithm, limit_algorithm::gcra);
  EXPECT_EQ(per_ip.requests, 5u);
  EXPECT_EQ(per_ip.window, 1min);
  EXPECT_EQ(per_ip.burst, 5u);
  EXPECT_EQ(per_ip.cost, 1u);
  EXPECT_TRUE(per_ip.overrides.empty());

  const limit& per_key = login.limits[1];
  EXPECT_EQ(per_key.name, "per_key");
  EXPECT_EQ(per_key.key, (std::vector<key_part>{{key_part::consumer, ""}}));
  EXPECT_EQ(per_key.algorithm, limit_algorithm::sliding_window);
  EXPECT_EQ(per_key.requests, 1000u);
  EXPECT_EQ(per_key.window, 1h);
  EXPECT_FALSE(per_key.burst);
  ASSERT_EQ(per_key.overrides.size(), 2u);
  const limit_override& gold = per_key.overrides[0];
  EXPECT_EQ(gold.tier, "gold");
  EXPECT_FALSE(gold.consumer);
  EXPECT_FALSE(gold.api_key_sha256);
  EXPECT_EQ(gold.requests, 100000u);
  EXPECT_FALSE(gold.window);
  EXPECT_FALSE(gold.burst);
  const limit_override& acme = per_key.overrides[1];
  EXPECT_EQ(acme.consumer, "acme");
  EXPECT_FALSE(acme.tier);
  EXPECT_EQ(acme.requests, 5000u);
}

TEST(config_limits, unknown_keys_are_errors_in_every_new_section) {
  load_result result = load_string(with_upstream(R"yaml(identity:
  trusted_proxy: []
consumers:
  - name: a
    key_sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b
    tiers: gold
storage:
  cache: true
  memory: { maxkeys: 1 }
  redis: { adress: 127.0.0.1:6379 }
routes:
  - name: r
    upstream: u
    limit: []
    limits:
      - name: l
        key: [client_ip]
        requests: 1
        window: 1s
        brust: 2
        overrides:
          - when: { consumer: a, teir: x }
            requests: 2
            windw: 1s
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 9u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 4, 3, "unknown key \"trusted_proxy\" in identity"));
  EXPECT_TRUE(has_error(result, 8, 5, "unknown key \"tiers\" in consumers[0]"));
  EXPECT_TRUE(has_error(result, 10, 3, "unknown key \"cache\" in storage"));
  EXPECT_TRUE(has_error(result, 11, 13, "unknown key \"maxkeys\" in storage.memory"));
  EXPECT_TRUE(has_error(result, 12, 12, "unknown key \"adress\" in storage.redis"));
  EXPECT_TRUE(has_error(result, 16, 5, "unknown key \"limit\" in routes[0]"));
  EXPECT_TRUE(has_error(result, 22, 9, "unknown key \"brust\" in routes[0].limits[0]"));
  EXPECT_TRUE(
      has_error(result, 24, 34, "unknown key \"teir\" in routes[0].limits[0].overrides[0].when"));
  EXPECT_TRUE(
      has_error(result, 26, 13, "unknown key \"windw\" in routes[0].limits[0].overrides[0]"));
}

// --- identity ----------------------------------------------------------------------------------

TEST(config_limits, trusted_proxies_are_stored_as_canonical_cidrs) {
  load_result result = load_string(R"yaml(
identity:
  trusted_proxies:
    - 127.0.0.1/32
    - 10.0.0.0/8
    - 192.168.1.7
    - "::1"
    - 2001:DB8::/32
    - ::ffff:10.0.0.0/104
    - 0.0.0.0/0
  forwarded_header: X-Real-IP
  api_key_header: Authorization
)yaml");
  const gateway_config& c = expect_valid(result);
  EXPECT_EQ(c.identity.trusted_proxies,
            (std::vector<std::string>{"127.0.0.1/32", "10.0.0.0/8", "192.168.1.7/32", "::1/128",
                                      "2001:db8::/32", "::ffff:10.0.0.0/104", "0.0.0.0/0"}));
  EXPECT_EQ(c.identity.forwarded_header, "X-Real-IP");
  EXPECT_EQ(c.identity.api_key_header, "Authorization");
}

TEST(config_limits, trusted_proxies_must_be_addresses_or_cidrs) {
  load_result result = load_string(R"yaml(
identity:
  trusted_proxies:
    - 10.0.0.0/33
    - 10.0.0.0/
    - 10.1
    - fe80::1%eth0/64
    - ::1/129
    - 10.0.0.0/8/8
    - 10.0.0.0/0008
    - localhost
    - [10.0.0.0/8]
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 9u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 4, 7,
                        "identity.trusted_proxies[0]: expected an IP address or CIDR (10.0.0.0/8, "
                        "2001:db8::/32, 127.0.0.1), got \"10.0.0.0/33\""));
  EXPECT_TRUE(has_error(result, 5, 7, "identity.trusted_proxies[1]: expected an IP address"));
  EXPECT_TRUE(has_error(result, 6, 7, "got \"10.1\""));
  EXPECT_TRUE(has_error(result, 7, 7, "got \"fe80::1%eth0/64\""));
  EXPECT_TRUE(has_error(result, 8, 7, "got \"::1/129\""));
  EXPECT_TRUE(has_error(result, 9, 7, "got \"10.0.0.0/8/8\""));
  EXPECT_TRUE(has_error(result, 10, 7, "got \"10.0.0.0/0008\""));
  EXPECT_TRUE(has_error(result, 11, 7, "got \"localhost\""));
  EXPECT_TRUE(has_error(result, 12, 7,
                        "identity.trusted_proxies[8]: expected an IP address or "
                        "CIDR (10.0.0.0/8, 2001:db8::/32, 127.0.0.1), got a list"));

  expect_only_error("\nidentity:\n  trusted_proxies: 10.0.0.0/8\n", 3, 20,
                    "identity.trusted_proxies: expected a list, got \"10.0.0.0/8\"");
}

TEST(config_limits, host_bits_in_a_cidr_are_a_warning) {
  load_result result = load_string(R"yaml(
identity:
  trusted_proxies: [10.1.2.3/8, "2001:db8::1/32"]
)yaml");
  ASSERT_TRUE(result.ok()) << list_problems(result);
  EXPECT_EQ(result.problems.size(), 2u) << list_problems(result);
  EXPECT_TRUE(has_warning(result, 3, 21,
                          "identity.trusted_proxies[0]: \"10.1.2.3/8\" has host bits set; it "
                          "means 10.0.0.0/8"));
  EXPECT_TRUE(has_warning(result, 3, 33, "it means 2001:db8::/32"));
  EXPECT_EQ(result.config->identity.trusted_proxies,
            (std::vector<std::string>{"10.0.0.0/8", "2001:db8::/32"}));
}

TEST(config_limits, identity_header_names_must_be_tokens) {
  load_result result = load_string(R"yaml(
identity:
  forwarded_header: "X Forwarded For"
  api_key_header: ""
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 2u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 3, 21,
                        "identity.forwarded_header: \"X Forwarded For\" is not a valid HTTP "
                        "header name"));
  EXPECT_TRUE(
      has_error(result, 4, 19, "identity.api_key_header: \"\" is not a valid HTTP header name"));
}

// --- consumers ---------------------------------------------------------------------------------

TEST(config_limits, consumer_keys_are_stored_as_lower_case_sha256) {
  load_result result = load_string(R"yaml(
consumers:
  - name: plain
    key: "1"
  - name: upper
    key_sha256: 6B86B273FF34FCE19D6B804EFF5A3F5747ADA4EAA22F1D49C01E52DDB7875B4C
    tier: silver
)yaml");
  ASSERT_TRUE(result.ok()) << list_problems(result);
  ASSERT_EQ(result.problems.size(), 1u) << list_problems(result);
  EXPECT_TRUE(has_warning(result, 4, 10,
                          "consumers[0].key: plain-text API key; store its SHA-256 as key_sha256 "
                          "instead"));
  const gateway_config& c = *result.config;
  ASSERT_EQ(c.consumers.size(), 2u);
  EXPECT_EQ(c.consumers[0].key_sha256, sha256_of_1);
  EXPECT_EQ(c.consumers[0].tier, "");
  EXPECT_EQ(c.consumers[1].key_sha256,
            "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4c");
  EXPECT_EQ(c.consumers[1].tier, "silver");
}

TEST(config_limits, consumer_needs_a_name_and_exactly_one_key) {
  load_result result = load_string(R"yaml(
consumers:
  - key_sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b
  - name: nokey
    tier: gold
  - name: both
    key: "2"
    key_sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4c
  - name: ""
    key_sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4d
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 5u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 3, 5, "missing required key \"name\" in consumers[0]"));
  EXPECT_TRUE(has_error(result, 4, 5,
                        "missing required key \"key_sha256\" (or \"key\", or \"cert_sha256\") in "
                        "consumers[1]"));
  EXPECT_TRUE(has_warning(result, 7, 10, "consumers[2].key: plain-text API key"));
  EXPECT_TRUE(has_error(result, 8, 5, "consumers[2]: only one of key, key_sha256 may be set"));
  EXPECT_TRUE(has_error(result, 9, 11, "consumers[3].name: must not be empty"));
}

TEST(config_limits, consumer_names_and_keys_are_unique) {
  load_result result = load_string(R"yaml(
consumers:
  - name: acme
    key: "1"
  - name: acme
    key_sha256: 0000000000000000000000000000000000000000000000000000000000000000
  - name: twin
    key_sha256: 6B86B273FF34FCE19D6B804EFF5A3F5747ADA4EAA22F1D49C01E52DDB7875B4B
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 3u) << list_problems(result);
  EXPECT_TRUE(has_warning(result, 4, 10, "consumers[0].key: plain-text API key"));
  EXPECT_TRUE(has_error(result, 5, 11,
                        "consumers[1].name: duplicate consumer name \"acme\" (first at line 3)"));
  EXPECT_TRUE(has_error(result, 8, 17,
                        "consumers[2].key_sha256: the same API key as consumers[0] (line 3)"));
}

TEST(config_limits, key_sha256_must_be_64_hex_digits) {
  load_result result = load_string(R"yaml(
consumers:
  - name: short
    key_sha256: 6b86b273ff34
  - name: not_hex
    key_sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4g
  - name: list
    key_sha256: [a]
  - name: empty_key
    key: ""
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 4u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 4, 17,
                        "consumers[0].key_sha256: expected 64 hexadecimal digits (a SHA-256), got "
                        "12 characters"));
  EXPECT_TRUE(has_error(result, 6, 17, "got 64 characters"));
  EXPECT_TRUE(has_error(result, 8, 17,
                        "consumers[2].key_sha256: expected 64 hexadecimal digits, got a list"));
  EXPECT_TRUE(has_error(result, 10, 10, "consumers[3].key: must not be empty"));
}

// Wherever an operator writes a key by mistake, the message does not repeat it.
TEST(config_limits, api_keys_never_appear_in_messages) {
  constexpr std::string_view secret = "hunter2-secret";
  load_result result = load_string(with_upstream(R"yaml(consumers:
  - hunter2-secret
  - name: wrong_field
    key_sha256: hunter2-secret
  - name: plain
    key: hunter2-secret
  - name: twice
    key: hunter2-secret
storage:
  redis:
    password_env: "hunter2-secret"
routes:
  - name: r
    upstream: u
    limits:
      - name: l
        key: [api_key]
        requests: 1
        window: 1s
        overrides:
          - when: hunter2-secret
            requests: 2
          - when: { api_key: hunter2-secret }
            requests: 3
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 8u) << list_problems(result);
  EXPECT_TRUE(
      has_error(result, 4, 5, "consumers[0]: expected a map with name, key_sha256 and tier"));
  EXPECT_TRUE(has_error(result, 6, 17, "consumers[1].key_sha256: expected 64 hexadecimal digits"));
  EXPECT_TRUE(has_warning(result, 8, 10, "consumers[2].key: plain-text API key"));
  EXPECT_TRUE(has_warning(result, 10, 10, "consumers[3].key: plain-text API key"));
  EXPECT_TRUE(
      has_error(result, 10, 10, "consumers[3].key: the same API key as consumers[2] (line 7)"));
  EXPECT_TRUE(has_error(
      result, 13, 19, "storage.redis.password_env: expected the name of an environment variable"));
  EXPECT_TRUE(has_error(result, 23, 19,
                        "routes[0].limits[0].overrides[0].when: expected a map with at least one "
                        "of consumer, tier, api_key"));
  EXPECT_TRUE(has_warning(result, 25, 30,
                          "routes[0].limits[0].overrides[1].when.api_key: plain-text API key; "));
  for (const problem& p : result.problems) {
    EXPECT_EQ(p.message.find(secret), std::string::npos) << p.message;
  }
}

// --- storage -----------------------------------------------------------------------------------

TEST(config_limits, storage_is_read_into_the_structs) {
  load_result result = load_string(R"yaml(
storage:
  backend: redis
  failure_mode: closed
  local_cache: false
  memory: { max_keys: 1 }
  redis:
    address: "[::1]:6380"
    nodes: [10.0.0.1:7000, redis-0.cluster:7001]
    username: gateway
    password_env: GW_REDIS_PASSWORD_2
    database: 1023
    key_prefix: ""
    connect_timeout: 250ms
    command_timeout: 5ms
    connections_per_worker: 64
)yaml");
  const gateway_config& c = expect_valid(result);
  const storage_settings& s = c.storage;
  EXPECT_EQ(s.backend, store_backend::redis);
  EXPECT_EQ(s.on_failure, failure_mode::closed);
  EXPECT_FALSE(s.local_cache);
  EXPECT_EQ(s.memory_max_keys, 1u);
  EXPECT_EQ(s.redis.address, (endpoint{"::1", 6380}));
  EXPECT_EQ(s.redis.nodes, (std::vector<endpoint>{{"10.0.0.1", 7000}, {"redis-0.cluster", 7001}}));
  EXPECT_EQ(s.redis.username, "gateway");
  EXPECT_EQ(s.redis.password_env, "GW_REDIS_PASSWORD_2");
  EXPECT_EQ(s.redis.database, 1023u);
  EXPECT_EQ(s.redis.key_prefix, "");
  EXPECT_EQ(s.redis.connect_timeout, 250ms);
  EXPECT_EQ(s.redis.command_timeout, 5ms);
  EXPECT_EQ(s.redis.connections_per_worker, 64u);
}

TEST(config_limits, empty_redis_strings_are_allowed) {
  load_result result = load_string(R"yaml(
storage:
  backend: redis
  redis:
    username:
    password_env: ""
    key_prefix:
)yaml");
  const gateway_config& c = expect_valid(result);
  EXPECT_EQ(c.storage.backend, store_backend::redis);
  EXPECT_EQ(c.storage.redis.username, "");
  EXPECT_EQ(c.storage.redis.password_env, "");
  EXPECT_EQ(c.storage.redis.key_prefix, "");
}

TEST(config_limits, bad_storage_values) {
  load_result result = load_string(R"yaml(
storage:
  backend: postgres
  failure_mode: maybe
  local_cache: yes
  memory:
    max_keys: 0
  redis:
    address: redis
    nodes: [127.0.0.1:7000, 127.0.0.1]
    username: [a]
    password_env: 1PASSWORD
    database: 1024
    key_prefix: "rl:{x}"
    connect_timeout: 0s
    command_timeout: 10
    connections_per_worker: 65
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 13u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 3, 12,
                        "storage.backend: expected one of memory, redis, redis_cluster, got "
                        "\"postgres\""));
  EXPECT_TRUE(has_error(result, 4, 17,
                        "storage.failure_mode: expected one of open, closed, got \"maybe\""));
  EXPECT_TRUE(has_error(result, 5, 16, "storage.local_cache: expected true or false"));
  EXPECT_TRUE(has_error(result, 7, 15, "storage.memory.max_keys: must be at least 1, got 0"));
  EXPECT_TRUE(has_error(result, 9, 14, "storage.redis.address: expected host:port"));
  EXPECT_TRUE(has_error(result, 10, 29, "storage.redis.nodes[1]: expected host:port"));
  EXPECT_TRUE(has_error(result, 11, 15, "storage.redis.username: expected a string, got a list"));
  EXPECT_TRUE(has_error(result, 12, 19,
                        "storage.redis.password_env: expected the name of an environment variable "
                        "(letters, digits and \"_\", not starting with a digit), not the password "
                        "itself"));
  EXPECT_TRUE(
      has_error(result, 13, 15, "storage.redis.database: must be between 0 and 1023, got 1024"));
  EXPECT_TRUE(
      has_error(result, 14, 17, "storage.redis.key_prefix: must not contain \"{\" or \"}\""));
  EXPECT_TRUE(has_error(result, 14, 17, "got \"rl:{x}\""));
  EXPECT_TRUE(has_error(result, 15, 22, "storage.redis.connect_timeout: must be greater than 0"));
  EXPECT_TRUE(has_error(result, 16, 22, "storage.redis.command_timeout: expected a duration"));
  EXPECT_TRUE(has_error(result, 17, 29,
                        "storage.redis.connections_per_worker: must be between 1 and 64, got 65"));

  expect_only_error("\nstorage:\n  redis:\n    connections_per_worker: 0\n", 4, 29,
                    "storage.redis.connections_per_worker: must be between 1 and 64, got 0");
  expect_only_error("\nstorage:\n  memory: 100\n", 3, 11,
                    "storage.memory: expected a map, got \"100\"");
}

TEST(config_limits, redis_cluster_needs_seed_nodes) {
  expect_only_error(R"yaml(
storage:
  backend: redis_cluster
  redis:
    address: 127.0.0.1:6379
)yaml",
                    3, 12,
                    "storage.backend: redis_cluster needs its seed nodes in storage.redis.nodes");
  expect_only_error(R"yaml(
storage:
  redis: { nodes: [] }
  backend: redis_cluster
)yaml",
                    4, 12, "storage.backend: redis_cluster needs its seed nodes");
  // SELECT is refused in cluster mode: better said at start than by every connection.
  expect_only_error(R"yaml(
storage:
  backend: redis_cluster
  redis: { nodes: [127.0.0.1:7000], database: 2 }
)yaml",
                    3, 12,
                    "storage.backend: a Redis Cluster has only database 0, "
                    "storage.redis.database is 2");
  // A listed but invalid node is reported once, as itself.
  expect_only_error(R"yaml(
storage:
  backend: redis_cluster
  redis: { nodes: [nowhere] }
)yaml",
                    4, 20, "storage.redis.nodes[0]: expected host:port");
  // Other backends do not need nodes.
  load_result redis = load_string("\nstorage:\n  backend: redis\n");
  expect_valid(redis);
}

// --- route keys --------------------------------------------------------------------------------

TEST(config_limits, route_keys_are_read) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: a
    upstream: u
    auth: required
    failure_mode: closed
    shadow: true
    headers: [legacy]
  - name: b
    upstream: u
    auth: optional
    failure_mode: open
    headers: [ietf]
  - name: c
    upstream: u
    headers: [legacy, ietf]
  - name: d
    upstream: u
    headers: []
)yaml"));
  const gateway_config& c = expect_valid(result);
  ASSERT_EQ(c.routes.size(), 4u);
  EXPECT_EQ(c.routes[0].auth, auth_mode::required);
  EXPECT_EQ(c.routes[0].on_failure, failure_mode::closed);
  EXPECT_TRUE(c.routes[0].shadow);
  EXPECT_FALSE(c.routes[0].ietf_headers);
  EXPECT_TRUE(c.routes[0].legacy_headers);
  EXPECT_EQ(c.routes[1].auth, auth_mode::optional);
  EXPECT_EQ(c.routes[1].on_failure, failure_mode::open);
  EXPECT_FALSE(c.routes[1].shadow);
  EXPECT_TRUE(c.routes[1].ietf_headers);
  EXPECT_FALSE(c.routes[1].legacy_headers);
  EXPECT_TRUE(c.routes[2].ietf_headers);
  EXPECT_TRUE(c.routes[2].legacy_headers);
  EXPECT_FALSE(c.routes[3].ietf_headers);
  EXPECT_FALSE(c.routes[3].legacy_headers);
}

TEST(config_limits, bad_route_keys) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    auth: yes
    failure_mode: fail
    shadow: sometimes
    headers: [ietf, draft, ietf]
    limits: { name: l }
  - name: s
    upstream: u
    headers: ietf
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 7u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 6, 11,
                        "routes[0].auth: expected one of none, optional, required, got \"yes\""));
  EXPECT_TRUE(has_error(result, 7, 19,
                        "routes[0].failure_mode: expected one of open, closed, got \"fail\""));
  EXPECT_TRUE(has_error(result, 8, 13, "routes[0].shadow: expected true or false"));
  EXPECT_TRUE(has_error(result, 9, 21,
                        "routes[0].headers[1]: expected one of ietf, legacy, got \"draft\""));
  EXPECT_TRUE(has_error(result, 9, 28, "routes[0].headers[2]: \"ietf\" is listed twice"));
  EXPECT_TRUE(has_error(result, 10, 13, "routes[0].limits: expected a list, got a map"));
  EXPECT_TRUE(has_error(result, 13, 14, "routes[1].headers: expected a list, got \"ietf\""));
}

TEST(config_limits, route_and_limit_names_are_identifiers) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: "log in"
    upstream: u
  - name: "a{b}"
    upstream: u
  - name: v1.login-x_Y
    upstream: u
    limits:
      - name: "per:ip"
        key: [client_ip]
        requests: 1
        window: 1s
      - name: ok.name-2_x
        key: [client_ip]
        requests: 1
        window: 1s
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 3u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 4, 11,
                        "routes[0].name: \"log in\" may contain only letters, digits, \"_\", \".\" "
                        "and \"-\""));
  EXPECT_TRUE(has_error(result, 6, 11, "routes[1].name: \"a{b}\" may contain only"));
  EXPECT_TRUE(has_error(result, 11, 15, "routes[2].limits[0].name: \"per:ip\" may contain only"));
}

// --- limits ------------------------------------------------------------------------------------

TEST(config_limits, limits_are_read_into_the_structs) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    limits:
      - name: tb
        key: [api_key, consumer, tier, route, method, path, header:X-Tenant-ID, query:Page]
        algorithm: token_bucket
        requests: 100
        window: 1s
        burst: 20
        cost: 2
      - name: sw
        key: [client_ip]
        algorithm: sliding_window
        requests: 10
        window: 5m
      - name: sl
        key: [client_ip]
        algorithm: sliding_log
        requests: 10
        window: 1h
        cost: 10
      - name: fw
        key: [client_ip]
        algorithm: fixed_window
        requests: 1
        window: 1d
      - name: gc
        key: [header:x-tenant-id, header:Authorization]
        algorithm: gcra
        requests: 3
        window: 250ms
        burst: 1
)yaml"));
  const gateway_config& c = expect_valid(result);
  ASSERT_EQ(c.routes.size(), 1u);
  const std::vector<limit>& limits = c.routes[0].limits;
  ASSERT_EQ(limits.size(), 5u);
  EXPECT_EQ(limits[0].key, (std::vector<key_part>{{key_part::api_key, ""},
                                                  {key_part::consumer, ""},
                                                  {key_part::tier, ""},
                                                  {key_part::route, ""},
                                                  {key_part::method, ""},
                                                  {key_part::path, ""},
                                                  {key_part::header, "x-tenant-id"},
                                                  {key_part::query, "Page"}}));
  EXPECT_EQ(limits[0].algorithm, limit_algorithm::token_bucket);
  EXPECT_EQ(limits[0].requests, 100u);
  EXPECT_EQ(limits[0].window, 1s);
  EXPECT_EQ(limits[0].burst, 20u);
  EXPECT_EQ(limits[0].cost, 2u);
  EXPECT_EQ(limits[1].algorithm, limit_algorithm::sliding_window);
  EXPECT_EQ(limits[1].window, 5min);
  EXPECT_EQ(limits[2].algorithm, limit_algorithm::sliding_log);
  EXPECT_EQ(limits[2].cost, 10u);
  EXPECT_EQ(limits[3].algorithm, limit_algorithm::fixed_window);
  EXPECT_EQ(limits[3].window, 24h);
  EXPECT_EQ(limits[4].algorithm, limit_algorithm::gcra);
  EXPECT_EQ(limits[4].key, (std::vector<key_part>{{key_part::header, "x-tenant-id"},
                                                  {key_part::header, "authorization"}}));
  EXPECT_EQ(limits[4].window, 250ms);
  EXPECT_EQ(limits[4].burst, 1u);
}

TEST(config_limits, limit_required_keys) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    limits:
      - key: [client_ip]
        requests: 1
        window: 1s
      - name: nothing
      - name: empty_key
        key: []
        requests: 1
        window: 1s
      - just_a_name
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 6u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 7, 9, "missing required key \"name\" in routes[0].limits[0]"));
  EXPECT_TRUE(has_error(result, 10, 9, "missing required key \"key\" in routes[0].limits[1]"));
  EXPECT_TRUE(has_error(result, 10, 9, "missing required key \"requests\" in routes[0].limits[1]"));
  EXPECT_TRUE(has_error(result, 10, 9, "missing required key \"window\" in routes[0].limits[1]"));
  EXPECT_TRUE(
      has_error(result, 12, 14, "routes[0].limits[2].key: a limit needs at least one key part"));
  EXPECT_TRUE(has_error(result, 15, 9, "routes[0].limits[3]: expected a map, got \"just_a_name\""));
}

TEST(config_limits, bad_key_parts) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    limits:
      - name: l
        requests: 1
        window: 1s
        key:
          - ip
          - "header:"
          - "header:X Y"
          - "query:"
          - "query:a=b"
          - client_ip:x
          - Client_IP
          - client_ip
          - client_ip
          - header:X-A
          - header:x-a
          - query:p
          - query:P
          - [consumer]
  - name: s
    upstream: u
    limits:
      - { name: l, key: client_ip, requests: 1, window: 1s }
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 11u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 11, 13,
                        "routes[0].limits[0].key[0]: unknown key part \"ip\"; expected client_ip, "
                        "api_key, consumer, tier, route, method, path, client_cert, header:NAME or "
                        "query:NAME"));
  EXPECT_TRUE(has_error(result, 12, 13,
                        "routes[0].limits[0].key[1]: \"header:\" needs a header name "
                        "(header:NAME)"));
  EXPECT_TRUE(has_error(result, 13, 13,
                        "routes[0].limits[0].key[2]: \"header:X Y\": \"X Y\" is not a valid "
                        "header name"));
  EXPECT_TRUE(has_error(result, 14, 13,
                        "routes[0].limits[0].key[3]: \"query:\" needs a query parameter name "
                        "(query:NAME)"));
  EXPECT_TRUE(has_error(result, 15, 13,
                        "routes[0].limits[0].key[4]: \"query:a=b\": \"a=b\" is not a valid query "
                        "parameter name"));
  EXPECT_TRUE(has_error(result, 16, 13, "key[5]: unknown key part \"client_ip:x\""));
  EXPECT_TRUE(has_error(result, 17, 13, "key[6]: unknown key part \"Client_IP\""));
  EXPECT_TRUE(
      has_error(result, 19, 13, "routes[0].limits[0].key[8]: \"client_ip\" is listed twice"));
  EXPECT_TRUE(
      has_error(result, 21, 13, "routes[0].limits[0].key[10]: \"header:x-a\" is listed twice"));
  EXPECT_TRUE(
      has_error(result, 24, 13, "routes[0].limits[0].key[13]: expected a key part, got a list"));
  EXPECT_TRUE(
      has_error(result, 28, 25, "routes[1].limits[0].key: expected a list, got \"client_ip\""));
}

TEST(config_limits, bad_limit_values) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    limits:
      - name: l
        key: [client_ip]
        algorithm: leaky_bucket
        requests: 0
        window: 0s
        burst: 0
        cost: 0
        overrides: {}
      - name: m
        key: [client_ip]
        requests: -1
        window: 10
        burst: many
        cost: 1.5
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 10u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 9, 20,
                        "routes[0].limits[0].algorithm: expected one of gcra, token_bucket, "
                        "sliding_window, sliding_log, fixed_window, got \"leaky_bucket\""));
  EXPECT_TRUE(has_error(result, 10, 19, "routes[0].limits[0].requests: must be at least 1, got 0"));
  EXPECT_TRUE(has_error(result, 11, 17, "routes[0].limits[0].window: must be greater than 0"));
  EXPECT_TRUE(has_error(result, 12, 16, "routes[0].limits[0].burst: must be at least 1, got 0"));
  EXPECT_TRUE(has_error(result, 13, 15, "routes[0].limits[0].cost: must be at least 1, got 0"));
  EXPECT_TRUE(
      has_error(result, 14, 20, "routes[0].limits[0].overrides: expected a list, got a map"));
  EXPECT_TRUE(
      has_error(result, 17, 19, "routes[0].limits[1].requests: must be at least 1, got -1"));
  EXPECT_TRUE(has_error(result, 18, 17, "routes[0].limits[1].window: expected a duration"));
  EXPECT_TRUE(has_error(result, 19, 16, "routes[0].limits[1].burst: expected an integer"));
  EXPECT_TRUE(
      has_error(result, 20, 15, "routes[0].limits[1].cost: expected an integer, got \"1.5\""));
}

TEST(config_limits, limit_names_are_unique_within_a_route) {
  expect_only_error(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    limits:
      - { name: per_ip, key: [client_ip], requests: 1, window: 1s }
      - { name: other, key: [client_ip], requests: 1, window: 1s }
      - { name: per_ip, key: [path], requests: 1, window: 1s }
  - name: s
    upstream: u
    limits:
      - { name: per_ip, key: [client_ip], requests: 1, window: 1s }
)yaml"),
                    9, 17,
                    "routes[0].limits[2].name: duplicate limit name \"per_ip\" in this route "
                    "(first at line 7)");
}

TEST(config_limits, burst_is_only_for_gcra_and_token_bucket) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    limits:
      - name: sw
        key: [client_ip]
        burst: 5
        requests: 10
        window: 1s
        algorithm: sliding_window
      - name: sl
        key: [client_ip]
        algorithm: sliding_log
        requests: 10
        window: 1s
        burst: 5
      - name: fw
        key: [client_ip]
        algorithm: fixed_window
        requests: 10
        window: 1s
        burst: 5
      - name: tb
        key: [client_ip]
        algorithm: token_bucket
        requests: 10
        window: 1s
        burst: 50
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 3u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 9, 16,
                        "routes[0].limits[0].burst: only gcra and token_bucket take a burst, not "
                        "sliding_window"));
  EXPECT_TRUE(has_error(result, 18, 16,
                        "routes[0].limits[1].burst: only gcra and token_bucket "
                        "take a burst, not sliding_log"));
  EXPECT_TRUE(has_error(result, 24, 16, "not fixed_window"));
}

TEST(config_limits, cost_above_capacity_can_never_be_admitted) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    limits:
      - { name: a, key: [client_ip], requests: 10, window: 1s, burst: 3, cost: 4 }
      - { name: b, key: [client_ip], requests: 2, window: 1s, cost: 3 }
      - { name: c, key: [client_ip], algorithm: sliding_log, requests: 5, window: 1s, cost: 6 }
      - { name: d, key: [client_ip], algorithm: token_bucket, requests: 1, window: 1s, burst: 9, cost: 9 }
      - { name: e, key: [client_ip], algorithm: fixed_window, requests: 5, window: 1s, cost: 5 }
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 3u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 7, 80,
                        "routes[0].limits[0].cost: 4 is more than the limit's capacity of 3 "
                        "(burst), so no request would ever be admitted"));
  EXPECT_TRUE(has_error(result, 8, 69,
                        "routes[0].limits[1].cost: 3 is more than the limit's capacity of 2 "
                        "(burst)"));
  EXPECT_TRUE(has_error(result, 9, 93,
                        "routes[0].limits[2].cost: 6 is more than the limit's capacity of 5 "
                        "(requests)"));
}

TEST(config_limits, requests_times_window_must_fit_in_2_pow_53_microseconds) {
  // 9007199254 x 1s = 9007199254000000 <= 2^53 = 9007199254740992; one more is too large.
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    limits:
      - name: at_bound
        key: [client_ip]
        requests: 9007199254
        window: 1s
      - name: above
        key: [client_ip]
        algorithm: fixed_window
        requests: 9007199255
        window: 1s
      - name: by_burst
        key: [client_ip]
        requests: 1
        window: 1s
        burst: 9007199255
      - name: huge
        key: [client_ip]
        algorithm: sliding_log
        requests: 18446744073709551615
        window: 1d
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 3u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 11, 9,
                        "routes[0].limits[1]: requests × window is too large (at most 2^53 "
                        "request-microseconds)"));
  EXPECT_TRUE(has_error(result, 16, 9, "routes[0].limits[2]: requests × window is too large"));
  EXPECT_TRUE(has_error(result, 21, 9, "routes[0].limits[3]: requests × window is too large"));
}

// --- overrides ---------------------------------------------------------------------------------

TEST(config_limits, overrides_are_read_into_the_structs) {
  load_result result = load_string(with_upstream(R"yaml(consumers:
  - name: acme
    key_sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b
    tier: gold
routes:
  - name: r
    upstream: u
    limits:
      - name: l
        key: [api_key]
        algorithm: token_bucket
        requests: 10
        window: 1m
        overrides:
          - when: { consumer: acme, tier: gold }
            requests: 100
            window: 1s
            burst: 200
          - when: { api_key: "1" }
            burst: 1
)yaml"));
  ASSERT_TRUE(result.ok()) << list_problems(result);
  ASSERT_EQ(result.problems.size(), 1u) << list_problems(result);
  EXPECT_TRUE(has_warning(result, 21, 30,
                          "routes[0].limits[0].overrides[1].when.api_key: plain-text API key; "
                          "give it to a consumer as key_sha256 and match when.consumer instead"));
  const std::vector<limit_override>& o = result.config->routes.at(0).limits.at(0).overrides;
  ASSERT_EQ(o.size(), 2u);
  EXPECT_EQ(o[0].consumer, "acme");
  EXPECT_EQ(o[0].tier, "gold");
  EXPECT_FALSE(o[0].api_key_sha256);
  EXPECT_EQ(o[0].requests, 100u);
  EXPECT_EQ(o[0].window, 1s);
  EXPECT_EQ(o[0].burst, 200u);
  EXPECT_FALSE(o[1].consumer);
  EXPECT_FALSE(o[1].tier);
  EXPECT_EQ(o[1].api_key_sha256, sha256_of_1);
  EXPECT_FALSE(o[1].requests);
  EXPECT_FALSE(o[1].window);
  EXPECT_EQ(o[1].burst, 1u);
}

TEST(config_limits, override_needs_a_condition_and_a_value) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    limits:
      - name: l
        key: [client_ip]
        requests: 10
        window: 1m
        overrides:
          - requests: 5
          - when: {}
            requests: 5
          - when: { tier: gold, plan: pro }
          - when:
            window: 1s
          - just words
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 7u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 12, 13,
                        "missing required key \"when\" in routes[0].limits[0].overrides[0]"));
  EXPECT_TRUE(has_error(result, 13, 19,
                        "routes[0].limits[0].overrides[1].when: needs at least one of consumer, "
                        "tier, api_key"));
  EXPECT_TRUE(
      has_error(result, 15, 33, "unknown key \"plan\" in routes[0].limits[0].overrides[2].when"));
  EXPECT_TRUE(has_error(result, 15, 13,
                        "routes[0].limits[0].overrides[2]: an override needs at least one of "
                        "requests, window, burst"));
  EXPECT_TRUE(has_warning(result, 15, 27,
                          "routes[0].limits[0].overrides[2].when.tier: no consumer has tier "
                          "\"gold\""));
  EXPECT_TRUE(has_error(result, 16, 13,
                        "routes[0].limits[0].overrides[3].when: expected a map with at least one "
                        "of consumer, tier, api_key"));
  EXPECT_TRUE(has_error(result, 18, 13,
                        "routes[0].limits[0].overrides[4]: expected a map with when and requests, "
                        "window or burst, got \"just words\""));
}

TEST(config_limits, override_consumer_must_exist_and_tier_should) {
  load_result result = load_string(with_upstream(R"yaml(routes:
  - name: r
    upstream: u
    limits:
      - name: l
        key: [consumer]
        requests: 10
        window: 1m
        overrides:
          - { when: { consumer: acme }, requests: 1 }
          - { when: { consumer: acmee }, requests: 1 }
          - { when: { tier: gold }, requests: 1 }
          - { when: { tier: platinum }, requests: 1 }
consumers:
  - { name: acme, key: "1", tier: gold }
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 3u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 13, 33,
                        "routes[0].limits[0].overrides[1].when.consumer: no consumer named "
                        "\"acmee\""));
  EXPECT_TRUE(has_warning(result, 15, 29,
                          "routes[0].limits[0].overrides[3].when.tier: no consumer has tier "
                          "\"platinum\""));
  EXPECT_TRUE(has_warning(result, 17, 24, "consumers[0].key: plain-text API key"));
}

TEST(config_limits, a_file_with_only_warnings_is_valid) {
  load_result result = load_string(with_upstream(R"yaml(identity:
  trusted_proxies: [10.0.0.1/8]
consumers:
  - { name: dev, key: "dev-key" }
routes:
  - name: r
    upstream: u
    limits:
      - name: l
        key: [consumer]
        requests: 10
        window: 1m
        overrides:
          - { when: { tier: gold }, requests: 100 }
          - { when: { api_key: other-key }, requests: 100 }
)yaml"));
  ASSERT_TRUE(result.ok()) << list_problems(result);
  EXPECT_EQ(result.problems.size(), 4u) << list_problems(result);
  for (const problem& p : result.problems) EXPECT_TRUE(p.warning) << p.message;
  EXPECT_EQ(format_problem("g.yaml", result.problems[0]),
            "g.yaml:4:21: warning: identity.trusted_proxies[0]: \"10.0.0.1/8\" has host bits set; "
            "it means 10.0.0.0/8");
  EXPECT_EQ(result.config->consumers.at(0).name, "dev");
  EXPECT_EQ(result.config->routes.at(0).limits.at(0).overrides.size(), 2u);
}

TEST(config_limits, override_values_are_checked_against_the_limit) {
  load_result result = load_string(with_upstream(R"yaml(consumers:
  - { name: acme, key_sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b }
routes:
  - name: r
    upstream: u
    limits:
      - name: fw
        key: [consumer]
        cost: 4
        overrides:
          - { when: { consumer: acme }, burst: 10 }
          - { when: { consumer: acme }, requests: 3 }
          - { when: { consumer: acme }, window: 1d }
          - { when: { consumer: acme }, requests: 0, burst: 0 }
        algorithm: fixed_window
        requests: 1000000
        window: 1s
      - name: gc
        key: [consumer]
        requests: 10
        window: 1s
        burst: 5
        cost: 5
        overrides:
          - { when: { consumer: acme }, requests: 1 }
          - { when: { consumer: acme }, burst: 4 }
          - { when: { consumer: acme }, window: 1d, burst: 104249 }
          - { when: { consumer: acme }, window: 1d, burst: 104250 }
)yaml"));
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 7u) << list_problems(result);
  EXPECT_TRUE(has_error(result, 13, 48,
                        "routes[0].limits[0].overrides[0].burst: only gcra and token_bucket take "
                        "a burst, not fixed_window"));
  EXPECT_TRUE(has_error(result, 14, 13,
                        "routes[0].limits[0].overrides[1]: the limit's cost of 4 is more than "
                        "this override's capacity of 3 (requests), so no request would ever be "
                        "admitted"));
  EXPECT_TRUE(has_error(result, 15, 13,
                        "routes[0].limits[0].overrides[2]: requests × window is too large (at "
                        "most 2^53 request-microseconds)"));
  EXPECT_TRUE(has_error(result, 16, 51, "overrides[3].requests: must be at least 1, got 0"));
  EXPECT_TRUE(has_error(result, 16, 61, "overrides[3].burst: must be at least 1, got 0"));
  EXPECT_TRUE(has_error(result, 28, 13,
                        "routes[0].limits[1].overrides[1]: the limit's cost of 5 is more than "
                        "this override's capacity of 4 (burst)"));
  EXPECT_TRUE(has_error(result, 30, 13,
                        "routes[0].limits[1].overrides[3]: requests × window is "
                        "too large"));
}

}  // namespace
}  // namespace gw::config
