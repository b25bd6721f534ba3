// Building a snapshot: resolve every upstream server once, at load or reload time.
#include "proxy/snapshot.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <stdexcept>

namespace gw::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

snapshot::snapshot(std::shared_ptr<const config::gateway_config> cfg, metrics::registry& registry)
    : config_(std::move(cfg)),
      router_(config_->routes),
      client_ips_(identity::cidr_set{config_->identity.trusted_proxies}),
      consumers_(config_->consumers) {
  for (const auto& route : config_->routes) {
    route_limits_.emplace_back(route, config_->storage.redis.key_prefix);
    route_series_.emplace_back(registry, &route);
  }
  for (const auto& up : config_->upstreams) upstream_series_.emplace_back(registry, up.name);
  unrouted_ = std::make_unique<route_series>(registry, nullptr);
}

std::shared_ptr<const snapshot> snapshot::build(std::shared_ptr<const config::gateway_config> cfg,
                                                metrics::registry& registry) {
  auto snap = std::shared_ptr<snapshot>(new snapshot(std::move(cfg), registry));
  if (const auto& tls = snap->config_->server.tls) {
    snap->tls_ = tls::server_contexts::build(*tls);
    // At 0 from the start (SPEC 8): the configuration fixes that these exist.
    snap->tls_handshake_errors_ = {registry.tls_handshake_errors("timeout"),
                                   registry.tls_handshake_errors("closed"),
                                   registry.tls_handshake_errors("certificate"),
                                   registry.tls_handshake_errors("protocol")};
  }
  asio::io_context io;
  tcp::resolver resolver{io};
  for (const auto& up : snap->config_->upstreams) {
    resolved_upstream resolved{&up, {}, {}, nullptr};
    if (up.tls) resolved.tls = tls::upstream_context::build(*up.tls);
    for (const auto& server : up.servers) {
      boost::system::error_code ec;
      auto results = resolver.resolve(server.host, std::to_string(server.port),
                                      tcp::resolver::numeric_service, ec);
      if (ec || results.empty())
        throw std::runtime_error("upstream " + up.name + ": cannot resolve " +
                                 server.to_string() + ": " + ec.message());
      resolved.servers.push_back(results.begin()->endpoint());
      resolved.hosts.push_back(server.host);
    }
    snap->upstreams_.push_back(std::move(resolved));
  }
  for (const auto& route : snap->config_->routes) {
    std::size_t index = 0;
    while (snap->config_->upstreams[index].name != route.upstream) ++index;  // validated by loader
    snap->route_upstream_.push_back(index);
  }
  std::vector<std::pair<std::string, double>> expiry;
  if (snap->tls_)
    for (const auto& served : snap->tls_->served())
      expiry.emplace_back(served.server_name,
                          std::chrono::duration<double>(served.not_after.time_since_epoch()).count());
  registry.set_tls_certificate_expiry(std::move(expiry));
  return snap;
}

}  // namespace gw::proxy
