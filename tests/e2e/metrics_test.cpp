// /metrics end to end: after a known sequence of requests the counters say exactly that,
// promtool accepts the exposition, and a real Prometheus server scrapes and stores it.
#include "e2e_config.hpp"
#include "support/http_client.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fcntl.h>
#include <cstdio>
#include <fstream>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>

extern char** environ;

namespace {

using namespace gw::test;
using namespace std::chrono_literals;

// The value of one series in an exposition, or -1 when absent.
double sample(const std::string& text, const std::string& series) {
  std::size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::stod(text.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

std::string scrape(std::uint16_t admin) { return request(admin, "GET", "/metrics").body; }

// A request is counted just after its response is written, so a client can read the response
// before the count moves: scrape until `series` shows `value` (or 5 s pass), then return that.
std::string scrape_when(std::uint16_t admin, const std::string& series, double value) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  std::string m = scrape(admin);
  while (sample(m, series) != value && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    m = scrape(admin);
  }
  return m;
}

bool have(const char* program) {
  return std::system((std::string{"command -v "} + program + " >/dev/null 2>&1").c_str()) == 0;
}

class metrics_test : public ::testing::Test {
 protected:
  metrics_test() {
    const std::string routes =
        "routes:\n"
        "  - name: api\n    match: { path_prefix: /api }\n    upstream: backend\n"
        "    limits:\n      - name: per_ip\n        key: [client_ip]\n"
        "        algorithm: fixed_window\n        requests: 2\n        window: 1h\n"
        "  - name: dry\n    match: { path_prefix: /dry }\n    upstream: backend\n"
        "    shadow: true\n"
        "    limits:\n      - name: per_ip\n        key: [client_ip]\n"
        "        algorithm: fixed_window\n        requests: 1\n        window: 1h\n"
        "  - name: broken\n    match: { path_prefix: /broken }\n    upstream: dead\n"
        "  - name: slow\n    match: { path_prefix: /slow }\n    upstream: backend\n";
    const std::string upstreams = "    timeout: 300ms\n  dead:\n    servers: [127.0.0.1:" +
                                  std::to_string(free_port()) + "]\n";
    gateway_.emplace(gateway_binary(), e2e_config(ports_, {upstream_.port()}, "", upstreams, routes));
    gateway_->wait_ready(ports_.admin);
  }

  // The known sequence: 2 admitted + 1 limited on api, 1 admitted + 1 shadow-limited on dry,
  // a refused upstream (502), a slow one (504), a 404.
  void run_sequence() {
    for (int i = 0; i < 3; ++i) request(ports_.listen, "GET", "/api/x");
    for (int i = 0; i < 2; ++i) request(ports_.listen, "GET", "/dry/x");
    EXPECT_EQ(request(ports_.listen, "GET", "/broken").status, 502);
    EXPECT_EQ(request(ports_.listen, "GET", "/api/slow?ms=2000").status, 429);  // still limited
    EXPECT_EQ(request(ports_.listen, "GET", "/nowhere").status, 404);
  }

  test_upstream upstream_;
  e2e_ports ports_;
  std::optional<gateway_process> gateway_;
};

TEST_F(metrics_test, counters_match_a_known_sequence_exactly) {
  run_sequence();
  // A worker counts a request after its answer is out, so the client may be faster than the
  // counters: wait for the last request of each worker-spread kind, then read them all.
  for (const auto& [series, value] : std::vector<std::pair<std::string, double>>{
           {R"(gateway_request_duration_seconds_count{route="api"})", 4},
           {R"(gateway_request_duration_seconds_count{route="dry"})", 2},
           {R"(gateway_request_duration_seconds_count{route="broken"})", 1}})
    scrape_when(ports_.admin, series, value);
  const auto m = scrape_when(
      ports_.admin, R"(gateway_requests_total{route="",code="404",decision="allowed"})", 1);
  EXPECT_EQ(sample(m, R"(gateway_requests_total{route="api",code="200",decision="allowed"})"), 2);
  EXPECT_EQ(sample(m, R"(gateway_requests_total{route="api",code="429",decision="limited"})"), 2);
  EXPECT_EQ(sample(m, R"(gateway_requests_total{route="dry",code="200",decision="allowed"})"), 1);
  EXPECT_EQ(sample(m, R"(gateway_requests_total{route="dry",code="200",decision="shadow_limited"})"), 1);
  EXPECT_EQ(sample(m, R"(gateway_requests_total{route="broken",code="502",decision="allowed"})"), 1);
  EXPECT_EQ(sample(m, R"(gateway_requests_total{route="",code="404",decision="allowed"})"), 1);
  EXPECT_EQ(sample(m, R"(gateway_ratelimit_checks_total{route="api",limit="per_ip",result="allowed"})"), 2);
  EXPECT_EQ(sample(m, R"(gateway_ratelimit_checks_total{route="api",limit="per_ip",result="limited"})"), 2);
  EXPECT_EQ(sample(m, R"(gateway_ratelimit_checks_total{route="dry",limit="per_ip",result="limited"})"), 1);
  EXPECT_EQ(sample(m, R"(gateway_request_duration_seconds_count{route="api"})"), 4);
  EXPECT_EQ(sample(m, R"(gateway_upstream_requests_total{upstream="backend",code="200"})"), 4);
  EXPECT_EQ(sample(m, R"(gateway_upstream_errors_total{upstream="dead",kind="connect"})"), 1);
  EXPECT_EQ(sample(m, R"(gateway_upstream_duration_seconds_count{upstream="backend"})"), 4);
  EXPECT_EQ(sample(m, R"(gateway_store_duration_seconds_count{backend="memory"})"), 6);
  EXPECT_EQ(sample(m, R"(gateway_build_info{version=")" GATEWAY_VERSION R"("})"), 1);
  EXPECT_GT(sample(m, "process_resident_memory_bytes"), 1e6);
  EXPECT_GT(sample(m, "process_open_fds"), 3);
  EXPECT_GT(sample(m, "process_start_time_seconds"), 1.6e9);
  EXPECT_GE(sample(m, "process_cpu_seconds_total"), 0);
  EXPECT_GE(sample(m, "gateway_connections_active"), 0);
  // No client address, key or path ever becomes a label.
  EXPECT_EQ(m.find("127.0.0.1"), std::string::npos);
  EXPECT_EQ(m.find("/api/x"), std::string::npos);
}

TEST_F(metrics_test, upstream_timeouts_and_reloads_are_counted) {
  // Series the configuration fixes are there at 0 before their first event (SPEC 8).
  auto start = scrape(ports_.admin);
  EXPECT_EQ(sample(start, R"(gateway_config_reloads_total{result="failure"})"), 0);
  EXPECT_EQ(sample(start, R"(gateway_config_reloads_total{result="success"})"), 0);
  EXPECT_EQ(sample(start, R"(gateway_upstream_errors_total{upstream="backend",kind="timeout"})"), 0);
  EXPECT_EQ(request(ports_.listen, "GET", "/slow?ms=2000").status, 504);
  auto m = scrape_when(ports_.admin,
                       R"(gateway_requests_total{route="slow",code="504",decision="allowed"})", 1);
  EXPECT_EQ(sample(m, R"(gateway_upstream_errors_total{upstream="backend",kind="timeout"})"), 1);

  gateway_->write_config("server: [broken\n");
  gateway_->send_signal(SIGHUP);
  ASSERT_TRUE(gateway_->wait_for_stderr("reload failed", 5s));
  m = scrape(ports_.admin);
  EXPECT_EQ(sample(m, R"(gateway_config_reloads_total{result="failure"})"), 1);
}

// Heads refused before any route was looked at: counted with no route and logged, as errors.
TEST_F(metrics_test, heads_refused_before_routing_count_as_errors) {
  for (const std::string& raw : {std::string{"GET / HTTP/1.1\r\nHost: a\r\nX-Cr: a\rb\r\n\r\n"},
                                std::string{"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n"},
                                "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(70000, 'x') +
                                    "\r\n\r\n"}) {
    client_connection c{ports_.listen};
    c.send(raw);
    EXPECT_GE(c.read_reply().status, 400);
  }
  auto m = scrape_when(ports_.admin, R"(gateway_requests_total{route="",code="400",decision="error"})",
                       2);
  EXPECT_EQ(sample(m, R"(gateway_requests_total{route="",code="400",decision="error"})"), 2);
  m = scrape_when(ports_.admin, R"(gateway_requests_total{route="",code="431",decision="error"})",
                  1);
  EXPECT_EQ(sample(m, R"(gateway_requests_total{route="",code="431",decision="error"})"), 1);
  EXPECT_TRUE(gateway_->wait_for_stdout(R"("status":431,"decision":"error")", 5s));
  EXPECT_TRUE(gateway_->wait_for_stdout(R"("status":400,"decision":"error")", 5s));
}

TEST_F(metrics_test, promtool_accepts_the_exposition) {
  if (!have("promtool")) GTEST_SKIP() << "promtool not installed (scripts/install-deps test)";
  run_sequence();
  const auto path = write_temp_file(
      scrape_when(ports_.admin, R"(gateway_requests_total{route="",code="404",decision="allowed"})",
                  1),
      "metrics.txt");
  const auto rc = std::system(("promtool check metrics < " + path + " > " + path + ".out 2>&1").c_str());
  std::ifstream out{path + ".out"};
  const std::string report{std::istreambuf_iterator<char>{out}, {}};
  EXPECT_EQ(rc, 0) << report;
}

// A real Prometheus server scraping the admin port, queried through its HTTP API.
TEST_F(metrics_test, a_real_prometheus_ingests_the_series) {
  if (!have("prometheus")) GTEST_SKIP() << "prometheus not installed (scripts/install-deps test)";
  run_sequence();
  const auto web = free_port();
  const auto config = write_temp_file(
      "global:\n  scrape_interval: 1s\n"
      "scrape_configs:\n  - job_name: gateway\n    static_configs:\n"
      "      - targets: ['127.0.0.1:" + std::to_string(ports_.admin) + "']\n",
      "prometheus.yml");
  const auto dir = config.substr(0, config.rfind('/'));
  std::vector<std::string> args = {"prometheus", "--config.file=" + config,
                                   "--storage.tsdb.path=" + dir + "/tsdb",
                                   "--web.listen-address=127.0.0.1:" + std::to_string(web),
                                   "--log.level=error"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, (dir + "/prometheus.log").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawnp(&pid, "prometheus", &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  struct reaper {
    pid_t pid;
    ~reaper() {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } guard{pid};

  const std::string query =
      "/api/v1/query?query=gateway_requests_total%7Broute%3D%22api%22%2Cdecision%3D%22limited%22%7D";
  std::string last;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      last = request(web, "GET", query, {}, {}, 5s).body;
      if (last.find(R"("route":"api")") != std::string::npos &&
          last.find(R"(,"2"]}]})") != std::string::npos)
        break;
    } catch (const std::exception&) {
      // not listening yet
    }
    std::this_thread::sleep_for(250ms);
  }
  EXPECT_NE(last.find(R"("job":"gateway")"), std::string::npos) << last;
  EXPECT_NE(last.find(R"(,"2"]}]})"), std::string::npos) << last;
}

}  // namespace
