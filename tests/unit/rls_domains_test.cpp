// Matching descriptors against a domain, and their store keys, without gRPC or sockets.
#include "rls/domains.hpp"

#include <gtest/gtest.h>

namespace {

using namespace gw;

config::rls_descriptor entry(std::string key, std::optional<std::string> value,
                             std::uint64_t requests,
                             std::vector<config::rls_descriptor> children = {}) {
  config::rls_descriptor d;
  d.key = std::move(key);
  d.value = std::move(value);
  if (requests > 0) {
    config::rls_rate_limit r;
    r.requests = requests;
    r.window = std::chrono::seconds(60);
    r.unit = config::rls_unit::minute;
    d.rate_limit = r;
  }
  d.descriptors = std::move(children);
  return d;
}

struct fixture : ::testing::Test {
  config::rls_domain source = [] {
    config::rls_domain d;
    d.domain = "edge";
    d.descriptors = {entry("path", "/admin", 1),
                     entry("path", "/api/*", 2),
                     entry("path", "/api/v2/*", 3),
                     entry("path", std::nullopt, 100),
                     entry("tenant", std::nullopt, 0,
                           {entry("plan", "gold", 50), entry("plan", std::nullopt, 5)})};
    return d;
  }();
  rls::domain domain{source, "rl:", nullptr};

  std::uint64_t requests_for(std::vector<rls::entry_view> entries) {
    const auto* m = domain.match(entries);
    return m ? m->limit.requests : 0;
  }
};

TEST_F(fixture, exact_then_longest_prefix_then_the_key_alone) {
  EXPECT_EQ(requests_for({{"path", "/admin"}}), 1u);
  EXPECT_EQ(requests_for({{"path", "/api/users"}}), 2u);
  EXPECT_EQ(requests_for({{"path", "/api/v2/users"}}), 3u);
  EXPECT_EQ(requests_for({{"path", "/home"}}), 100u);
  EXPECT_EQ(requests_for({{"nothing", "x"}}), 0u);
}

TEST_F(fixture, nested_entries_limit_only_where_the_last_entry_lands) {
  EXPECT_EQ(requests_for({{"tenant", "t"}, {"plan", "gold"}}), 50u);
  EXPECT_EQ(requests_for({{"tenant", "t"}, {"plan", "free"}}), 5u);
  EXPECT_EQ(requests_for({{"tenant", "t"}}), 0u);  // no rate_limit on the tenant entry itself
  EXPECT_EQ(requests_for({{"tenant", "t"}, {"plan", "gold"}, {"extra", "x"}}), 0u);
  EXPECT_EQ(requests_for({{"plan", "gold"}}), 0u);  // plan is only known below tenant
}

TEST_F(fixture, names_and_labels_are_the_path_of_keys) {
  const std::vector<rls::entry_view> e = {{"tenant", "t"}, {"plan", "gold"}};
  const auto* m = domain.match(e);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->limit.name, "tenant.plan");
  EXPECT_EQ(m->limit_label, "tenant.plan");
  EXPECT_EQ(m->key_head, "rl:{rls:edge:tenant:plan:");
}

TEST_F(fixture, store_keys_hash_the_values_and_never_hold_them) {
  const auto* m = domain.match(std::vector<rls::entry_view>{{"tenant", "a"}, {"plan", "gold"}});
  ASSERT_NE(m, nullptr);
  std::string k1, k2, k3;
  rls::store_key(*m, std::vector<rls::entry_view>{{"tenant", "secret-a"}, {"plan", "gold"}}, k1);
  rls::store_key(*m, std::vector<rls::entry_view>{{"tenant", "secret-b"}, {"plan", "gold"}}, k2);
  // The same characters split differently are another identity.
  rls::store_key(*m, std::vector<rls::entry_view>{{"tenant", "secret-ag"}, {"plan", "old"}}, k3);
  EXPECT_EQ(k1.rfind("rl:{rls:edge:tenant:plan:", 0), 0u);
  EXPECT_EQ(k1.size(), std::string{"rl:{rls:edge:tenant:plan:"}.size() + 16 + 1);
  EXPECT_EQ(k1.back(), '}');
  EXPECT_EQ(k1.find("secret"), std::string::npos);
  EXPECT_NE(k1, k2);
  EXPECT_NE(k1, k3);
}

}  // namespace
