// Route selection: first match wins over path, prefix, regex, methods and host.
#include "proxy/router.hpp"

#include <gtest/gtest.h>

namespace {

using gw::config::route;
using gw::proxy::router;

gw::config::route_match path(std::string p) {
  gw::config::route_match m;
  m.path = std::move(p);
  return m;
}
gw::config::route_match prefix(std::string p) {
  gw::config::route_match m;
  m.path_prefix = std::move(p);
  return m;
}
gw::config::route_match regex(std::string p) {
  gw::config::route_match m;
  m.path_regex = std::move(p);
  return m;
}

route make(std::string name, gw::config::route_match m, bool strip = false) {
  route r;
  r.name = std::move(name);
  r.match = std::move(m);
  r.upstream = "u";
  r.strip_prefix = strip;
  return r;
}

TEST(router, first_matching_route_wins) {
  std::vector<route> routes;
  auto login = path("/login");
  login.methods = {"POST"};
  auto admin = prefix("/admin");
  admin.host = "admin.example.com";
  routes.push_back(make("login", login));
  routes.push_back(make("versioned", regex("^/v[0-9]+/login$")));
  routes.push_back(make("admin", admin));
  routes.push_back(make("api", prefix("/api/")));
  routes.push_back(make("all", {}));
  const router r{routes};

  EXPECT_EQ(r.match("POST", "x", "/login"), 0u);
  EXPECT_EQ(r.match("GET", "x", "/login"), 4u);      // method does not match
  EXPECT_EQ(r.match("POST", "x", "/login/x"), 4u);   // exact path only
  EXPECT_EQ(r.match("GET", "x", "/v2/login"), 1u);
  EXPECT_EQ(r.match("GET", "x", "/v2/login/x"), 4u);
  EXPECT_EQ(r.match("GET", "admin.example.com", "/admin/users"), 2u);
  EXPECT_EQ(r.match("GET", "other.example.com", "/admin/users"), 4u);
  EXPECT_EQ(r.match("GET", "x", "/api/users"), 3u);
  EXPECT_EQ(r.match("GET", "x", "/api"), 4u);
}

TEST(router, no_route_when_nothing_matches) {
  std::vector<route> routes;
  routes.push_back(make("api", prefix("/api/")));
  const router r{routes};
  EXPECT_FALSE(r.match("GET", "x", "/other"));
}

TEST(router, strip_prefix_keeps_the_path_absolute) {
  const auto stripping = make("p", prefix("/public"), true);
  EXPECT_EQ(router::rewrite_path(stripping, "/public/a/b"), "/a/b");
  EXPECT_EQ(router::rewrite_path(stripping, "/public"), "/");
  const auto slash = make("p", prefix("/public/"), true);
  EXPECT_EQ(router::rewrite_path(slash, "/public/a"), "/a");
  const auto keeping = make("p", prefix("/public"), false);
  EXPECT_EQ(router::rewrite_path(keeping, "/public/a"), "/public/a");
}

}  // namespace
