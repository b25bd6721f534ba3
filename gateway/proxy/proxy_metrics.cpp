// Resolving the proxy's series (see proxy_metrics.hpp).
#include "proxy/proxy_metrics.hpp"

namespace gw::proxy {

std::string_view to_string(decision d) {
  switch (d) {
    case decision::allowed: return "allowed";
    case decision::limited: return "limited";
    case decision::shadow_limited: return "shadow_limited";
    case decision::error: return "error";
  }
  return "allowed";
}

route_series::route_series(metrics::registry& registry, const config::route* route)
    : duration(registry.request_duration(route ? route->name : "")),
      requests(4,
               [&registry, name = std::string{route ? route->name : ""}](unsigned code,
                                                                         std::size_t d) {
                 return registry.requests(name, code, to_string(static_cast<decision>(d)));
               }),
      failures{nullptr, nullptr} {
  if (!route) return;  // no route, no limits: nothing else to count
  failures = {registry.ratelimit_failures(route->name, false),
              registry.ratelimit_failures(route->name, true)};
  for (const auto& l : route->limits)
    limit_checks.push_back({registry.ratelimit_checks(route->name, l.name, false),
                            registry.ratelimit_checks(route->name, l.name, true)});
}

upstream_series::upstream_series(metrics::registry& registry, const std::string& name)
    : responses(1, [&registry, name](unsigned code, std::size_t) {
        return registry.upstream_requests(name, code);
      }),
      duration(registry.upstream_duration(name)),
      errors{registry.upstream_errors(name, "connect"), registry.upstream_errors(name, "timeout"),
             registry.upstream_errors(name, "reset"), registry.upstream_errors(name, "protocol"),
             registry.upstream_errors(name, "tls")} {}

}  // namespace gw::proxy
