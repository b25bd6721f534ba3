// The Envoy rate limit service end to end: the real binary with domain files, called by a real
// gRPC client built from proto/, asserting what Envoy acts on: codes, statuses in order,
// current_limit, limit_remaining, duration_until_reset and the headers to add.
#include "admin_probes.hpp"
#include "e2e_config.hpp"
#include "support/redis_server.hpp"

#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;
namespace rlsv3 = envoy::service::ratelimit::v3;
using response = rlsv3::RateLimitResponse;

// A folder of domain files, removed when the test ends.
class domain_folder {
 public:
  domain_folder() {
    char pattern[] = "/tmp/gateway-rls-XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~domain_folder() { std::filesystem::remove_all(path_); }
  void write(const std::string& name, const std::string& yaml) const {
    const auto tmp = path_ + "/." + name + ".tmp";
    std::ofstream{tmp} << yaml;
    std::filesystem::rename(tmp, path_ + "/" + name);  // a reload never reads half a file
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct rls_ports : e2e_ports {
  std::uint16_t rls = free_port();
};

std::string gateway_yaml(const rls_ports& p, const std::string& domains,
                         const std::string& rls_extra = "", const std::string& storage = "") {
  return e2e_config(p, {free_port()}) + storage + "rls:\n  listen: 127.0.0.1:" +
         std::to_string(p.rls) + "\n  config: [" + domains + "]\n" + rls_extra;
}

using entries = std::vector<std::pair<std::string, std::string>>;

struct call {
  call(std::string d, std::vector<entries> ds, std::uint32_t hits = 0,
       std::vector<std::optional<std::uint64_t>> own_hits = {})
      : domain(std::move(d)), descriptors(std::move(ds)), hits_addend(hits),
        descriptor_hits(std::move(own_hits)) {}
  std::string domain;
  std::vector<entries> descriptors;
  std::uint32_t hits_addend;
  std::vector<std::optional<std::uint64_t>> descriptor_hits;  // per descriptor, when set
};

class rls_client {
 public:
  explicit rls_client(std::uint16_t port)
      : channel_(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials())),
        stub_(rlsv3::RateLimitService::NewStub(channel_)),
        health_(grpc::health::v1::Health::NewStub(channel_)) {}

  grpc::Status ask(const rlsv3::RateLimitRequest& req, response& resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    return stub_->ShouldRateLimit(&ctx, req, &resp);
  }

  response ask(const call& c) {
    response resp;
    const auto status = ask(request_of(c), resp);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return resp;
  }

  static rlsv3::RateLimitRequest request_of(const call& c) {
    rlsv3::RateLimitRequest req;
    req.set_domain(c.domain);
    req.set_hits_addend(c.hits_addend);
    for (std::size_t i = 0; i < c.descriptors.size(); ++i) {
      auto* d = req.add_descriptors();
      for (const auto& [k, v] : c.descriptors[i]) {
        auto* e = d->add_entries();
        e->set_key(k);
        e->set_value(v);
      }
      if (i < c.descriptor_hits.size() && c.descriptor_hits[i])
        d->mutable_hits_addend()->set_value(*c.descriptor_hits[i]);
    }
    return req;
  }

  grpc::Status health(const std::string& service, grpc::health::v1::HealthCheckResponse& out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    return health_->Check(&ctx, req, &out);
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<rlsv3::RateLimitService::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

std::string header_of(const response& r, const std::string& name) {
  for (const auto& h : r.response_headers_to_add())
    if (h.key() == name) return h.value();
  return "";
}

const std::string edge_domain = R"(domain: edge
descriptors:
  # Each client address counts apart: 3 an hour, envoyproxy/ratelimit's fixed window aligned to
  # the hour (hours, not minutes, so that no test run straddles a window's end).
  - key: remote_address
    rate_limit:
      unit: hour
      requests_per_unit: 3
  # Paths: exact beats a prefix beats the key alone.
  - key: path
    value: /admin
    rate_limit: { unit: hour, requests_per_unit: 1 }
  - key: path
    value: /api/*
    rate_limit: { unit: hour, requests_per_unit: 2 }
  - key: path
    rate_limit: { unit: second, requests_per_unit: 100 }
  # Nested: a tenant's plan decides.
  - key: tenant
    descriptors:
      - key: plan
        value: gold
        rate_limit: { unit: day, requests_per_unit: 50 }
      - key: plan
        rate_limit: { unit: day, requests_per_unit: 5 }
  - key: internal
    rate_limit: { unlimited: true }
  - key: canary
    shadow_mode: true
    rate_limit: { unit: hour, requests_per_unit: 1 }
  # Ours: any window, any algorithm, a burst.
  - key: bucket
    rate_limit: { algorithm: token_bucket, window: 1h, requests_per_unit: 1, burst: 3 }
  - key: odd_window
    rate_limit: { window: 90s, requests_per_unit: 2 }
  # replaces: a specific limit takes the place of a general one when both match.
  - key: user
    rate_limit: { name: per_user, unit: hour, requests_per_unit: 2 }
  - key: vip
    rate_limit:
      name: vip_user
      unit: hour
      requests_per_unit: 10
      replaces: [{ name: per_user }]
)";

class rls_test : public ::testing::Test {
 protected:
  rls_test() {
    folder.write("edge.yaml", edge_domain);
    gateway.emplace(gateway_binary(), gateway_yaml(ports, folder.path()));
    gateway->wait_ready(ports.admin);
  }

  domain_folder folder;
  rls_ports ports;
  std::optional<gateway_process> gateway;
};

TEST_F(rls_test, a_key_only_entry_counts_each_value_apart_with_envoy_fields) {
  rls_client client{ports.rls};
  std::vector<int> codes;
  std::vector<std::uint32_t> remaining;
  response last;
  for (int i = 0; i < 5; ++i) {
    last = client.ask({"edge", {{{"remote_address", "10.0.0.1"}}}});
    ASSERT_EQ(last.statuses_size(), 1);
    codes.push_back(last.statuses(0).code());
    remaining.push_back(last.statuses(0).limit_remaining());
    if (i == 0) {
      EXPECT_EQ(last.overall_code(), response::OK);
      const auto& current = last.statuses(0).current_limit();
      EXPECT_EQ(current.requests_per_unit(), 3u);
      EXPECT_EQ(current.unit(), response::RateLimit::HOUR);
      EXPECT_EQ(current.name(), "remote_address");
      const auto reset = last.statuses(0).duration_until_reset().seconds();
      EXPECT_GE(reset, 0);
      EXPECT_LE(reset, 3600);
      EXPECT_EQ(header_of(last, "RateLimit-Policy"), R"("remote_address";q=3;w=3600)");
    }
  }
  EXPECT_EQ(codes, (std::vector<int>{response::OK, response::OK, response::OK,
                                     response::OVER_LIMIT, response::OVER_LIMIT}));
  EXPECT_EQ(remaining, (std::vector<std::uint32_t>{2, 1, 0, 0, 0}));
  EXPECT_EQ(last.overall_code(), response::OVER_LIMIT);
  EXPECT_FALSE(header_of(last, "Retry-After").empty());
  EXPECT_EQ(header_of(last, "RateLimit").rfind(R"("remote_address";r=0;t=)", 0), 0u);

  // Another address has its own count.
  const auto other = client.ask({"edge", {{{"remote_address", "10.0.0.2"}}}});
  EXPECT_EQ(other.overall_code(), response::OK);
  EXPECT_EQ(other.statuses(0).limit_remaining(), 2u);
}

TEST_F(rls_test, exact_beats_prefix_beats_key_only_and_statuses_keep_request_order) {
  rls_client client{ports.rls};
  const auto r = client.ask({"edge",
                             {{{"path", "/admin"}},
                              {{"path", "/api/users"}},
                              {{"path", "/home"}},
                              {{"nothing", "here"}},
                              {{"tenant", "t1"}, {"plan", "gold"}},
                              {{"tenant", "t1"}, {"plan", "free"}},
                              {{"tenant", "t1"}}}});
  ASSERT_EQ(r.statuses_size(), 7);
  EXPECT_EQ(r.statuses(0).current_limit().requests_per_unit(), 1u);
  EXPECT_EQ(r.statuses(0).current_limit().unit(), response::RateLimit::HOUR);
  EXPECT_EQ(r.statuses(1).current_limit().requests_per_unit(), 2u);
  EXPECT_EQ(r.statuses(2).current_limit().requests_per_unit(), 100u);
  EXPECT_EQ(r.statuses(2).current_limit().unit(), response::RateLimit::SECOND);
  // Nothing matches: OK and no limit.
  EXPECT_EQ(r.statuses(3).code(), response::OK);
  EXPECT_FALSE(r.statuses(3).has_current_limit());
  EXPECT_EQ(r.statuses(4).current_limit().requests_per_unit(), 50u);
  EXPECT_EQ(r.statuses(4).current_limit().unit(), response::RateLimit::DAY);
  EXPECT_EQ(r.statuses(5).current_limit().requests_per_unit(), 5u);
  // A tenant alone stops at an entry without a rate_limit: no limit.
  EXPECT_FALSE(r.statuses(6).has_current_limit());
  EXPECT_EQ(r.overall_code(), response::OK);

  // The second call to /admin is over (1 an hour); the other statuses stay OK, in order.
  const auto again = client.ask({"edge", {{{"path", "/home"}}, {{"path", "/admin"}}}});
  EXPECT_EQ(again.statuses(0).code(), response::OK);
  EXPECT_EQ(again.statuses(1).code(), response::OVER_LIMIT);
  EXPECT_EQ(again.overall_code(), response::OVER_LIMIT);
}

TEST_F(rls_test, unlimited_shadow_and_replaces) {
  rls_client client{ports.rls};
  for (int i = 0; i < 3; ++i) {
    const auto r = client.ask({"edge", {{{"internal", "batch"}}}});
    EXPECT_EQ(r.statuses(0).code(), response::OK);
    EXPECT_EQ(r.statuses(0).limit_remaining(), 4294967295u);
  }
  // shadow_mode: over the limit is reported in metrics, never to Envoy.
  for (int i = 0; i < 3; ++i) {
    const auto r = client.ask({"edge", {{{"canary", "c"}}}});
    EXPECT_EQ(r.overall_code(), response::OK);
    EXPECT_EQ(r.statuses(0).code(), response::OK);
  }
  EXPECT_EQ(metric(ports.admin, "gateway_ratelimit_checks_total",
                   {R"(route="rls:edge")", R"(limit="canary")", R"(result="limited")"}),
            2);
  // vip_user replaces per_user when both match: 10 an hour instead of 2.
  for (int i = 0; i < 4; ++i) {
    const auto r = client.ask({"edge", {{{"user", "u1"}}, {{"vip", "u1"}}}});
    EXPECT_EQ(r.overall_code(), response::OK) << i;
    EXPECT_FALSE(r.statuses(0).has_current_limit());
    EXPECT_EQ(r.statuses(1).current_limit().name(), "vip_user");
  }
  // The order of the descriptors does not matter.
  const auto reversed = client.ask({"edge", {{{"vip", "u3"}}, {{"user", "u3"}}}});
  EXPECT_EQ(reversed.statuses(0).current_limit().name(), "vip_user");
  EXPECT_FALSE(reversed.statuses(1).has_current_limit());
  // Alone, per_user applies.
  std::vector<int> codes;
  for (int i = 0; i < 3; ++i)
    codes.push_back(client.ask({"edge", {{{"user", "u2"}}}}).overall_code());
  EXPECT_EQ(codes, (std::vector<int>{response::OK, response::OK, response::OVER_LIMIT}));
}

TEST_F(rls_test, hits_addend_from_the_request_or_the_descriptor) {
  rls_client client{ports.rls};
  // 3 an hour: a cost of 2 leaves 1; another 2 does not fit.
  auto r = client.ask({"edge", {{{"remote_address", "10.1.0.1"}}}, 2});
  EXPECT_EQ(r.statuses(0).code(), response::OK);
  EXPECT_EQ(r.statuses(0).limit_remaining(), 1u);
  r = client.ask({"edge", {{{"remote_address", "10.1.0.1"}}}, 2});
  EXPECT_EQ(r.statuses(0).code(), response::OVER_LIMIT);
  // The descriptor's own hits_addend wins over the request's; 0 means 1.
  r = client.ask({"edge", {{{"remote_address", "10.1.0.2"}}}, 3, {std::uint64_t{1}}});
  EXPECT_EQ(r.statuses(0).limit_remaining(), 2u);
  r = client.ask({"edge", {{{"remote_address", "10.1.0.2"}}}, 0});
  EXPECT_EQ(r.statuses(0).limit_remaining(), 1u);
  r = client.ask({"edge", {{{"remote_address", "10.1.0.2"}}}, 2, {std::uint64_t{0}}});
  EXPECT_EQ(r.statuses(0).limit_remaining(), 0u);  // the descriptor's 0 is 1, not the request's 2
  // A cost far above the limit is over, not an overflow.
  r = client.ask({"edge", {{{"remote_address", "10.1.0.3"}}}, 0, {std::uint64_t{1} << 63}});
  EXPECT_EQ(r.statuses(0).code(), response::OVER_LIMIT);
}

TEST_F(rls_test, our_extensions_any_window_and_algorithm) {
  rls_client client{ports.rls};
  std::vector<int> codes;
  for (int i = 0; i < 4; ++i)
    codes.push_back(client.ask({"edge", {{{"bucket", "b"}}}}).statuses(0).code());
  EXPECT_EQ(codes, (std::vector<int>{response::OK, response::OK, response::OK,
                                     response::OVER_LIMIT}));
  const auto r = client.ask({"edge", {{{"odd_window", "w"}}}});
  EXPECT_EQ(r.statuses(0).current_limit().unit(), response::RateLimit::UNKNOWN);
  EXPECT_EQ(r.statuses(0).current_limit().requests_per_unit(), 2u);
  EXPECT_EQ(header_of(r, "RateLimit-Policy"), R"("odd_window";q=2;w=90)");
}

TEST_F(rls_test, unknown_domain_is_ok_and_bad_requests_are_invalid_argument) {
  rls_client client{ports.rls};
  const auto r = client.ask({"nobody", {{{"remote_address", "1"}}, {{"path", "/"}}}});
  EXPECT_EQ(r.overall_code(), response::OK);
  ASSERT_EQ(r.statuses_size(), 2);
  EXPECT_FALSE(r.statuses(0).has_current_limit());

  auto refused = [&](const rlsv3::RateLimitRequest& req) {
    response resp;
    const auto status = client.ask(req, resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    return status.error_message();
  };
  EXPECT_EQ(refused(rls_client::request_of({"", {{{"remote_address", "1"}}}})),
            "domain must not be empty");
  EXPECT_EQ(refused(rls_client::request_of({"edge", {}})), "at least one descriptor is required");
  entries many;
  for (int i = 0; i < 1000; ++i) many.emplace_back("k" + std::to_string(i), "v");
  EXPECT_EQ(refused(rls_client::request_of({"edge", {many}})),
            "descriptors[0] has 1000 entries; at most 64");
  const std::string huge(1 << 20, 'x');
  EXPECT_EQ(refused(rls_client::request_of({"edge", {{{"remote_address", huge}}}})),
            "descriptors[0].entries[0] is 1048590 bytes; at most 4096");
  // And the service goes on.
  EXPECT_EQ(client.ask({"edge", {{{"remote_address", "10.9.9.9"}}}}).overall_code(), response::OK);
  EXPECT_TRUE(gateway->running());
}

TEST_F(rls_test, health_and_metrics) {
  rls_client client{ports.rls};
  grpc::health::v1::HealthCheckResponse h;
  ASSERT_TRUE(client.health("", h).ok());
  EXPECT_EQ(h.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  ASSERT_TRUE(client.health("envoy.service.ratelimit.v3.RateLimitService", h).ok());
  EXPECT_EQ(h.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(client.health("no.such.Service", h).error_code(), grpc::StatusCode::NOT_FOUND);

  for (int i = 0; i < 4; ++i) client.ask({"edge", {{{"remote_address", "secret-10.7.7.7"}}}});
  client.ask({"nobody", {{{"x", "y"}}}});
  EXPECT_EQ(metric(ports.admin, "gateway_rls_requests_total", {R"(domain="edge")", R"(code="ok")"}),
            3);
  EXPECT_EQ(metric(ports.admin, "gateway_rls_requests_total",
                   {R"(domain="edge")", R"(code="over_limit")"}),
            1);
  EXPECT_EQ(metric(ports.admin, "gateway_rls_requests_total",
                   {R"(domain="unknown")", R"(code="ok")"}),
            1);
  EXPECT_EQ(metric(ports.admin, "gateway_rls_duration_seconds_count", {R"(domain="edge")"}), 4);
  EXPECT_EQ(metric(ports.admin, "gateway_ratelimit_checks_total",
                   {R"(route="rls:edge")", R"(limit="remote_address")"}),
            4);
  const auto text =
      request(ports.admin, "GET", "/metrics", {}, {}, std::chrono::seconds(2)).body;
  EXPECT_NE(text.find("gateway_rls_requests_total{"), std::string::npos);
  EXPECT_EQ(text.find("secret-10.7.7.7"), std::string::npos);
}

TEST_F(rls_test, concurrent_calls_admit_exactly_the_limit) {
  // 8 client threads, 25 calls each, one address: exactly 3 OK (2 workers, one memory store).
  std::atomic<int> ok{0}, over{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      rls_client client{ports.rls};
      for (int i = 0; i < 25; ++i) {
        const auto r = client.ask({"edge", {{{"remote_address", "10.5.5.5"}}}});
        (r.overall_code() == response::OK ? ok : over)++;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 3);
  EXPECT_EQ(over.load(), 197);
}

TEST_F(rls_test, sighup_reloads_the_domain_files_all_or_nothing) {
  rls_client client{ports.rls};
  EXPECT_EQ(client.ask({"edge", {{{"remote_address", "r"}}}}).statuses(0).current_limit()
                .requests_per_unit(),
            3u);
  std::string changed = edge_domain;
  changed.replace(changed.find("requests_per_unit: 3"), 20, "requests_per_unit: 7");
  folder.write("edge.yaml", changed);
  folder.write("extra.yaml", "domain: extra\ndescriptors:\n  - key: k\n"
                             "    rate_limit: { unit: second, requests_per_unit: 9 }\n");
  gateway->send_signal(SIGHUP);
  ASSERT_TRUE(eventually(
      [&] {
        return metric(ports.admin, "gateway_config_reloads_total", {R"(result="success")"}) == 1;
      },
      10s));
  EXPECT_EQ(client.ask({"edge", {{{"remote_address", "r"}}}}).statuses(0).current_limit()
                .requests_per_unit(),
            7u);
  EXPECT_EQ(client.ask({"extra", {{{"k", "v"}}}}).statuses(0).current_limit().requests_per_unit(),
            9u);

  // A broken file changes nothing: both domains stay as they were, though edge.yaml changed too.
  changed.replace(changed.find("requests_per_unit: 7"), 20, "requests_per_unit: 8");
  folder.write("edge.yaml", changed);
  folder.write("extra.yaml", "domain: extra\ndescriptors:\n  - key: k\n    colour: blue\n");
  gateway->send_signal(SIGHUP);
  ASSERT_TRUE(eventually(
      [&] {
        return metric(ports.admin, "gateway_config_reloads_total", {R"(result="failure")"}) == 1;
      },
      10s));
  EXPECT_TRUE(gateway->wait_for_stderr("extra.yaml:4:5: unknown key \"colour\"", 5s))
      << gateway->stderr_text();
  EXPECT_EQ(client.ask({"extra", {{{"k", "v"}}}}).statuses(0).current_limit().requests_per_unit(),
            9u);
  EXPECT_EQ(client.ask({"edge", {{{"remote_address", "r"}}}}).statuses(0).current_limit()
                .requests_per_unit(),
            7u);
}

TEST(rls_config, check_config_reports_domain_file_problems_with_their_position) {
  domain_folder folder;
  folder.write("a.yaml", "domain: a\ndescriptors:\n  - key: k\n    rate_limit:\n"
                         "      unit: fortnight\n      requests_per_unit: 1\n"
                         "  - key: k\n    rate_limit: { unit: second }\n");
  folder.write("b.yaml", "domain: a\ndescriptors: []\n");
  rls_ports ports;
  const auto config = write_temp_file(gateway_yaml(ports, folder.path()), "gateway.yaml");
  const auto result = run_gateway(gateway_binary(), {"--check-config", config});
  EXPECT_EQ(result.exit_code, 1);
  const auto a = folder.path() + "/a.yaml";
  EXPECT_NE(result.out.find(a + ":5:13: descriptors[0].rate_limit.unit: expected one of second, "
                                "minute, hour, day, week, month, year, got \"fortnight\""),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find(a + ":7:5: descriptors[1]: key \"k\" is already listed at line 3"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("domain \"a\" of \"" + folder.path() + "/b.yaml\" is already defined"),
            std::string::npos)
      << result.out;
}

TEST(rls_redis, one_limit_across_gateways_and_the_failure_modes) {
  redis_server redis;
  domain_folder folder;
  folder.write("edge.yaml", edge_domain);
  const std::string storage = "storage:\n  backend: redis\n  redis:\n    address: 127.0.0.1:" +
                              std::to_string(redis.port()) + "\n";
  rls_ports open_ports, closed_ports;
  gateway_process open_gw{gateway_binary(), gateway_yaml(open_ports, folder.path(), "", storage)};
  gateway_process closed_gw{gateway_binary(),
                            gateway_yaml(closed_ports, folder.path(), "  failure_mode: closed\n",
                                         storage)};
  open_gw.wait_ready(open_ports.admin);
  closed_gw.wait_ready(closed_ports.admin);
  rls_client a{open_ports.rls}, b{closed_ports.rls};

  // Two gateways, one count: 3 an hour in all.
  std::vector<int> codes;
  for (int i = 0; i < 3; ++i) {
    codes.push_back(a.ask({"edge", {{{"remote_address", "10.2.0.1"}}}}).overall_code());
    codes.push_back(b.ask({"edge", {{{"remote_address", "10.2.0.1"}}}}).overall_code());
  }
  EXPECT_EQ(std::count(codes.begin(), codes.end(), response::OK), 3);
  // The store keys carry the keys of the descriptor, never its values.
  const auto keys = redis.command({"KEYS", "*"});
  EXPECT_NE(keys.find("rl:{rls:edge:remote_address:"), std::string::npos) << keys;
  EXPECT_EQ(keys.find("10.2.0.1"), std::string::npos) << keys;

  redis.stop();
  const auto opened = a.ask({"edge", {{{"remote_address", "10.2.0.9"}}}});
  EXPECT_EQ(opened.overall_code(), response::OK);
  response closed;
  const auto status =
      b.ask(rls_client::request_of({"edge", {{{"remote_address", "10.2.0.9"}}}}), closed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(metric(closed_ports.admin, "gateway_rls_requests_total",
                   {R"(domain="edge")", R"(code="error")"}),
            1);
  grpc::health::v1::HealthCheckResponse h;
  auto serving = [&](grpc::health::v1::HealthCheckResponse::ServingStatus wanted) {
    return eventually(
        [&] {
          return b.health("envoy.service.ratelimit.v3.RateLimitService", h).ok() &&
                 h.status() == wanted;
        },
        10s);
  };
  EXPECT_TRUE(serving(grpc::health::v1::HealthCheckResponse::NOT_SERVING));
  // The process itself stays SERVING.
  ASSERT_TRUE(b.health("", h).ok());
  EXPECT_EQ(h.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  redis.start();
  EXPECT_TRUE(serving(grpc::health::v1::HealthCheckResponse::SERVING));
  EXPECT_TRUE(eventually(
      [&] {
        response r;
        return b.ask(rls_client::request_of({"edge", {{{"remote_address", "10.2.0.10"}}}}), r)
                   .ok() &&
               r.overall_code() == response::OK;
      },
      10s));
}

class rls_algorithm_test : public ::testing::TestWithParam<std::string> {};

// Every algorithm, two gateways of two workers each on one Redis, eight client threads at once:
// exactly the limit is admitted.
TEST_P(rls_algorithm_test, exact_across_two_gateways_under_concurrent_calls) {
  redis_server redis;
  domain_folder folder;
  folder.write("edge.yaml", "domain: edge\ndescriptors:\n  - key: k\n    rate_limit: { algorithm: " +
                                GetParam() + ", unit: hour, requests_per_unit: 20 }\n");
  const std::string storage = "storage:\n  backend: redis\n  redis:\n    address: 127.0.0.1:" +
                              std::to_string(redis.port()) + "\n    command_timeout: 2s\n";
  // Fail closed: a store too slow for a loaded machine shows as UNAVAILABLE, never as an OK.
  rls_ports pa, pb;
  gateway_process a{gateway_binary(),
                    gateway_yaml(pa, folder.path(), "  failure_mode: closed\n", storage)};
  gateway_process b{gateway_binary(),
                    gateway_yaml(pb, folder.path(), "  failure_mode: closed\n", storage)};
  a.wait_ready(pa.admin);
  b.wait_ready(pb.admin);
  std::atomic<int> ok{0}, over{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      rls_client client{t % 2 ? pa.rls : pb.rls};
      for (int i = 0; i < 15; ++i) {
        response r;
        const auto status = client.ask(rls_client::request_of({"edge", {{{"k", "shared"}}}}), r);
        if (!status.ok())
          failed++;
        else
          (r.overall_code() == response::OK ? ok : over)++;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(ok.load(), 20);
  EXPECT_EQ(over.load(), 100);
}

INSTANTIATE_TEST_SUITE_P(every_algorithm, rls_algorithm_test,
                         ::testing::Values("fixed_window", "sliding_window", "sliding_log",
                                           "token_bucket", "gcra"));

// Leases serve the rate limit service too; one key twice in a call (two identical descriptors)
// is checked twice, never answered from a lease as if it were once.
TEST(rls_lease, leased_calls_and_repeated_descriptors_stay_within_the_limit) {
  redis_server redis;
  domain_folder folder;
  folder.write("edge.yaml", "domain: edge\ndescriptors:\n  - key: k\n"
                            "    rate_limit: { unit: hour, requests_per_unit: 60 }\n");
  const std::string storage = "storage:\n  backend: redis\n  local_cache: false\n  redis:\n"
                              "    address: 127.0.0.1:" + std::to_string(redis.port()) + "\n"
                              "    command_timeout: 2s\n"
                              "  lease:\n    max_units: 16\n    max_duration: 50ms\n";
  rls_ports pa, pb;
  gateway_process a{gateway_binary(),
                    gateway_yaml(pa, folder.path(), "  failure_mode: closed\n", storage)};
  gateway_process b{gateway_binary(),
                    gateway_yaml(pb, folder.path(), "  failure_mode: closed\n", storage)};
  a.wait_ready(pa.admin);
  b.wait_ready(pb.admin);
  std::atomic<int> units{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      rls_client client{t % 2 ? pa.rls : pb.rls};
      for (int i = 0; i < 60; ++i) {
        // Mostly one descriptor (the key turns hot and is leased), every third call two.
        const bool twice = i % 3 == 2;
        std::vector<entries> d = {{{"k", "shared"}}};
        if (twice) d.push_back({{"k", "shared"}});
        response r;
        if (!client.ask(rls_client::request_of({"edge", d}), r).ok()) {
          failed++;
          continue;
        }
        for (const auto& st : r.statuses())
          if (st.code() == response::OK) units++;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  // Every OK status is a unit the store counted: at most 60.
  EXPECT_LE(units.load(), 60);
  EXPECT_GE(units.load(), 50) << "under-admission";
  EXPECT_GT(metric(pa.admin, "gateway_leases_total") + metric(pb.admin, "gateway_leases_total"), 0);
}

}  // namespace
