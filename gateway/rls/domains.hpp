// The rate limit service's domains, compiled once per configuration: for a request's descriptors,
// which configured entry each one matches (envoyproxy/ratelimit's rules: key and value first,
// then a value prefix ending in '*', then the key alone), under which store key, with which
// numbers. Immutable and shared by every call that began under it.
#pragma once

#include "algorithms/algorithms.hpp"
#include "config/config.hpp"
#include "limit/route_limits.hpp"
#include "metrics/metrics.hpp"
#include "store/store.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw::rls {

// The request as it arrived, reduced to what matching needs.
struct entry_view {
  std::string_view key;
  std::string_view value;
};

// The limit of one matched entry. `limit` gives the headers and the verdict a name.
struct matched_limit {
  config::limit limit;                   // name: rate_limit.name, else the path of keys
  const config::rls_rate_limit* source;  // unit and requests for current_limit
  std::string limit_label;               // the path of keys, "KEY1.KEY2": metric label
  std::string key_head;                  // key_prefix + "{rls:DOMAIN:KEY1:KEY2:"
  bool shadow = false;
  std::array<metrics::counter*, 2> checks{};  // allowed, limited; null when metrics are off
};

class domain {
 public:
  domain(const config::rls_domain& source, std::string_view key_prefix, metrics::registry* metrics);

  const std::string& name() const { return name_; }
  // The limit the entries match, or null (no entry matches: OK without a limit).
  const matched_limit* match(std::span<const entry_view> entries) const;

  metrics::counter* requests(std::size_t code) const { return requests_[code]; }  // rls_code
  metrics::histogram* duration() const { return duration_; }

 private:
  struct node {
    std::string key;
    std::optional<std::string> value;  // without the trailing '*' when wildcard
    bool wildcard = false;
    std::unique_ptr<matched_limit> limit;  // null: no rate_limit here
    std::vector<node> children;
  };
  void compile(const std::vector<config::rls_descriptor>& from, std::vector<node>& into,
               std::string path, std::string_view key_prefix, metrics::registry* metrics);

  std::string name_;
  std::vector<node> roots_;
  std::array<metrics::counter*, 3> requests_{};
  metrics::histogram* duration_ = nullptr;
};

// gateway_rls_requests_total's code label.
enum class rls_code { ok, over_limit, error };

class domain_set {
 public:
  // `local_cache`: storage.local_cache, which these calls follow as proxy requests do.
  domain_set(const config::rls_settings& settings, std::string_view key_prefix, bool local_cache,
             std::optional<config::lease_settings> lease, metrics::registry* metrics);

  const config::rls_settings& settings() const { return settings_; }
  bool local_cache() const { return local_cache_; }
  const std::optional<config::lease_settings>& lease() const { return lease_; }
  const domain* find(std::string_view name) const;
  // Series for requests to a domain no file defines (one label value, however many names).
  const domain& unknown() const { return *unknown_; }

 private:
  config::rls_settings settings_;
  bool local_cache_;
  std::optional<config::lease_settings> lease_;  // storage.lease
  std::map<std::string, std::unique_ptr<domain>, std::less<>> domains_;
  std::unique_ptr<domain> unknown_;
};

// The store key of one match: key_head + H + "}", H the first 16 hex digits of the SHA-256 of
// the request's values (which may be secrets), each length-prefixed so no two lists collide.
void store_key(const matched_limit& m, std::span<const entry_view> entries, std::string& out);

}  // namespace gw::rls
