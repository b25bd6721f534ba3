// The few behaviours of the configuration structs: printing an endpoint, finding an upstream.
#include "config/config.hpp"

#include <algorithm>

namespace gw::config {

std::string endpoint::to_string() const {
  // A colon in the host can only be an IPv6 literal; brackets keep its port readable.
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::string_view to_string(store_backend backend) {
  switch (backend) {
    case store_backend::memory: return "memory";
    case store_backend::redis: return "redis";
    case store_backend::redis_cluster: return "redis_cluster";
  }
  return "memory";
}

const upstream* gateway_config::find_upstream(std::string_view name) const {
  auto it = std::find_if(upstreams.begin(), upstreams.end(),
                         [&](const upstream& u) { return u.name == name; });
  return it == upstreams.end() ? nullptr : &*it;
}

}  // namespace gw::config
