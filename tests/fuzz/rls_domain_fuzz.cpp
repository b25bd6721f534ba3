// Feeds bytes as an RLS domain file (rls.config), read by the loader from a memfd through
// /proc/self/fd: the real file path, without the disk. Checks the loader's result as config_fuzz
// does, and that a valid domain compiles into a domain_set in which its name is found and every
// descriptor path of the file matches the limit written there: a key with its exact value is
// never shadowed by a prefix or by the key alone, and the store key is key_head + 16 hex digits.
#include "config/loader.hpp"
#include "rls/domains.hpp"

#include "fuzz_check.hpp"
#include "load_check.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

using gw::config::rls_descriptor;
using gw::rls::entry_view;

// Every path of exact values (no wildcard, none of key alone) ending in a rate_limit: it must
// match that rate_limit.
void check_paths(const gw::rls::domain& d, const std::vector<rls_descriptor>& level,
                 std::vector<entry_view>& path) {
  for (const auto& desc : level) {
    if (!desc.value || (!desc.value->empty() && desc.value->back() == '*')) continue;
    path.push_back({desc.key, *desc.value});
    const auto* m = d.match(path);
    if (desc.rate_limit) {
      FUZZ_CHECK(m != nullptr);
      // (The domain_set compiles its own copy of the settings: compare what was read.)
      const auto& r = *desc.rate_limit;
      FUZZ_CHECK(m->source->name == r.name && m->source->unlimited == r.unlimited &&
                 m->source->requests == r.requests && m->source->window == r.window &&
                 m->source->algorithm == r.algorithm && m->source->burst == r.burst);
      std::string key;
      gw::rls::store_key(*m, path, key);
      FUZZ_CHECK(key.size() == m->key_head.size() + 17 && key.starts_with(m->key_head) &&
                 key.ends_with('}'));
    } else {
      FUZZ_CHECK(m == nullptr);
    }
    check_paths(d, desc.descriptors, path);
    path.pop_back();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  static const int fd = memfd_create("rls_domain_fuzz", 0);
  static const std::string gateway_yaml = "rls:\n  listen: 127.0.0.1:18081\n  config: /proc/self/fd/" +
                                          std::to_string(fd) + "\n";
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(ftruncate(fd, 0) == 0);
  FUZZ_CHECK(pwrite(fd, bytes, size, 0) == static_cast<ssize_t>(size));

  const auto result = gw::config::load_string(gateway_yaml);
  check_load_result(result);
  if (!result.ok()) return 0;

  const auto& cfg = *result.config;
  FUZZ_CHECK(cfg.rls && cfg.rls->domains.size() == 1);
  const auto& source = cfg.rls->domains.front();
  const gw::rls::domain_set domains{*cfg.rls, cfg.storage.redis.key_prefix,
                                    cfg.storage.local_cache, cfg.storage.lease, nullptr};
  const auto* d = domains.find(source.domain);
  FUZZ_CHECK(d != nullptr);
  std::vector<entry_view> path;
  check_paths(*d, source.descriptors, path);
  return 0;
}
