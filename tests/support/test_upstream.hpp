// A real HTTP/1.1 upstream server on its own thread, scripted by path, for the end-to-end tests
// and the demo; bodies stream both ways so gigabyte transfers run in bounded memory.
#pragma once

#include "support/wire.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gw::test {

// One request as the upstream saw it, recorded when its head arrived.
struct received_request {
  std::string method;
  std::string target;
  header_list headers;
  std::uint64_t body_bytes = 0;  // set once the whole body was read
  std::string body;              // the first 64 KiB only

  // Case-insensitive; repeated fields joined with ", "; "" if absent.
  std::string header(std::string_view name) const { return header_value(headers, name); }
  bool has_header(std::string_view name) const { return header_present(headers, name); }
};

struct test_upstream_options {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;       // 0: the kernel picks one; read it back with port()
  bool record_requests = true;  // off for benchmarks: no lock and no copy per request
  unsigned threads = 1;
};

// Behaviour by path (the query string is parsed from the target):
//   /status/NNN            status NNN, body "status NNN\n" (none for 204 and 304)
//   /slow?ms=N             waits N ms (a timer, other connections go on), then 200 "slow\n"
//   /download?bytes=N      200, N pattern bytes in 64 KiB pieces; &chunked=1 for chunked framing
//   /upload                reads the body (any framing), 200 "<count> <fnv1a64 hex>"
//   /garbage               "this is not http\r\n\r\n", then closes
//   /truncated?bytes=N     200 with Content-Length N (default 1024), half of them, then closes
//   /endless-header        "HTTP/1.1 200 OK", then 1 KiB header lines until the peer closes
//   /reset                 closes abortively (RST), no response
//   /close                 200 "bye\n" with Connection: close, then closes
//   /interim               a 103 Early Hints, then 200 "final\n"
//   anything else          200 text/plain "hello from upstream\n"
// Every response carries X-Upstream-Port. HEAD gets GET's head, Content-Length included, and no
// body. A request's body is read in full before anything is answered (on other paths it is
// counted and discarded). "Expect: 100-continue" is answered with a 100 Continue before the body
// is read, as nginx does. A head that does not parse gets 400 and a close.
class test_upstream {
 public:
  test_upstream();
  explicit test_upstream(test_upstream_options options);
  ~test_upstream();

  test_upstream(const test_upstream&) = delete;
  test_upstream& operator=(const test_upstream&) = delete;

  std::uint16_t port() const;
  // Requests whose head was received.
  std::size_t request_count() const;
  // Connections accepted.
  std::size_t connection_count() const;
  // A copy of what was recorded (empty when record_requests is off).
  std::vector<received_request> requests() const;
  // Zeroes both counts and forgets the recorded requests.
  void reset_counters();
  // Closes every open connection, as an upstream that restarts or drops idle keep-alive
  // connections would; returns once they are closed. New connections are still accepted.
  void close_connections();

 private:
  struct state;
  std::unique_ptr<state> state_;  // keeps Asio and Beast out of the tests' headers
};

}  // namespace gw::test
