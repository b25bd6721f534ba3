// One immutable, fully prepared configuration: routes compiled, upstream addresses resolved.
// Workers hold a shared_ptr to the current one; a request keeps the snapshot it began with, so a
// reload never changes the rules under a request in flight.
#pragma once

#include "config/config.hpp"
#include "identity/client_ip.hpp"
#include "identity/consumers.hpp"
#include "limit/route_limits.hpp"
#include "proxy/proxy_metrics.hpp"
#include "proxy/router.hpp"
#include "tls/server_contexts.hpp"
#include "tls/upstream_context.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <deque>
#include <memory>
#include <vector>

namespace gw::proxy {

struct resolved_upstream {
  const config::upstream* settings;
  std::vector<boost::asio::ip::tcp::endpoint> servers;
  std::vector<std::string> hosts;  // each server's host as written: SNI and the name verified
  std::shared_ptr<const tls::upstream_context> tls;  // null: plain HTTP
};

class snapshot {
 public:
  // Throws std::runtime_error when a server address does not resolve, or a TLS file cannot be
  // used (read again here: a reload picks up renewed certificates). The metric series of the
  // config's routes and upstreams are resolved in `registry` here, once.
  static std::shared_ptr<const snapshot> build(std::shared_ptr<const config::gateway_config> cfg,
                                               metrics::registry& registry);

  const config::gateway_config& config() const { return *config_; }
  const router& routes() const { return router_; }
  const config::route& route(std::size_t index) const { return config_->routes[index]; }
  const resolved_upstream& upstream_of(std::size_t route_index) const {
    return upstreams_[route_upstream_[route_index]];
  }
  const limit::route_limits& limits_of(std::size_t route_index) const {
    return route_limits_[route_index];
  }
  const identity::client_ip_resolver& client_ips() const { return client_ips_; }
  // Series by route index; unrouted() for requests no route matched.
  route_series& series_of(std::size_t route_index) const { return route_series_[route_index]; }
  route_series& unrouted() const { return *unrouted_; }
  upstream_series& upstream_series_of(std::size_t route_index) const {
    return upstream_series_[route_upstream_[route_index]];
  }
  const identity::consumer_directory& consumers() const { return consumers_; }
  // The downstream TLS contexts when server.tls is set; null for plain HTTP.
  const std::shared_ptr<const tls::server_contexts>& tls() const { return tls_; }
  enum class handshake_error { timeout, closed, certificate, protocol };
  metrics::counter& tls_handshake_errors(handshake_error reason) const {
    return *tls_handshake_errors_[static_cast<std::size_t>(reason)];
  }

 private:
  snapshot(std::shared_ptr<const config::gateway_config> cfg, metrics::registry& registry);

  std::shared_ptr<const config::gateway_config> config_;
  router router_;
  std::vector<resolved_upstream> upstreams_;
  std::vector<std::size_t> route_upstream_;  // route index -> index into upstreams_
  std::vector<limit::route_limits> route_limits_;
  identity::client_ip_resolver client_ips_;
  identity::consumer_directory consumers_;
  // Recording mutates the series, not the snapshot: hence mutable.
  mutable std::deque<route_series> route_series_;
  mutable std::deque<upstream_series> upstream_series_;
  std::unique_ptr<route_series> unrouted_;
  std::shared_ptr<const tls::server_contexts> tls_;
  std::array<metrics::counter*, 4> tls_handshake_errors_{};  // by handshake_error, with tls_
};

}  // namespace gw::proxy
