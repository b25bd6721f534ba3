// The per-request JSON access log on stdout. Each worker buffers its lines and writes them once
// per turn of its event loop: no lock between workers, one write(2) for many requests.
#pragma once

#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace gw::proxy {

struct access_entry {
  std::string_view request_id;
  std::string_view client_ip;
  std::string_view method;
  std::string_view path;
  std::string_view route;     // "" when no route matched
  std::string_view upstream;  // "" when nothing was forwarded
  unsigned status = 0;
  std::string_view decision;  // allowed | limited | shadow_limited | error
  double duration_ms = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
};

class access_log {
 public:
  explicit access_log(boost::asio::io_context& io) : io_(io) {}
  ~access_log() { flush(); }

  void write(const access_entry& entry);
  void flush();

 private:
  boost::asio::io_context& io_;
  std::string pending_;
  bool flush_posted_ = false;
  std::int64_t cached_second_ = -1;
  char cached_time_[32] = {};  // "2026-01-02T03:04:05" for cached_second_
};

}  // namespace gw::proxy
