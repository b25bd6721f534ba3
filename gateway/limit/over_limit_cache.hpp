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

  // The decision to answer locally when `key` is still over its limit at `now` for a request of
  // `cost`: only a cost at least that of the rejection remembered (a cheaper request may fit).
  std::optional<decision> lookup(std::string_view key, micros now, std::uint64_t cost);
  void remember(std::string_view key, micros now, const decision& rejected, std::uint64_t cost);


 private:
  std::size_t capacity_;
  struct entry {
    micros until;        // the first moment the rejected request may pass
    std::uint64_t cost;  // that request's cost
  };
  std::unordered_map<std::string, entry> until_;
};

}  // namespace gw::limit
