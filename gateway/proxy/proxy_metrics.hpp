// The series the proxy records into, resolved once per config snapshot (route, limit and
// upstream names come from the config), so that a request only follows pointers.
#pragma once

#include "config/config.hpp"
#include "metrics/metrics.hpp"

#include <array>
#include <string_view>
#include <vector>

namespace gw::proxy {

// gateway_requests_total's decision label.
enum class decision { allowed, limited, shadow_limited, error };
std::string_view to_string(decision d);

enum class upstream_error { connect, timeout, reset, protocol, tls };

struct route_series {
  route_series(metrics::registry& registry, const config::route* route);  // null: no route

  metrics::histogram* duration;
  metrics::code_counters requests;  // by code and decision
  std::vector<std::array<metrics::counter*, 2>> limit_checks;  // by limit: allowed, limited
  std::array<metrics::counter*, 2> failures;                   // mode open, closed
};

struct upstream_series {
  upstream_series(metrics::registry& registry, const std::string& name);

  metrics::code_counters responses;
  metrics::histogram* duration;
  std::array<metrics::counter*, 5> errors;  // by upstream_error
};

}  // namespace gw::proxy
