// A worker's upstream connections: idle keep-alive connections per server, round robin over a
// route's servers, and ejection of servers after consecutive connect failures. One per worker
// thread, so nothing here is shared or locked.
#pragma once

#include "proxy/snapshot.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include "proxy/tls_socket.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace gw::proxy {

struct upstream_connection {
  explicit upstream_connection(boost::asio::io_context& io) : stream(io) {}

  // "host:port" of the server, for the access log; formatted once per connection.
  const std::string& label() {
    if (label_.empty()) {
      const auto address = server.address();
      label_ = (address.is_v6() ? "[" + address.to_string() + "]" : address.to_string()) + ":" +
               std::to_string(server.port());
    }
    return label_;
  }

  tls_socket stream;  // plain, or TLS when its upstream has tls
  boost::beast::flat_buffer buffer;
  boost::asio::ip::tcp::endpoint server;

 private:
  std::string label_;
};

class upstream_pool {
 public:
  using clock = std::chrono::steady_clock;

  // The healthy servers of an upstream in the order to try them, starting at the round-robin
  // position, which advances by one per call, into `out`. Empty when every server is ejected.
  void candidates(const resolved_upstream& upstream, clock::time_point now,
                  std::vector<boost::asio::ip::tcp::endpoint>& out);

  // An idle connection to `server` made with the same TLS (`tls_identity`, null for plain), or
  // null; an idle one made with other TLS (another upstream's, or before a reload) is dropped.
  // With `probe`, one the upstream has closed meanwhile is noticed (a non-blocking peek, one
  // syscall) and dropped; without, the caller must be able to retry on a fresh connection, as it
  // can for a request without a body.
  std::unique_ptr<upstream_connection> take_idle(const boost::asio::ip::tcp::endpoint& server,
                                                 bool probe, const void* tls_identity);
  void give_back(std::unique_ptr<upstream_connection> conn, std::size_t max_idle);

  void record_connect_failure(const boost::asio::ip::tcp::endpoint& server,
                              const config::upstream& settings, clock::time_point now);
  void record_connect_success(const boost::asio::ip::tcp::endpoint& server);

  void clear() { servers_.clear(); }

 private:
  struct server_state {
    unsigned consecutive_failures = 0;
    clock::time_point ejected_until{};
    std::vector<std::unique_ptr<upstream_connection>> idle;
  };

  std::map<boost::asio::ip::tcp::endpoint, server_state> servers_;
  std::map<std::string, std::size_t, std::less<>> next_;  // round-robin position per upstream
};

}  // namespace gw::proxy
