// The few behaviours of the configuration structs: printing an endpoint, finding an upstream.
#include "config/config.hpp"

#include <algorithm>

namespace gw::config {

std::string endpoint::to_string() const {
  // A colon in the host can only be an IPv6 literal; brackets keep its port readable.
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

const upstream* gateway_config::find_upstream(std::string_view name) const {
  auto it = std::find_if(upstreams.begin(), upstreams.end(),
                         [&](const upstream& u) { return u.name == name; });
  return it == upstreams.end() ? nullptr : &*it;
}

}  // namespace gw::config
