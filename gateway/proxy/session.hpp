// One downstream (client) connection: reads request heads, applies the framing rules, routes,
// forwards to the upstream and streams the response back, request after request (keep-alive
// and pipelining, answered in order).
#pragma once

#include "limit/verdict.hpp"
#include "proxy/tls_socket.hpp"
#include "proxy/http_types.hpp"
#include "proxy/request_rules.hpp"
#include "proxy/timed_socket.hpp"
#include "proxy/worker.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory_resource>
#include <optional>
#include <string>
#include <vector>

namespace gw::proxy {

class session {
 public:
  session(worker& owner, boost::asio::ip::tcp::socket socket);
  ~session();
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  boost::asio::awaitable<void> run();

  // Draining: a connection waiting for its next request is closed now; one in the middle of a
  // request finishes it and closes afterwards.
  void close_if_idle();

 private:
  using clock = std::chrono::steady_clock;

  enum class head_status { ready, closed, too_large, malformed };

  // What one request turned into, for the access log and the keep-alive decision.
  struct outcome {
    unsigned status = 0;
    bool keep_alive = false;
    std::string upstream;
    proxy::decision decision = proxy::decision::allowed;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
  };

  boost::asio::awaitable<head_status> read_head(bool first);
  boost::asio::awaitable<bool> handle_request(std::size_t head_length);
  boost::asio::awaitable<void> forward(const snapshot& snap, std::size_t route_index,
                                       request_parser& parser, std::string_view target,
                                       std::string_view request_id, std::string_view consumer,
                                       const limit::header_list& rate_headers, outcome& out);
  // Reads the next piece of the request body into `relay` and sets the body for the serializer
  // (that piece, and whether more follows); returns the client's error, if any.
  boost::asio::awaitable<boost::beast::error_code> read_body_piece(request_parser& parser,
                                                                   char* relay, outcome& out);
  // Answers a body that could not be read: 413 over the limit, 400 broken, nothing if the
  // client is gone.
  boost::asio::awaitable<void> refuse_body(boost::beast::error_code ec, outcome& out);
  // A complete JSON response from the gateway itself (errors). Returns bytes written.
  void record_refused_head(unsigned status, std::size_t bytes_out);
  boost::asio::awaitable<std::size_t> respond(unsigned status, std::string_view error,
                                              std::string_view message, bool keep_alive);
  boost::asio::awaitable<std::size_t> respond(unsigned status, std::string_view json,
                                              bool keep_alive,
                                              const limit::header_list* extra_headers = nullptr);
  // Before answering without reading the body: can the connection stay open?
  boost::asio::awaitable<bool> discard_body(request_parser& parser);
  boost::asio::awaitable<void> close_gracefully();
  boost::asio::awaitable<void> refuse_plain_http();

  worker& worker_;
  tls_socket stream_;  // the client: plain or TLS
  timed_socket::clock::time_point accepted_at_ = timed_socket::coarse_now();
  boost::beast::flat_buffer buffer_;
  head_scanner scanner_;
  boost::asio::ip::address peer_address_;
  std::string peer_ip_;
  bool idle_ = true;  // waiting for the first byte of a request

  // Per request, reused: the fields of the request's and the response's heads live in the arena
  // (emptied when the next request starts), heads are written into head_, and the servers to
  // try into candidates_. A request costs no allocation for any of them once warm.
  std::array<std::byte, 3072> arena_storage_;
  std::pmr::monotonic_buffer_resource arena_{arena_storage_.data(), arena_storage_.size()};
  // The parsers of the request and its response, here rather than in the coroutines' frames,
  // which Asio allocates per call (and recycles only below about 1 KiB).
  std::optional<request_parser> request_;
  std::optional<response_parser> response_;
  std::array<std::string_view, 16> forwarded_;  // the client's X-Forwarded-For lines
  std::string head_;  // also the gateway's own responses
  std::string body_;  // the body of a 429
  std::vector<boost::asio::ip::tcp::endpoint> candidates_;
  limit::request_limits limits_;  // its key strings and header list are reused too
  std::array<char, 32> request_id_;  // a generated X-Request-Id
};

}  // namespace gw::proxy
