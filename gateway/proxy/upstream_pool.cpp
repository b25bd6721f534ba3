// Upstream connection reuse, round robin and ejection (see upstream_pool.hpp).
#include "proxy/upstream_pool.hpp"

#include <sys/socket.h>

#include <algorithm>

namespace gw::proxy {

using tcp = boost::asio::ip::tcp;

void upstream_pool::candidates(const resolved_upstream& upstream, clock::time_point now,
                               std::vector<tcp::endpoint>& healthy) {
  healthy.clear();
  for (const auto& server : upstream.servers) {
    auto state = servers_.find(server);
    if (state == servers_.end() || state->second.ejected_until <= now) healthy.push_back(server);
  }
  if (healthy.empty()) return;
  // Rotate over the healthy servers only, so that an ejected server's turns spread evenly.
  auto it = next_.find(upstream.settings->name);
  if (it == next_.end()) it = next_.emplace(upstream.settings->name, 0).first;
  const auto start = static_cast<std::ptrdiff_t>(it->second++ % healthy.size());
  std::rotate(healthy.begin(), healthy.begin() + start, healthy.end());
}

std::unique_ptr<upstream_connection> upstream_pool::take_idle(const tcp::endpoint& server,
                                                              bool probe,
                                                              const void* tls_identity) {
  auto state = servers_.find(server);
  if (state == servers_.end()) return nullptr;
  auto& idle = state->second.idle;
  while (!idle.empty()) {
    auto conn = std::move(idle.back());
    idle.pop_back();
    if (conn->stream.tls_identity() != tls_identity) continue;  // closed by the destructor
    if (!probe) return conn;
    // A peer that closed while the connection sat idle shows up as EOF (or stray bytes); such a
    // connection would fail the request, so it is dropped here instead.
    char byte;
    const auto fd = conn->stream.socket().native_handle();
    const auto n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return conn;
  }
  return nullptr;
}

void upstream_pool::give_back(std::unique_ptr<upstream_connection> conn, std::size_t max_idle) {
  auto& idle = servers_[conn->server].idle;
  if (idle.size() >= max_idle) return;  // closed by the destructor
  conn->buffer.clear();
  idle.push_back(std::move(conn));
}

void upstream_pool::record_connect_failure(const tcp::endpoint& server,
                                           const config::upstream& settings,
                                           clock::time_point now) {
  auto& state = servers_[server];
  if (++state.consecutive_failures >= settings.eject_after_failures &&
      settings.eject_after_failures > 0) {
    state.ejected_until = now + settings.eject_for;
    state.consecutive_failures = 0;
  }
}

void upstream_pool::record_connect_success(const tcp::endpoint& server) {
  servers_[server].consecutive_failures = 0;
}

}  // namespace gw::proxy
