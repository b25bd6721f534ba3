// The one limiter every front end uses (the HTTP proxy and the Envoy rate limit service): given a
// request's planned checks it runs the local over-limit cache, one store call, the failure mode,
// the verdict with shadow limits, and the rate-limit headers, and answers one outcome. One per
// worker, used only on that worker's thread.
#pragma once

#include "config/config.hpp"
#include "limit/over_limit_cache.hpp"
#include "limit/route_limits.hpp"
#include "limit/verdict.hpp"
#include "metrics/metrics.hpp"
#include "store/store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace gw::limit {

// The limit work of one request. The caller plans `checks` and `applied` (one entry each, same
// order), the limiter fills the rest. Kept by the caller from request to request, so that its
// vectors and strings stop allocating.
struct request_limits {
  std::vector<store::limit_check> checks;
  std::vector<applied_limit> applied;  // narrowed to the cached ones when the local cache answers
  store::check_result result;          // decisions, one per `applied`, when result.ok()
  verdict v;
  header_list headers;                 // rendered when result.ok()
  bool wait_for_lease = false;         // decide_now found only spent leases with renewals coming
};

enum class outcome { admitted, limited, shadow_limited, failed_open, failed_closed };

// How one request is to be judged: the front end's settings for it.
struct judging {
  micros now = 0;                  // the request's arrival, microseconds on the steady clock
  config::failure_mode on_failure = config::failure_mode::open;
  bool local_cache = true;         // storage.local_cache (used when the store is shared)
  // True: a request the cache knows is over one limit is answered from it alone (the proxy's
  // 429 needs nothing else). False: only when every limit is cached, so that each gets its
  // numbers (the rate limit service answers a status per descriptor).
  bool cache_answers_alone = true;
  bool ietf_headers = true;
  bool legacy_headers = false;
  // storage.lease (SPEC 12); null: every check goes to the store.
  const config::lease_settings* lease = nullptr;
};

class limiter {
 public:
  // `metrics` null records nothing; `slot` is the calling worker's slot in every series.
  // `io`: the worker's loop, where a request may wait for a lease on its way (null: never waits).
  limiter(std::shared_ptr<store::store> store, metrics::registry* metrics, std::size_t slot,
          boost::asio::io_context* io = nullptr);
  ~limiter();

  // The outcome at once when no wait is needed (the local cache answers, or the store can answer
  // without waiting); nullopt when the store must be asked: then co_await ask_store() with the
  // same arguments. Splitting the two spares the memory store's path a coroutine frame.
  std::optional<outcome> decide_now(request_limits& r, const judging& how);
  boost::asio::awaitable<outcome> ask_store(request_limits& r, const judging& how);
  // Both steps; `r.checks` non-empty.
  boost::asio::awaitable<outcome> decide(request_limits& r, const judging& how);

  store::store& limits_store() { return *store_; }
  // Gives back every unit held (a drain: the worker's loop still runs to send them).
  void release_all() { release_expired(std::numeric_limits<micros>::max()); }
  bool store_available() const { return store_->available(); }

 private:
  bool answered_from_cache(request_limits& r, const judging& how);
  bool answered_from_leases(request_limits& r, const judging& how);
  std::shared_ptr<boost::asio::steady_timer> renewal_to_wait_for(const request_limits& r,
                                                                 const judging& how);
  void give_back_before_asking(const request_limits& r);
  void ask_for_leases(request_limits& r, const judging& how);
  void keep_leases(request_limits& r, const judging& how, outcome o);
  void release_expired(micros now);
  void record_store_call(const request_limits& r, const judging& how,
                         std::chrono::steady_clock::time_point asked);
  outcome conclude(request_limits& r, const judging& how);

  std::shared_ptr<store::store> store_;
  boost::asio::io_context* io_;
  over_limit_cache over_limit_;
  std::size_t slot_;
  // Store series, null when metrics are off; the backend does not change at reload.
  metrics::histogram* duration_ = nullptr;
  std::array<metrics::counter*, 4> errors_{};  // by store::error_kind (none unused)
  metrics::counter* local_cache_hits_ = nullptr;

  // Leases this worker holds, by store key. Every unit of one was counted by the store when it
  // was taken; this worker admits from it until `expires` (its steady clock, never later than
  // the store's end of the lease), then gives back what is left.
  struct held_lease {
    std::uint64_t units = 0;  // left
    std::uint64_t hits = 0;   // requests it answered
    std::uint64_t granted = 0;  // units of the last grant
    bool renewing = false;      // a request went for the next lease while this one lasts
    // Requests that found this lease spent wait on it for the renewal (cancelled when it comes).
    std::shared_ptr<boost::asio::steady_timer> renewal;
    micros expires = 0;
    micros mark = 0;
    algorithms::policy policy;
    algorithms::decision taken;  // the store's decision when it was taken
  };
  std::unordered_map<std::string, held_lease> leases_;
  // How often each key was seen lately, to lease only hot keys, sized by their rate.
  struct heat {
    micros since = 0;
    std::uint32_t hits = 0;
    std::uint32_t last_hits = 0;  // in the period before
    bool asking = false;  // a lease request for the key is out: the others check as usual
  };
  std::unordered_map<std::string, heat> heat_;
  micros next_sweep_ = 0;
  metrics::counter* leases_taken_ = nullptr;
  metrics::counter* units_leased_ = nullptr;
  metrics::counter* units_used_ = nullptr;
  metrics::counter* units_returned_ = nullptr;
  metrics::counter* lease_admitted_ = nullptr;
};

}  // namespace gw::limit
