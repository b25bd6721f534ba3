// The process around the proxy: command line, reload on SIGHUP under traffic, drain on SIGTERM,
// and the connection guards (header_timeout, idle_timeout, max_connections).
#include "admin_probes.hpp"
#include "e2e_config.hpp"
#include "support/http_client.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <csignal>
#include <future>
#include <thread>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;

TEST(command_line, version_and_check_config) {
  const auto version = run_gateway(gateway_binary(), {"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("gateway ", 0), 0u);

  e2e_ports ports;
  const auto good = write_temp_file(e2e_config(ports, {9}), "good.yaml");
  const auto ok = run_gateway(gateway_binary(), {"--check-config", good});
  EXPECT_EQ(ok.exit_code, 0);
  EXPECT_EQ(ok.out, "ok\n");

  const auto bad = write_temp_file("server:\n  listn: 1\n  idle_timeout: 5 parsecs\n"
                                   "upstreams: {}\nroutes:\n  - name: r\n    upstream: nope\n",
                                   "bad.yaml");
  const auto failed = run_gateway(gateway_binary(), {"--check-config", bad});
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_NE(failed.out.find(bad + ":2:3: unknown key \"listn\""), std::string::npos) << failed.out;
  EXPECT_NE(failed.out.find(bad + ":3:17: "), std::string::npos) << failed.out;
  EXPECT_NE(failed.out.find(bad + ":7:15: "), std::string::npos) << failed.out;
  EXPECT_EQ(failed.out.find("ok"), std::string::npos);

  // Running with a broken file refuses to start and says why.
  const auto refused = run_gateway(gateway_binary(), {"--config", bad});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("unknown key \"listn\""), std::string::npos) << refused.err;
}

TEST(command_line, the_shipped_demo_configuration_is_valid) {
  const auto result =
      run_gateway(gateway_binary(), {"--check-config", GATEWAY_SOURCE_DIR "/conf/gateway.yaml"});
  EXPECT_EQ(result.exit_code, 0) << result.out;
  EXPECT_EQ(result.out, "ok\n");
}

// Keeps `clients` keep-alive connections busy until stopped; counts what was not a 200.
class traffic {
 public:
  traffic(std::uint16_t port, int clients) {
    for (int i = 0; i < clients; ++i)
      threads_.emplace_back([this, port] {
        try {
          client_connection c{port};
          while (!stop_) {
            c.send("GET /load HTTP/1.1\r\nHost: x\r\n\r\n");
            const auto reply = c.read_reply();
            ++(reply.status == 200 ? ok_ : failed_);
            if (!reply.keep_alive) c = client_connection{port};
          }
        } catch (const std::exception&) {
          ++failed_;
        }
      });
  }
  ~traffic() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  int ok() const { return ok_; }
  int failed() const { return failed_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0};
  std::vector<std::thread> threads_;
};

TEST(reload, valid_and_invalid_files_under_traffic_without_a_failed_request) {
  test_upstream old_upstream, new_upstream;
  e2e_ports ports;
  gateway_process gateway{gateway_binary(), e2e_config(ports, {old_upstream.port()})};
  gateway.wait_ready(ports.admin);

  traffic load{ports.listen, 8};
  // A slow request in flight across the reload finishes under the old snapshot.
  auto in_flight = std::async(std::launch::async, [&] {
    return request(ports.listen, "GET", "/slow?ms=800");
  });
  std::this_thread::sleep_for(300ms);

  gateway.write_config(e2e_config(ports, {new_upstream.port()}));
  gateway.send_signal(SIGHUP);
  ASSERT_TRUE(gateway.wait_for_stderr("configuration reloaded", 5s)) << gateway.stderr_text();
  std::this_thread::sleep_for(300ms);
  const auto new_seen = new_upstream.request_count();
  EXPECT_GT(new_seen, 0u);

  gateway.write_config("server:\n  workers: [oops]\nroutes: 7\n");
  gateway.send_signal(SIGHUP);
  ASSERT_TRUE(gateway.wait_for_stderr("reload failed", 5s)) << gateway.stderr_text();
  EXPECT_TRUE(gateway.wait_for_stderr("2:12:", 1s)) << gateway.stderr_text();
  std::this_thread::sleep_for(300ms);

  load.stop();
  const auto slow = in_flight.get();
  EXPECT_EQ(slow.status, 200);
  EXPECT_EQ(slow.header("X-Upstream-Port"), std::to_string(old_upstream.port()));
  EXPECT_EQ(load.failed(), 0);
  EXPECT_GT(load.ok(), 100);
  // The invalid file changed nothing: traffic still goes to the new upstream.
  EXPECT_GT(new_upstream.request_count(), new_seen);
  EXPECT_EQ(request(ports.listen, "GET", "/after").header("X-Upstream-Port"),
            std::to_string(new_upstream.port()));
  EXPECT_TRUE(gateway.running());
}

TEST(reload, an_idle_keep_alive_connection_outlives_the_snapshot_it_waited_under) {
  test_upstream first, second;
  e2e_ports ports;
  gateway_process gateway{gateway_binary(), e2e_config(ports, {first.port()})};
  gateway.wait_ready(ports.admin);

  client_connection idle{ports.listen};
  idle.send("GET /before HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_EQ(idle.read_reply().status, 200);

  // Two reloads while the connection waits for its next request: the snapshot it started
  // waiting under may be gone by then (its settings were copied, not referred to).
  for (int i = 0; i < 2; ++i) {
    gateway.write_config(e2e_config(ports, {second.port()}, "  idle_timeout: " +
                                                                std::to_string(30 + i) + "s\n"));
    gateway.send_signal(SIGHUP);
    const auto reloads = [&] {
      const auto text = gateway.stderr_text();
      int n = 0;
      for (auto at = text.find("configuration reloaded"); at != std::string::npos;
           at = text.find("configuration reloaded", at + 1))
        ++n;
      return n;
    };
    ASSERT_TRUE(eventually([&] { return reloads() == i + 1; }, 5s)) << gateway.stderr_text();
  }
  idle.send("GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto reply = idle.read_reply();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("X-Upstream-Port"), std::to_string(second.port()));
  EXPECT_TRUE(gateway.running());
}

TEST(reload, a_new_store_waits_for_a_restart_and_the_running_one_goes_on) {
  test_upstream upstream;
  e2e_ports ports;
  const std::string limited_route =
      "routes:\n  - name: all\n    match: { path_prefix: / }\n    upstream: backend\n"
      "    limits:\n      - name: per_ip\n        key: [client_ip]\n        requests: 3\n"
      "        window: 1h\n";
  gateway_process gateway{gateway_binary(),
                          e2e_config(ports, {upstream.port()}, "", "", limited_route)};
  gateway.wait_ready(ports.admin);
  EXPECT_EQ(request(ports.listen, "GET", "/").status, 200);

  // The file now names a Redis (nobody listens there): the memory store keeps counting.
  gateway.write_config("storage:\n  backend: redis\n  failure_mode: closed\n  redis:\n"
                       "    address: 127.0.0.1:1\n" +
                       e2e_config(ports, {upstream.port()}, "", "", limited_route));
  gateway.send_signal(SIGHUP);
  ASSERT_TRUE(gateway.wait_for_stderr("change only on restart", 5s)) << gateway.stderr_text();
  ASSERT_TRUE(gateway.wait_for_stderr("configuration reloaded", 5s)) << gateway.stderr_text();
  EXPECT_EQ(request(ports.listen, "GET", "/").status, 200);
  EXPECT_EQ(request(ports.listen, "GET", "/").status, 200);
  EXPECT_EQ(request(ports.listen, "GET", "/").status, 429);  // the 4th of 3, counted in memory
  // Every check of the four counted against the memory store; no series says otherwise.
  EXPECT_EQ(metric(ports.admin, "gateway_store_duration_seconds_count", {"backend=\"memory\""}),
            4);
  EXPECT_EQ(request(ports.admin, "GET", "/metrics").body.find("backend=\"redis\""),
            std::string::npos);
  EXPECT_EQ(readyz(ports.admin), 200);
}

TEST(drain, sigterm_finishes_the_request_in_flight_then_exits_zero) {
  test_upstream upstream;
  e2e_ports ports;
  gateway_process gateway{gateway_binary(), e2e_config(ports, {upstream.port()})};
  gateway.wait_ready(ports.admin);

  client_connection idle{ports.listen};
  idle.send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(idle.read_reply().status, 200);

  auto in_flight = std::async(std::launch::async, [&] {
    return request(ports.listen, "GET", "/slow?ms=1000");
  });
  while (upstream.request_count() < 2) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(request(ports.admin, "GET", "/readyz").status, 200);
  gateway.send_signal(SIGTERM);
  // Draining: not ready any more, while the request in flight goes on.
  const auto readiness_deadline = std::chrono::steady_clock::now() + 2s;
  int readiness = 200;
  while (readiness == 200 && std::chrono::steady_clock::now() < readiness_deadline) {
    readiness = request(ports.admin, "GET", "/readyz").status;
    if (readiness == 200) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(readiness, 503);

  const auto reply = in_flight.get();
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, "slow\n");
  EXPECT_TRUE(idle.wait_closed(5s));  // the idle keep-alive connection was closed
  EXPECT_EQ(gateway.wait_exit(10s), 0);
}

TEST(connection_guards, header_timeout_idle_timeout_and_max_connections) {
  test_upstream upstream;
  e2e_ports ports;
  std::string yaml = e2e_config(ports, {upstream.port()},
                                "  header_timeout: 500ms\n  idle_timeout: 700ms\n"
                                "  max_connections: 3\n");
  gateway_process gateway{gateway_binary(), yaml};
  gateway.wait_ready(ports.admin);

  // Slowloris: a head that never completes is cut off after header_timeout.
  client_connection slow{ports.listen};
  slow.send("GET / HTTP/1.1\r\nHost: x\r\n");
  EXPECT_TRUE(slow.wait_closed(3s));

  // A keep-alive connection left idle is closed after idle_timeout.
  client_connection idle{ports.listen};
  idle.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(idle.read_reply().status, 200);
  EXPECT_FALSE(idle.wait_closed(300ms));
  EXPECT_TRUE(idle.wait_closed(3s));

  // Past max_connections a new connection is closed at once; the open ones keep working.
  std::vector<client_connection> open;
  for (int i = 0; i < 3; ++i) {
    open.emplace_back(ports.listen);
    open.back().send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(open.back().read_reply().status, 200);
  }
  if (e2e_over_tls()) {
    // Closed before the handshake could end.
    EXPECT_THROW(client_connection{ports.listen}, std::runtime_error);
  } else {
    client_connection extra{ports.listen};
    EXPECT_TRUE(extra.wait_closed(2s));
  }
  open[0].send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(open[0].read_reply().status, 200);
}

}  // namespace

namespace {

// systemd's end of sd_notify: a datagram socket whose path the gateway finds in NOTIFY_SOCKET.
class notify_socket {
 public:
  notify_socket() : path_(write_temp_file("", "placeholder") + ".notify") {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket(AF_UNIX)");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path_.size() >= sizeof address.sun_path) throw std::runtime_error("path too long");
    std::memcpy(address.sun_path, path_.c_str(), path_.size());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      throw std::runtime_error("bind " + path_);
  }
  ~notify_socket() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

  // The next message, or "" after `timeout`.
  std::string next(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return {};
    char buffer[4096];
    const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
  }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST(systemd_notify, ready_reloading_and_stopping_are_told_to_notify_socket) {
  notify_socket systemd;
  ::setenv("NOTIFY_SOCKET", systemd.path().c_str(), 1);
  test_upstream upstream;
  e2e_ports ports;
  gateway_process gateway{gateway_binary(), e2e_config(ports, {upstream.port()})};
  ::unsetenv("NOTIFY_SOCKET");
  const auto ready = systemd.next(10s);
  EXPECT_TRUE(ready.starts_with("READY=1\n")) << ready;
  // Told once it listens: requests are served from then on.
  EXPECT_EQ(request(ports.listen, "GET", "/after-ready").status, 200);

  gateway.send_signal(SIGHUP);
  const auto reloading = systemd.next(5s);
  EXPECT_TRUE(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC=")) << reloading;
  EXPECT_TRUE(systemd.next(5s).starts_with("READY=1\n"));

  gateway.write_config("server: [broken\n");
  gateway.send_signal(SIGHUP);
  EXPECT_TRUE(systemd.next(5s).starts_with("RELOADING=1\n"));
  const auto after_failure = systemd.next(5s);
  EXPECT_TRUE(after_failure.starts_with("READY=1\n")) << after_failure;
  EXPECT_NE(after_failure.find("the last reload failed"), std::string::npos) << after_failure;

  gateway.send_signal(SIGTERM);
  EXPECT_TRUE(systemd.next(5s).starts_with("STOPPING=1\n"));
  EXPECT_EQ(gateway.wait_exit(10s), 0);
}

}  // namespace
