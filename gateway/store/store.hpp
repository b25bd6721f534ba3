// The store interface: all the limit checks of one request in one asynchronous call, one
// decision per check. Implementations: memory_store (in-process) and redis/ (shared).
// store/ uses only the pure algorithms of algorithms/, never limit/.
#pragma once

#include "algorithms/algorithms.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/container/small_vector.hpp>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gw::store {

struct limit_check {
  std::string key;  // the full store key (SPEC 10), already free of secrets
  algorithms::policy policy;
  // A lease (SPEC 12): more than policy.cost asks for up to this many units at once, for a store
  // that leases this algorithm (leases()); 0 is an ordinary check.
  std::uint64_t lease_want = 0;
  algorithms::micros lease_max = 0;  // the longest the lease may live
};

// What a lease request got: `granted` units (policy.cost of them spent on this check), for
// `life` from when the store took them; `mark` says which state they came from (a window's
// start, gcra's tat after the lease), for the release.
struct lease_grant {
  std::uint64_t granted = 0;  // 0: none (the check was an ordinary one)
  algorithms::micros life = 0;
  algorithms::micros mark = 0;
};

enum class error_kind { none, timeout, connection, reply };
std::string_view to_string(error_kind kind);

struct check_result {
  error_kind error = error_kind::none;
  // One per check, in order, when error == none; inline for the usual few checks per request.
  boost::container::small_vector<algorithms::decision, 4> decisions;
  // One per check when the call asked for any lease; empty otherwise.
  boost::container::small_vector<lease_grant, 4> leases;

  bool ok() const { return error == error_kind::none; }
};

class store {
 public:
  virtual ~store() = default;

  virtual std::string_view backend() const = 0;  // "memory", "redis", "redis_cluster"
  virtual boost::asio::awaitable<check_result> check(std::span<const limit_check> checks) = 0;
  // The same answer at once, when the store can give it without waiting (the memory store):
  // the caller then skips a coroutine and a trip through the event loop. nullopt when the checks
  // must go out (Redis): check() is the way.
  virtual std::optional<check_result> try_check_now(std::span<const limit_check>) {
    return std::nullopt;
  }
  // Whether checks of this algorithm may ask for leases (limit_check::lease_want).
  virtual bool leases(algorithms::algorithm) const { return false; }
  // True when units a lease of this algorithm gives back count only if nothing was taken from
  // the key after the lease (token_bucket on Redis). Such a lease is spent to its end before the
  // next is asked for, and what a worker holds of a key goes back before the worker asks the
  // store about that key: otherwise the units would be lost, not returned.
  virtual bool takes_back_only_untouched(algorithms::algorithm) const { return false; }
  // Gives back units a lease did not use, without waiting for an answer (losing it only admits
  // less). `key` is the check's key.
  virtual void release(std::string_view /*key*/, const algorithms::policy&,
                       std::uint64_t /*unused*/, algorithms::micros /*mark*/) {}
  // True when a round trip to the store is worth saving with the local over-limit cache.
  virtual bool caches_rejections() const { return false; }
  // False while the store is known to be unreachable (/readyz for fail-closed routes).
  virtual bool available() const { return true; }
};

}  // namespace gw::store
