// Slow and many clients against one gateway worker: heads dripped a byte at a time (slowloris),
// bodies that stall, readers that stop reading, and more connections than max_connections. What
// must hold: every other client keeps being served, header_timeout and idle_timeout close what
// they should, max_connections is never passed, and nothing is left open afterwards.
#include "admin_probes.hpp"
#include "e2e_config.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/test_upstream.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace gw::test;
using namespace std::chrono_literals;

class slow_clients_test : public ::testing::Test {
 protected:
  slow_clients_test()
      : gateway_{gateway_binary(),
                 e2e_config(ports_, {upstream_.port()},
                            "  header_timeout: 1s\n  idle_timeout: 1s\n  max_connections: 64\n")} {
    gateway_.wait_ready(ports_.admin);
    EXPECT_EQ(request(ports_.listen, "GET", "/warm").status, 200);
    fds_ = gateway_.open_fds();
  }

  // Requests of another client on fresh connections, all while the slow ones go on.
  int served(int n) {
    int ok = 0;
    for (int i = 0; i < n; ++i) ok += request(ports_.listen, "GET", "/ok", {}, {}, 5s).status == 200;
    return ok;
  }

  // The slow clients' connections are gone: at most an upstream connection more in the pool
  // (one opened while another was still on its way back) than after the first request.
  bool back_to_idle() {
    return eventually([&] { return gateway_.open_fds() <= fds_ + 1; }, 5s);
  }

  test_upstream upstream_;
  e2e_ports ports_;
  gateway_process gateway_;
  std::size_t fds_ = 0;
};

TEST_F(slow_clients_test, dripped_heads_are_cut_at_header_timeout_and_others_are_served) {
  // 40 connections, each sent a byte of a head every 100 ms: the head never ends within 1 s.
  const std::string head = "GET /drip HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(200, 'p');
  std::vector<std::unique_ptr<client_connection>> slow;
  for (int i = 0; i < 40; ++i) slow.push_back(std::make_unique<client_connection>(ports_.listen));
  std::atomic<bool> stop{false};
  std::thread drip{[&] {
    for (std::size_t at = 0; at < head.size() && !stop; ++at) {
      for (auto& c : slow) {
        try {
          c->send(head.substr(at, 1));
        } catch (const std::exception&) {  // closed by the gateway: what is wanted
        }
      }
      std::this_thread::sleep_for(100ms);
    }
  }};
  EXPECT_EQ(served(30), 30);
  for (auto& c : slow) EXPECT_TRUE(c->wait_closed(3s));
  stop = true;
  drip.join();
  EXPECT_TRUE(back_to_idle()) << gateway_.open_fds() << " descriptors, " << fds_ << " idle";
  EXPECT_EQ(upstream_.requests().size(), 31u);  // /warm and the 30: nothing of the drips
}

TEST_F(slow_clients_test, a_body_that_stalls_is_closed_after_idle_timeout) {
  client_connection c{ports_.listen};
  c.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + std::string(10, 'b'));
  EXPECT_EQ(served(5), 5);
  EXPECT_TRUE(c.wait_closed(4s));
  EXPECT_TRUE(back_to_idle());
}

TEST_F(slow_clients_test, a_reader_that_stops_reading_is_dropped_in_bounded_memory) {
  const long rss_before = gateway_.rss_kib();
  // 256 MiB asked for and never read: the gateway's writes stall, and after idle_timeout it
  // gives up on the connection (and on the upstream's). It never buffers the body.
  client_connection c{ports_.listen};
  c.send("GET /download?bytes=268435456 HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(served(5), 5);
  EXPECT_TRUE(back_to_idle()) << gateway_.open_fds() << " descriptors, " << fds_ << " idle";
  EXPECT_LT(gateway_.rss_kib() - rss_before, 32 * 1024) << "RSS growth in KiB";
}

TEST_F(slow_clients_test, max_connections_holds_against_many_idle_connections) {
  std::vector<std::unique_ptr<client_connection>> many;
  for (int i = 0; i < 80; ++i) many.push_back(std::make_unique<client_connection>(ports_.listen));
  // The gateway holds at most 64 of them (each a descriptor); the others are closed at once,
  // well before header_timeout (1 s) would close any.
  std::this_thread::sleep_for(200ms);
  EXPECT_LE(gateway_.open_fds(), fds_ + 64);
  int closed = 0;
  for (auto& c : many) closed += c->wait_closed(1ms);
  EXPECT_GE(closed, 80 - 64);
  EXPECT_LT(closed, 80);
  many.clear();
  EXPECT_TRUE(back_to_idle());
  EXPECT_EQ(served(5), 5);
}

}  // namespace
