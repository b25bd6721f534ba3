// Feeds bytes as the gateway YAML file (config::load_string, as --check-config and a reload read
// it). Checks that a result is valid exactly when no problem is an error, that every problem
// formats, and that a valid config builds what a snapshot builds from it without throwing: the
// router (its regexes), the trusted-proxy CIDR set, the consumer directory, the limits of every
// route, and every route's upstream exists.
#include "config/loader.hpp"
#include "identity/client_ip.hpp"
#include "identity/consumers.hpp"
#include "limit/route_limits.hpp"
#include "proxy/router.hpp"

#include "fuzz_check.hpp"
#include "load_check.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view yaml{reinterpret_cast<const char*>(bytes), size};
  const auto result = gw::config::load_string(yaml);
  check_load_result(result);
  if (!result.ok()) return 0;

  const auto& cfg = *result.config;
  const gw::proxy::router routes{cfg.routes};
  const gw::identity::cidr_set trusted{cfg.identity.trusted_proxies};
  const gw::identity::consumer_directory consumers{cfg.consumers};
  for (const auto& route : cfg.routes) {
    FUZZ_CHECK(cfg.find_upstream(route.upstream) != nullptr);
    const gw::limit::route_limits limits{route, cfg.storage.redis.key_prefix};
    (void)limits;
  }
  return 0;
}
