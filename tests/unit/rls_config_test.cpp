// The rls: section and its domain files: what loads, and every problem with its file and place.
#include "config/loader.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace {

using namespace gw::config;

class rls_config : public ::testing::Test {
 protected:
  rls_config() {
    char pattern[] = "/tmp/gateway-rls-config-XXXXXX";
    dir_ = ::mkdtemp(pattern);
    std::filesystem::create_directory(dir_ + "/rls");
  }
  ~rls_config() override { std::filesystem::remove_all(dir_); }

  void domain(const std::string& name, const std::string& yaml) {
    std::ofstream{dir_ + "/rls/" + name} << yaml;
  }
  // Loads a gateway file beside rls/ whose rls: section points at it (relative to the file).
  load_result load(const std::string& rls_extra = "") {
    const auto path = dir_ + "/gateway.yaml";
    std::ofstream{path} << "rls:\n  listen: 127.0.0.1:18081\n  config: [rls/]\n" << rls_extra;
    return load_file(path);
  }
  // Every problem as --check-config prints it, the folder written as DIR.
  std::string problems(const load_result& r) {
    std::string out;
    for (const auto& p : r.problems) {
      auto line = format_problem(dir_ + "/gateway.yaml", p);
      for (auto at = line.find(dir_); at != std::string::npos; at = line.find(dir_))
        line.replace(at, dir_.size(), "DIR");
      out += line + "\n";
    }
    return out;
  }

  std::string dir_;
};

TEST_F(rls_config, a_domain_loads_with_envoy_fields_and_ours) {
  domain("edge.yaml", R"(domain: edge
descriptors:
  - key: remote_address
    rate_limit: { unit: month, requests_per_unit: 10 }
  - key: k
    value: pre*
    shadow_mode: true
    rate_limit: { algorithm: gcra, window: 90s, requests_per_unit: 3, burst: 5, name: n }
    descriptors:
      - key: inner
        rate_limit: { unlimited: true }
  - key: v
    rate_limit: { name: v, unit: week, requests_per_unit: 1, replaces: [{ name: n }] }
)");
  const auto r = load("  failure_mode: closed\n  headers: [ietf, legacy]\n");
  ASSERT_TRUE(r.ok()) << problems(r);
  const auto& rls = *r.config->rls;
  EXPECT_EQ(rls.on_failure, failure_mode::closed);
  EXPECT_TRUE(rls.legacy_headers);
  ASSERT_EQ(rls.domains.size(), 1u);
  const auto& d = rls.domains[0];
  EXPECT_EQ(d.domain, "edge");
  ASSERT_EQ(d.descriptors.size(), 3u);
  EXPECT_EQ(d.descriptors[0].rate_limit->window, std::chrono::hours(24 * 30));
  EXPECT_EQ(d.descriptors[0].rate_limit->unit, rls_unit::month);
  EXPECT_EQ(d.descriptors[0].rate_limit->algorithm, limit_algorithm::fixed_window);
  const auto& k = d.descriptors[1];
  EXPECT_EQ(*k.value, "pre*");
  EXPECT_TRUE(k.shadow_mode);
  EXPECT_EQ(k.rate_limit->algorithm, limit_algorithm::gcra);
  EXPECT_EQ(k.rate_limit->window, std::chrono::seconds(90));
  EXPECT_EQ(k.rate_limit->unit, rls_unit::unknown);
  EXPECT_EQ(*k.rate_limit->burst, 5u);
  EXPECT_TRUE(k.descriptors.at(0).rate_limit->unlimited);
  EXPECT_EQ(d.descriptors[2].rate_limit->unit, rls_unit::week);
  EXPECT_EQ(d.descriptors[2].rate_limit->replaces, std::vector<std::string>{"n"});
}

TEST_F(rls_config, every_problem_of_a_domain_file_with_its_position) {
  domain("a.yaml", R"(domain: a
descriptors:
  - key: k1
    detailed_metric: true
    rate_limit: { unit: second, requests_per_unit: 1 }
  - key: k2
    rate_limit: { unit: second, window: 1s, requests_per_unit: 1 }
  - key: k3
    rate_limit: { unit: second, requests_per_unit: 1, burst: 4 }
  - key: k4
    rate_limit: { unlimited: true, requests_per_unit: 1 }
  - key: k5
    rate_limit: { unit: minute }
  - key: k6
    rate_limit: { unit: second, requests_per_unit: 0 }
)");
  domain("b.yaml", "descriptors: []\n---\ndomain: b\n");
  const auto r = load();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(problems(r),
            "DIR/rls/a.yaml:4:5: unknown key \"detailed_metric\" in descriptors[0]\n"
            "DIR/rls/a.yaml:7:41: descriptors[1].rate_limit.window: give unit or window, not both\n"
            "DIR/rls/a.yaml:9:62: descriptors[2].rate_limit.burst: only gcra and token_bucket take "
            "a burst, not fixed_window\n"
            "DIR/rls/a.yaml:11:17: descriptors[3].rate_limit: an unlimited rate_limit takes no "
            "unit, window, requests_per_unit, algorithm or burst\n"
            "DIR/rls/a.yaml:13:17: descriptors[4].rate_limit: missing required key "
            "\"requests_per_unit\"\n"
            "DIR/rls/a.yaml:15:52: descriptors[5].rate_limit.requests_per_unit: must be between 1 "
            "and 4294967295, got 0\n"
            "DIR/rls/b.yaml:1:1: missing required key \"domain\" at the top level\n"
            "DIR/rls/b.yaml:3:1: only one YAML document is allowed\n");
}

TEST_F(rls_config, a_domain_file_of_stray_punctuation_is_an_error_not_a_hang) {
  // yaml-cpp 0.7's LoadAll never returned on it (found by tests/fuzz/rls_domain_fuzz).
  domain("a.yaml", ",\n");
  const auto r = load();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(problems(r),
            "DIR/rls/a.yaml:1:1: expected a map with domain and descriptors at the top level, "
            "got nothing\n"
            "DIR/rls/a.yaml:1:1: only one YAML document is allowed\n");
}

TEST_F(rls_config, domains_are_unique_identifiers_and_the_listener_its_own) {
  domain("a.yaml", "domain: a\n");
  domain("b.yaml", "domain: a\n");
  domain("c.yaml", "domain: unknown\n");
  domain("d.yaml", "domain: \"x}y\"\n");
  const auto r = load();
  const auto text = problems(r);
  EXPECT_NE(text.find("domain \"a\" of \"DIR/rls/b.yaml\" is already defined in "
                      "\"DIR/rls/a.yaml\""),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("DIR/rls/c.yaml:1:9: domain: \"unknown\" is reserved"), std::string::npos)
      << text;
  EXPECT_NE(text.find("DIR/rls/d.yaml:1:9: domain: \"x}y\" may contain only"), std::string::npos)
      << text;

  std::filesystem::remove_all(dir_ + "/rls");
  std::filesystem::create_directory(dir_ + "/rls");
  domain("a.yaml", "domain: a\n");
  const auto path = dir_ + "/gateway.yaml";
  std::ofstream{path} << "server:\n  listen: 127.0.0.1:18081\n"
                      << "rls:\n  listen: 127.0.0.1:18081\n  config: [rls/]\n";
  EXPECT_NE(problems(load_file(path)).find("rls.listen 127.0.0.1:18081 is also the server's"),
            std::string::npos);
}

}  // namespace
