// The local over-limit cache (storage.local_cache): a key the store reported over its limit is
// rejected by the worker itself until the moment it could pass again, without asking the store.
// One per worker, bounded, no locks.
#pragma once

#include "algorithms/algorithms.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace gw::limit {

using algorithms::decision;
using algorithms::micros;
using algorithms::policy;

class over_limit_cache {
 public:
  explicit over_limit_cache(std::size_t capacity = 65536) : capacity_(capacity) {}

  // The decision to answer locally when `key` is still over its limit at `now`.
  std::optional<decision> lookup(std::string_view key, micros now);
  void remember(std::string_view key, micros now, const decision& rejected);


 private:
  std::size_t capacity_;
  std::unordered_map<std::string, micros> until_;  // key -> first moment it may pass
};

}  // namespace gw::limit
