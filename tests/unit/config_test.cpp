// The YAML loader: defaults, a full valid file, and every kind of problem with its exact position.
// Each YAML text starts with a newline, so its first key is on line 2.
#include "config/loader.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <unistd.h>

namespace gw::config {
namespace {

using namespace std::chrono_literals;

std::string list_problems(const load_result& result) {
  std::string out;
  for (const problem& p : result.problems) out += "\n  " + format_problem("test.yaml", p);
  return out.empty() ? "\n  (no problems)" : out;
}

// Passes when a problem sits at line:column and its message contains `text`.
::testing::AssertionResult has_problem(const load_result& result, int line, int column,
                                       std::string_view text) {
  for (const problem& p : result.problems) {
    if (p.line == line && p.column == column && p.message.find(text) != std::string::npos) {
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure()
         << "no problem at " << line << ":" << column << " containing \"" << text
         << "\"; got:" << list_problems(result);
}

// A file that must fail with exactly one problem, at line:column, whose message contains `text`.
void expect_only_problem(std::string_view yaml, int line, int column, std::string_view text) {
  load_result result = load_string(yaml);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 1u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, line, column, text));
}

const gateway_config& expect_valid(const load_result& result) {
  static const gateway_config none;
  EXPECT_TRUE(result.ok()) << list_problems(result);
  EXPECT_TRUE(result.problems.empty()) << list_problems(result);
  return result.ok() ? *result.config : none;
}

// --- valid files -------------------------------------------------------------------------------

TEST(config_loader, empty_map_gives_every_default) {
  load_result result = load_string("{}\n");
  const gateway_config& c = expect_valid(result);
  EXPECT_EQ(c.server.listen, (endpoint{"0.0.0.0", 8080}));
  EXPECT_EQ(c.server.workers, 0u);
  EXPECT_EQ(c.server.max_connections, 10000u);
  EXPECT_EQ(c.server.header_timeout, 10s);
  EXPECT_EQ(c.server.idle_timeout, 60s);
  EXPECT_EQ(c.server.max_header_bytes, 16u * 1024);
  EXPECT_EQ(c.server.max_body_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(c.server.drain_timeout, 15s);
  EXPECT_EQ(c.server.log_level, "info");
  EXPECT_TRUE(c.server.access_log);
  EXPECT_EQ(c.admin.listen, (endpoint{"127.0.0.1", 9901}));
  EXPECT_TRUE(c.upstreams.empty());
  EXPECT_TRUE(c.routes.empty());
}

TEST(config_loader, empty_sections_keep_defaults) {
  load_result result = load_string(R"yaml(
server:
admin:
upstreams:
routes:
)yaml");
  const gateway_config& c = expect_valid(result);
  EXPECT_EQ(c.server.listen, (endpoint{"0.0.0.0", 8080}));
  EXPECT_TRUE(c.routes.empty());
}

TEST(config_loader, upstream_and_route_defaults) {
  load_result result = load_string(R"yaml(
upstreams:
  users:
    servers: [127.0.0.1:9000]
routes:
  - name: all
    upstream: users
)yaml");
  const gateway_config& c = expect_valid(result);
  ASSERT_EQ(c.upstreams.size(), 1u);
  const upstream& u = c.upstreams[0];
  EXPECT_EQ(u.name, "users");
  EXPECT_EQ(u.connect_timeout, 2s);
  EXPECT_EQ(u.timeout, 30s);
  EXPECT_EQ(u.max_idle_per_server, 64u);
  EXPECT_EQ(u.eject_after_failures, 3u);
  EXPECT_EQ(u.eject_for, 10s);
  ASSERT_EQ(c.routes.size(), 1u);
  const route& r = c.routes[0];
  EXPECT_EQ(r.name, "all");
  EXPECT_EQ(r.upstream, "users");
  EXPECT_FALSE(r.strip_prefix);
  EXPECT_FALSE(r.match.path);
  EXPECT_FALSE(r.match.path_prefix);
  EXPECT_FALSE(r.match.path_regex);
  EXPECT_TRUE(r.match.methods.empty());
  EXPECT_FALSE(r.match.host);
}

TEST(config_loader, full_file_is_read_into_the_structs) {
  load_result result = load_string(R"yaml(
server:
  listen: "[::]:8443"
  workers: 4
  max_connections: 2000
  header_timeout: 5s
  idle_timeout: 2m
  max_header_bytes: 32KiB
  max_body_bytes: 0
  drain_timeout: 0s
  log_level: debug
  access_log: false

admin:
  listen: 127.0.0.1:9902

upstreams:
  users:
    servers: [127.0.0.1:9000, "[::1]:9001", users.internal:80]
    connect_timeout: 250ms
    timeout: 1h
    max_idle_per_server: 0
    eject_after_failures: 5
    eject_for: 1d
  billing:
    servers:
      - 10.0.0.7:8000

routes:
  - name: login
    match:
      path_prefix: /login
      methods: [post, Get]
      host: API.Example.COM
    upstream: users
    strip_prefix: true
  - name: versioned
    match:
      path_regex: ^/v[0-9]+/bill(ing)?$
    upstream: billing
  - name: health
    match: { path: /health }
    upstream: billing
  - name: fallback
    upstream: users
)yaml");
  const gateway_config& c = expect_valid(result);

  EXPECT_EQ(c.server.listen, (endpoint{"::", 8443}));
  EXPECT_EQ(c.server.workers, 4u);
  EXPECT_EQ(c.server.max_connections, 2000u);
  EXPECT_EQ(c.server.header_timeout, 5s);
  EXPECT_EQ(c.server.idle_timeout, 2min);
  EXPECT_EQ(c.server.max_header_bytes, 32u * 1024);
  EXPECT_EQ(c.server.max_body_bytes, 0u);
  EXPECT_EQ(c.server.drain_timeout, 0s);
  EXPECT_EQ(c.server.log_level, "debug");
  EXPECT_FALSE(c.server.access_log);
  EXPECT_EQ(c.admin.listen, (endpoint{"127.0.0.1", 9902}));

  ASSERT_EQ(c.upstreams.size(), 2u);
  const upstream& users = c.upstreams[0];
  EXPECT_EQ(users.name, "users");
  EXPECT_EQ(users.servers,
            (std::vector<endpoint>{{"127.0.0.1", 9000}, {"::1", 9001}, {"users.internal", 80}}));
  EXPECT_EQ(users.connect_timeout, 250ms);
  EXPECT_EQ(users.timeout, 1h);
  EXPECT_EQ(users.max_idle_per_server, 0u);
  EXPECT_EQ(users.eject_after_failures, 5u);
  EXPECT_EQ(users.eject_for, 24h);
  EXPECT_EQ(c.upstreams[1].name, "billing");
  EXPECT_EQ(c.upstreams[1].servers, (std::vector<endpoint>{{"10.0.0.7", 8000}}));
  EXPECT_EQ(c.find_upstream("billing"), &c.upstreams[1]);
  EXPECT_EQ(c.find_upstream("nobody"), nullptr);

  ASSERT_EQ(c.routes.size(), 4u);
  const route& login = c.routes[0];
  EXPECT_EQ(login.name, "login");
  EXPECT_EQ(login.match.path_prefix, "/login");
  EXPECT_EQ(login.match.methods, (std::vector<std::string>{"POST", "GET"}));
  EXPECT_EQ(login.match.host, "api.example.com");
  EXPECT_EQ(login.upstream, "users");
  EXPECT_TRUE(login.strip_prefix);
  EXPECT_EQ(c.routes[1].match.path_regex, "^/v[0-9]+/bill(ing)?$");
  EXPECT_EQ(c.routes[2].match.path, "/health");
  EXPECT_EQ(c.routes[3].name, "fallback");
  EXPECT_FALSE(c.routes[3].match.path_prefix);
}

TEST(config_loader, sizes_may_be_plain_integers_or_digit_strings) {
  load_result result = load_string(R"yaml(
server:
  max_header_bytes: 8192
  max_body_bytes: "1048576"
)yaml");
  const gateway_config& c = expect_valid(result);
  EXPECT_EQ(c.server.max_header_bytes, 8192u);
  EXPECT_EQ(c.server.max_body_bytes, 1048576u);
}

TEST(config_loader, upstreams_may_follow_the_routes_that_name_them) {
  load_result result = load_string(R"yaml(
routes:
  - name: r
    upstream: later
upstreams:
  later:
    servers: [127.0.0.1:1]
)yaml");
  expect_valid(result);
}

TEST(config_loader, strip_prefix_may_come_before_match) {
  load_result result = load_string(R"yaml(
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - name: r
    strip_prefix: true
    upstream: u
    match:
      path_prefix: /api
)yaml");
  EXPECT_TRUE(expect_valid(result).routes.at(0).strip_prefix);
}

// --- the file as a whole -----------------------------------------------------------------------

TEST(config_loader, empty_file_is_an_error) {
  expect_only_problem("", 1, 1, "the configuration is empty");
  expect_only_problem("# only a comment\n\n", 1, 1, "the configuration is empty");
  expect_only_problem("---\n", 1, 1, "the configuration is empty");
}

TEST(config_loader, top_level_must_be_a_map) {
  expect_only_problem("\n- server\n", 2, 1, "expected a map at the top level, got a list");
  expect_only_problem("just words\n", 1, 1, "expected a map at the top level, got \"just words\"");
}

TEST(config_loader, syntax_error_reports_the_parser_position) {
  load_result result = load_string(R"yaml(
server:
  listen: 0.0.0.0:8080
 workers: 2
)yaml");
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.problems.size(), 1u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 4, 2, "invalid YAML: "));

  expect_only_problem("\nserver: [a, b\n", 3, 1, "invalid YAML: end of sequence flow not found");
  expect_only_problem("\nserver: *nothing\n", 2, 9, "invalid YAML: ");
}

TEST(config_loader, a_second_document_is_an_error) {
  expect_only_problem("server: {}\n---\nserver: {}\n", 3, 1, "only one YAML document is allowed");
}

TEST(config_loader, stray_flow_punctuation_is_an_error_not_a_hang) {
  // yaml-cpp 0.7's LoadAll never returned on these, and grew without bound: its parser reads
  // them as empty documents, one after another (found by tests/fuzz/config_fuzz).
  for (const std::string_view yaml : {",", ",~"}) {
    const load_result result = load_string(yaml);
    EXPECT_FALSE(result.ok()) << yaml;
    EXPECT_EQ(result.problems.size(), 2u) << list_problems(result);
    EXPECT_TRUE(has_problem(result, 1, 1, "the configuration is empty"));
    EXPECT_TRUE(has_problem(result, 1, 1, "only one YAML document is allowed"));
  }
}

// --- keys --------------------------------------------------------------------------------------

TEST(config_loader, unknown_keys_are_errors_everywhere) {
  load_result result = load_string(R"yaml(
servr: {}
server:
  listn: 0.0.0.0:80
admin:
  port: 9901
upstreams:
  u:
    servers: [127.0.0.1:1]
    retries: 3
routes:
  - name: r
    upstream: u
    limit: []
    match:
      prefix: /x
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 6u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 2, 1, "unknown key \"servr\" at the top level"));
  EXPECT_TRUE(has_problem(result, 4, 3, "unknown key \"listn\" in server"));
  EXPECT_TRUE(has_problem(result, 6, 3, "unknown key \"port\" in admin"));
  EXPECT_TRUE(has_problem(result, 10, 5, "unknown key \"retries\" in upstreams.u"));
  EXPECT_TRUE(has_problem(result, 14, 5, "unknown key \"limit\" in routes[0]"));
  EXPECT_TRUE(has_problem(result, 16, 7, "unknown key \"prefix\" in routes[0].match"));
}

// identity, consumers, storage and the route keys for limits are known; their own tests are in
// config_limits_test.cpp.
TEST(config_loader, identity_consumers_storage_and_limit_keys_are_known) {
  load_result result = load_string(R"yaml(
identity: {}
consumers: []
storage: {}
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - name: r
    upstream: u
    auth: none
    failure_mode: open
    shadow: false
    headers: []
    limits: []
)yaml");
  const gateway_config& c = expect_valid(result);
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].on_failure, failure_mode::open);
  EXPECT_FALSE(c.routes[0].ietf_headers);
  EXPECT_FALSE(c.routes[0].legacy_headers);
  EXPECT_TRUE(c.routes[0].limits.empty());
}

TEST(config_loader, duplicate_keys_are_errors) {
  expect_only_problem(R"yaml(
server:
  workers: 2
  workers: 3
)yaml",
                      4, 3, "duplicate key \"workers\" in server");
}

TEST(config_loader, keys_must_be_names) {
  expect_only_problem(R"yaml(
server:
  ? [a, b]
  : 1
)yaml",
                      3, 5, "expected a key name in server, got a list");
}

// --- types -------------------------------------------------------------------------------------

TEST(config_loader, wrong_types_are_reported_at_the_value) {
  load_result result = load_string(R"yaml(
server:
  listen: { host: 0.0.0.0 }
  workers: abc
  max_connections: [1]
  access_log: maybe
  log_level: [info]
admin: 127.0.0.1:9901
routes: { name: r }
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 7u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 3, 11, "server.listen: expected host:port or [IPv6]:port"));
  EXPECT_TRUE(has_problem(result, 3, 11, "got a map"));
  EXPECT_TRUE(has_problem(result, 4, 12, "server.workers: expected an integer, got \"abc\""));
  EXPECT_TRUE(
      has_problem(result, 5, 20, "server.max_connections: expected an integer, got a list"));
  EXPECT_TRUE(
      has_problem(result, 6, 15, "server.access_log: expected true or false, got \"maybe\""));
  EXPECT_TRUE(has_problem(result, 7, 14, "server.log_level: expected one of trace, debug"));
  EXPECT_TRUE(has_problem(result, 8, 8, "admin: expected a map, got \"127.0.0.1:9901\""));
  EXPECT_TRUE(has_problem(result, 9, 9, "routes: expected a list, got a map"));
}

TEST(config_loader, yaml_1_1_booleans_are_not_booleans) {
  expect_only_problem("\nserver:\n  access_log: yes\n", 3, 15,
                      "server.access_log: expected true or false, got \"yes\"");
}

TEST(config_loader, empty_value_is_reported_at_its_key) {
  expect_only_problem(R"yaml(
server:
  header_timeout:
  workers: 2
)yaml",
                      3, 3, "server.header_timeout: expected a duration with a unit");
}

// --- values ------------------------------------------------------------------------------------

TEST(config_loader, bad_durations_quote_the_value_and_the_form) {
  load_result result = load_string(R"yaml(
server:
  header_timeout: 10
  idle_timeout: -5s
  drain_timeout: 1.5m
upstreams:
  u:
    servers: [127.0.0.1:1]
    timeout: 0s
    eject_for: 99999999999999999999d
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 5u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 3, 19,
                          "server.header_timeout: expected a duration with a unit (250ms, 10s, "
                          "5m, 1h, 1d), got \"10\""));
  EXPECT_TRUE(has_problem(result, 4, 17, "got \"-5s\""));
  EXPECT_TRUE(has_problem(result, 5, 18, "got \"1.5m\""));
  EXPECT_TRUE(
      has_problem(result, 9, 14, "upstreams.u.timeout: must be greater than 0, got \"0s\""));
  EXPECT_TRUE(has_problem(result, 10, 16, "upstreams.u.eject_for: expected a duration"));
}

TEST(config_loader, bad_sizes_quote_the_value_and_the_form) {
  load_result result = load_string(R"yaml(
server:
  max_header_bytes: 0
  max_body_bytes: 10MB
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 2u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 3, 21, "server.max_header_bytes: must be at least 1 bytes"));
  EXPECT_TRUE(has_problem(result, 4, 19,
                          "server.max_body_bytes: expected a size in bytes, or with KiB, MiB or "
                          "GiB (16KiB, 10MiB), got \"10MB\""));
}

TEST(config_loader, bad_addresses_quote_the_value_and_the_form) {
  load_result result = load_string(R"yaml(
server:
  listen: 0.0.0.0
admin:
  listen: "[::1]:70000"
upstreams:
  u:
    servers:
      - 127.0.0.1:9000
      - ::1:9001
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 3u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 3, 11,
                          "server.listen: expected host:port or [IPv6]:port with a port from 1 to "
                          "65535, got \"0.0.0.0\""));
  EXPECT_TRUE(has_problem(result, 5, 11, "admin.listen: expected host:port"));
  EXPECT_TRUE(has_problem(result, 10, 9, "upstreams.u.servers[1]: expected host:port"));
}

TEST(config_loader, integers_out_of_range) {
  load_result result = load_string(R"yaml(
server:
  workers: 5000
  max_connections: 0
upstreams:
  u:
    servers: [127.0.0.1:1]
    eject_after_failures: -1
    max_idle_per_server: 99999999999999999999999
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 4u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 3, 12, "server.workers: must be between 0 and 1024, got 5000"));
  EXPECT_TRUE(has_problem(result, 4, 20, "server.max_connections: must be between 1 and"));
  EXPECT_TRUE(has_problem(result, 8, 27, "upstreams.u.eject_after_failures: must be between 1"));
  EXPECT_TRUE(has_problem(result, 9, 26, "upstreams.u.max_idle_per_server: must be between 0"));
}

TEST(config_loader, log_level_must_be_known) {
  expect_only_problem("\nserver:\n  log_level: verbose\n", 3, 14,
                      "server.log_level: expected one of trace, debug, info, warn, error, got "
                      "\"verbose\"");
}

// --- upstreams ---------------------------------------------------------------------------------

TEST(config_loader, upstream_without_servers) {
  load_result result = load_string(R"yaml(
upstreams:
  missing:
    timeout: 1s
  empty:
    servers: []
  nothing:
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 3u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 4, 5, "missing required key \"servers\" in upstreams.missing"));
  EXPECT_TRUE(
      has_problem(result, 6, 14, "upstreams.empty.servers: an upstream needs at least one server"));
  EXPECT_TRUE(has_problem(result, 7, 3, "missing required key \"servers\" in upstreams.nothing"));
}

TEST(config_loader, upstream_names_are_identifiers) {
  // An upstream name is a metric label and the Host of an HTTP/1.0 request without one.
  load_result result = load_string(R"yaml(
upstreams:
  "my backend":
    servers: [127.0.0.1:80]
  "evil\r\nX-Injected: 1":
    servers: [127.0.0.1:80]
  users-v2.internal:
    servers: [127.0.0.1:80]
)yaml");
  EXPECT_EQ(result.problems.size(), 2u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 3, 3,
                          "upstreams: upstream name \"my backend\" may contain only letters, "
                          "digits, \"_\", \".\" and \"-\""))
      << list_problems(result);
  EXPECT_EQ(result.problems.at(1).line, 5);
}

TEST(config_loader, upstreams_must_be_a_map_of_maps) {
  load_result result = load_string(R"yaml(
upstreams:
  - users
)yaml");
  EXPECT_TRUE(has_problem(result, 3, 3, "upstreams: expected a map, got a list"));
  result = load_string("\nupstreams:\n  users: 127.0.0.1:80\n");
  EXPECT_TRUE(has_problem(result, 3, 10, "upstreams.users: expected a map, got \"127.0.0.1:80\""));
}

// --- routes ------------------------------------------------------------------------------------

TEST(config_loader, route_without_name_or_upstream) {
  load_result result = load_string(R"yaml(
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - upstream: u
  - name: r
    match: { path: /x }
  - name: ""
    upstream: u
  - just a string
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 4u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 4, 5, "missing required key \"name\" in routes[0]"));
  EXPECT_TRUE(has_problem(result, 5, 5, "missing required key \"upstream\" in routes[1]"));
  EXPECT_TRUE(has_problem(result, 7, 11, "routes[2].name: must not be empty"));
  EXPECT_TRUE(has_problem(result, 9, 5, "routes[3]: expected a map, got \"just a string\""));
}

TEST(config_loader, route_naming_a_missing_upstream) {
  expect_only_problem(R"yaml(
upstreams: { users: { servers: [127.0.0.1:1] } }
routes:
  - name: r
    upstream: userz
)yaml",
                      5, 15, "routes[0].upstream: no upstream named \"userz\"");
}

TEST(config_loader, duplicate_route_names) {
  expect_only_problem(R"yaml(
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - name: login
    upstream: u
  - name: other
    upstream: u
  - upstream: u
    name: login
)yaml",
                      9, 11, "routes[2].name: duplicate route name \"login\" (first at line 4)");
}

TEST(config_loader, only_one_path_matcher) {
  expect_only_problem(R"yaml(
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - name: r
    upstream: u
    match:
      path: /a
      path_prefix: /b
)yaml",
                      8, 7,
                      "routes[0].match: only one of path, path_prefix, path_regex may be set");
}

TEST(config_loader, invalid_path_regex_reports_the_regex_error) {
  load_result result = load_string(R"yaml(
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - name: r
    upstream: u
    match:
      path_regex: ^/v(1|2/login$
)yaml");
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.problems.size(), 1u) << list_problems(result);
  EXPECT_TRUE(
      has_problem(result, 7, 19,
                  "routes[0].match.path_regex: invalid regular expression \"^/v(1|2/login$\": "));
  // The rest is the standard library's explanation, which must be there but whose wording varies.
  EXPECT_GT(result.problems[0].message.size(),
            std::string_view{
                "routes[0].match.path_regex: invalid regular expression \"^/v(1|2/login$\": "}
                .size());
}

TEST(config_loader, paths_must_start_with_a_slash) {
  load_result result = load_string(R"yaml(
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - name: a
    upstream: u
    match: { path: login }
  - name: b
    upstream: u
    match:
      path_prefix: "api/"
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 2u) << list_problems(result);
  EXPECT_TRUE(
      has_problem(result, 6, 20, "routes[0].match.path: must start with \"/\", got \"login\""));
  EXPECT_TRUE(has_problem(result, 10, 20, "routes[1].match.path_prefix: must start with \"/\""));
}

TEST(config_loader, strip_prefix_needs_path_prefix) {
  load_result result = load_string(R"yaml(
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - name: a
    upstream: u
    match: { path: /exact }
    strip_prefix: true
  - name: b
    upstream: u
    strip_prefix: false
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 1u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 7, 19, "routes[0].strip_prefix: requires match.path_prefix"));
}

TEST(config_loader, methods_must_be_http_tokens) {
  load_result result = load_string(R"yaml(
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - name: r
    upstream: u
    match:
      methods: [get, "PO ST", "", {a: b}]
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 3u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 7, 22,
                          "routes[0].match.methods[1]: \"PO ST\" is not a valid HTTP method"));
  EXPECT_TRUE(
      has_problem(result, 7, 31, "routes[0].match.methods[2]: \"\" is not a valid HTTP method"));
  EXPECT_TRUE(
      has_problem(result, 7, 35, "routes[0].match.methods[3]: expected an HTTP method, got a map"));

  load_result single = load_string(R"yaml(
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - { name: r, upstream: u, match: { methods: GET } }
)yaml");
  EXPECT_TRUE(has_problem(single, 4, 47, "routes[0].match.methods: expected a list, got \"GET\""));
}

TEST(config_loader, host_is_lower_cased_and_has_no_port_or_path) {
  load_result result = load_string(R"yaml(
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - name: a
    upstream: u
    match: { host: "api.example.com:443" }
  - name: b
    upstream: u
    match: { host: example.com/api }
  - name: c
    upstream: u
    match: { host: Example.COM }
)yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.problems.size(), 2u) << list_problems(result);
  EXPECT_TRUE(has_problem(result, 6, 20,
                          "routes[0].match.host: expected a host name without port or path, got "
                          "\"api.example.com:443\""));
  EXPECT_TRUE(has_problem(result, 9, 20, "routes[1].match.host: expected a host name"));

  load_result valid = load_string(R"yaml(
upstreams: { u: { servers: [127.0.0.1:1] } }
routes:
  - { name: c, upstream: u, match: { host: Example.COM } }
)yaml");
  EXPECT_EQ(expect_valid(valid).routes.at(0).match.host, "example.com");
}

// --- reporting ---------------------------------------------------------------------------------

TEST(config_loader, every_problem_is_reported_in_file_order) {
  load_result result = load_string(R"yaml(
routes:
  - name: r
    upstream: missing
    match: { path: nope }
server:
  workers: many
  listen: nowhere
  bogus: 1
)yaml");
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.problems.size(), 5u) << list_problems(result);
  // The unknown upstream is found last (after all sections) but sorts by its position.
  EXPECT_EQ(result.problems[0].line, 4);
  EXPECT_NE(result.problems[0].message.find("no upstream named \"missing\""), std::string::npos);
  EXPECT_EQ(result.problems[1].line, 5);
  EXPECT_EQ(result.problems[2].line, 7);
  EXPECT_EQ(result.problems[3].line, 8);
  EXPECT_EQ(result.problems[4].line, 9);
  for (const problem& p : result.problems) EXPECT_FALSE(p.warning);
}

TEST(config_loader, format_problem_forms) {
  EXPECT_EQ(format_problem("conf/gateway.yaml", problem{3, 5, "unknown key \"listn\" in server", false, ""}),
            "conf/gateway.yaml:3:5: unknown key \"listn\" in server");
  EXPECT_EQ(format_problem("g.yaml", problem{0, 0, "cannot read file: No such file or directory", false, ""}),
            "g.yaml: cannot read file: No such file or directory");
  EXPECT_EQ(format_problem("g.yaml", problem{7, 2, "plain key", true, ""}),
            "g.yaml:7:2: warning: plain key");
  // A problem in a domain file names that file.
  EXPECT_EQ(format_problem("g.yaml", problem{4, 5, "unknown key", false, "conf/rls/edge.yaml"}),
            "conf/rls/edge.yaml:4:5: unknown key");
}

TEST(config_loader, load_file_reports_an_unreadable_file) {
  load_result result = load_file("/nonexistent/dir/gateway.yaml");
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.problems.size(), 1u);
  EXPECT_EQ(result.problems[0].line, 0);
  EXPECT_EQ(result.problems[0].column, 0);
  EXPECT_EQ(result.problems[0].message, "cannot read file: No such file or directory");

  result = load_file("/");
  ASSERT_EQ(result.problems.size(), 1u);
  EXPECT_EQ(result.problems[0].message, "cannot read file: Is a directory");
}

TEST(config_loader, load_file_reads_a_file) {
  std::string path = ::testing::TempDir() + "config_test_" + std::to_string(::getpid()) + ".yaml";
  {
    std::ofstream out{path};
    out << "server:\n  workers: 3\n  listn: x\n";
  }
  load_result result = load_file(path);
  std::remove(path.c_str());
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.problems.size(), 1u) << list_problems(result);
  EXPECT_EQ(format_problem(path, result.problems[0]),
            path + ":3:3: unknown key \"listn\" in server");
}

// --- tls -----------------------------------------------------------------------------------------

TEST(config_loader, server_tls_structure_and_names) {
  const load_result result = load_string(R"yaml(
server:
  tls:
    certificates:
      - cert: /nonexistent/a.pem
        key: /nonexistent/a.key
        server_names: [API.example.com, "*.example.org", "bad name", "*.", "a..b"]
      - cert: /nonexistent/b.pem
        key: /nonexistent/b.key
        server_names: [api.example.com]
      - cert: /nonexistent/c.pem
        key: /nonexistent/c.key
      - key: /nonexistent/d.key
    min_version: "1.1"
    client_auth: required
upstreams:
  u:
    servers: [127.0.0.1:1]
routes:
  - name: r
    match: { path_prefix: / }
    upstream: u
    limits:
      - name: l
        key: [client_cert]
        requests: 1
        window: 1s
)yaml");
  EXPECT_FALSE(result.ok());
  const auto all = list_problems(result);
  EXPECT_TRUE(has_problem(result, 7, 58, "\"bad name\" is not a server name")) << all;
  EXPECT_TRUE(has_problem(result, 7, 70, "\"*.\" is not a server name")) << all;
  EXPECT_TRUE(has_problem(result, 7, 76, "\"a..b\" is not a server name")) << all;
  EXPECT_TRUE(has_problem(result, 5, 7,
                          "server.tls.certificates[1]: server name \"api.example.com\" is "
                          "already served by certificates[0]"))
      << all;
  EXPECT_TRUE(has_problem(result, 5, 7, "certificates[2]: lists no server_names")) << all;
  EXPECT_TRUE(has_problem(result, 13, 9, "missing required key \"cert\"")) << all;
  EXPECT_TRUE(has_problem(result, 14, 18, "server.tls.min_version")) << all;
  EXPECT_TRUE(has_problem(result, 15, 18, "client_auth required needs client_ca")) << all;
  EXPECT_TRUE(has_problem(result, 25, 15, "client_cert needs server.tls with client_ca")) << all;
  EXPECT_TRUE(has_problem(result, 5, 9, "cannot read \"/nonexistent/a.pem\": No such file or directory")) << all;
}

TEST(config_loader, upstream_tls_as_spec_13_writes_it) {
  // SPEC 13's own example: empty cert and key mean no client certificate.
  load_result result = load_string(R"yaml(
upstreams:
  users:
    servers: [127.0.0.1:8443]
    tls:
      ca: ""
      server_name: users.internal
      verify: true
      cert: ""
      key: ""
routes:
  - name: r
    match: { path_prefix: / }
    upstream: users
)yaml");
  EXPECT_TRUE(result.ok()) << list_problems(result);
  ASSERT_TRUE(result.config->upstreams.at(0).tls);
  const auto& tls = *result.config->upstreams.at(0).tls;
  EXPECT_EQ(tls.ca, "");
  EXPECT_EQ(tls.server_name, "users.internal");
  EXPECT_TRUE(tls.verify);
  EXPECT_EQ(tls.cert, "");

  result = load_string(R"yaml(
upstreams:
  users:
    servers: [127.0.0.1:8443]
    tls:
      server_name: "*.internal"
      verify: false
      cert: /nonexistent/client.pem
routes:
  - name: r
    match: { path_prefix: / }
    upstream: users
)yaml");
  const auto all = list_problems(result);
  EXPECT_TRUE(has_problem(result, 6, 20, "\"*.internal\" is not a DNS name")) << all;
  EXPECT_TRUE(has_problem(result, 8, 13, "a client certificate needs its key")) << all;
  EXPECT_TRUE(has_problem(result, 6, 7, "verify: false accepts any certificate")) << all;
}

TEST(config_loader, consumers_by_certificate_fingerprint) {
  const std::string fingerprint(64, 'a');
  std::string colons;
  for (std::size_t i = 0; i < 64; i += 2) colons += (i ? ":" : "") + std::string{"AA"};
  const load_result result = load_string(R"yaml(
consumers:
  - name: one
    cert_sha256: )yaml" + colons + R"yaml(
  - name: two
    cert_sha256: )yaml" + fingerprint + R"yaml(
  - name: three
    cert_sha256: 3f1c
  - name: four
)yaml");
  const auto all = list_problems(result);
  EXPECT_TRUE(has_problem(result, 6, 18, "the same certificate as consumers[0]")) << all;
  EXPECT_TRUE(has_problem(result, 8, 18, "expected a SHA-256 fingerprint (64 hexadecimal")) << all;
  EXPECT_TRUE(has_problem(result, 9, 5, "missing required key \"key_sha256\" (or \"key\", or "
                                        "\"cert_sha256\") in consumers[3]"))
      << all;
  EXPECT_TRUE(has_problem(result, 4, 18, "no client certificate is asked for")) << all;
}

}  // namespace
}  // namespace gw::config
