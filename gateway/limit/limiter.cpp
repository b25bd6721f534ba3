// The limit pipeline shared by the proxy and the rate limit service (see limiter.hpp).
#include "limit/limiter.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <limits>

namespace gw::limit {

limiter::limiter(std::shared_ptr<store::store> store, metrics::registry* metrics,
                 std::size_t slot, boost::asio::io_context* io)
    : store_(std::move(store)), io_(io), slot_(slot) {
  if (!metrics) return;
  const auto backend = store_->backend();
  duration_ = metrics->store_duration(backend);
  errors_ = {nullptr, metrics->store_errors(backend, "timeout"),
             metrics->store_errors(backend, "connection"), metrics->store_errors(backend, "reply")};
  local_cache_hits_ = metrics->local_cache_hits();
  leases_taken_ = metrics->leases_taken();
  units_leased_ = metrics->lease_units("leased");
  units_used_ = metrics->lease_units("used");
  units_returned_ = metrics->lease_units("returned");
  lease_admitted_ = metrics->lease_admitted();
}

limiter::~limiter() {
  // What is held goes back (queued on the store's connection, sent if the loop runs again).
  release_expired(std::numeric_limits<micros>::max());
}

namespace {

void inc(metrics::counter* c, std::size_t slot, std::uint64_t n = 1) {
  if (c && n) c->inc(slot, n);
}

bool same_policy(const algorithms::policy& a, const algorithms::policy& b) {
  return a.algo == b.algo && a.requests == b.requests && a.window == b.window &&
         a.burst == b.burst;
}

}  // namespace

void limiter::release_expired(micros now) {
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expires > now) {
      ++it;
      continue;
    }
    if (it->second.units > 0) {
      store_->release(it->first, it->second.policy, it->second.units, it->second.mark);
      inc(units_returned_, slot_, it->second.units);
    }
    if (it->second.renewal) it->second.renewal->cancel();
    it = leases_.erase(it);
  }
}

// Every check of the request has a live lease of this worker with the units for it: admitted
// here, no store call. (A request with some limits leased and some not goes to the store whole:
// its leased units stay held, which can only admit less.)
bool limiter::answered_from_leases(request_limits& r, const judging& how) {
  if (leases_.empty()) return false;
  if (!how.lease) {  // leases were switched off by a reload: what is held goes back
    release_expired(std::numeric_limits<micros>::max());
    return false;
  }
  // Whether a lease may still be spent is judged now, not at the request's arrival: a request
  // that waited (in a queue, behind a slow client) must not spend units of a window that ended.
  const micros now = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now().time_since_epoch()).count();
  if (now >= next_sweep_) {
    release_expired(now);
    next_sweep_ = now + std::chrono::duration_cast<std::chrono::microseconds>(
                            how.lease->max_duration).count();
  }
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    // One key twice in a request (two identical RLS descriptors) goes to the store: each check
    // there sees the one before it.
    for (std::size_t j = 0; j < i; ++j)
      if (r.checks[j].key == r.checks[i].key) return false;
    const auto it = leases_.find(r.checks[i].key);
    if (it == leases_.end()) return false;
    const auto& held = it->second;
    if (held.expires <= now || held.units < r.checks[i].policy.cost ||
        !same_policy(held.policy, r.checks[i].policy))
      return false;
    // Running low: this request goes to the store and brings the next lease, while the others
    // go on with what is left of this one (the two are merged when it arrives).
    if (2 * held.units < held.granted && !held.renewing &&
        !store_->takes_back_only_untouched(held.policy.algo))
      return false;
  }
  r.result.error = store::error_kind::none;
  r.result.decisions.clear();
  r.result.leases.clear();
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    auto& held = leases_.find(r.checks[i].key)->second;
    const auto cost = r.checks[i].policy.cost;
    held.units -= std::min(held.units, cost);
    ++held.hits;  // the key's rate, for the size of its next lease
    inc(units_used_, slot_, cost);
    // What the store said when the lease was taken, plus what this worker still holds: never
    // above the store's own count, give or take these units.
    algorithms::decision d = held.taken;
    d.admitted = true;
    d.remaining = held.taken.remaining + held.units;
    d.retry_after = 0;
    r.result.decisions.push_back(d);
  }
  inc(lease_admitted_, slot_);
  return true;
}

// What this worker holds of a key the store takes units back into only while untouched
// (token_bucket on Redis) goes back before this request's check touches it.
void limiter::give_back_before_asking(const request_limits& r) {
  if (leases_.empty()) return;
  for (const auto& c : r.checks) {
    if (!store_->takes_back_only_untouched(c.policy.algo)) continue;
    const auto held = leases_.find(c.key);
    if (held == leases_.end() || held->second.units == 0) continue;
    store_->release(c.key, held->second.policy, held->second.units, held->second.mark);
    inc(units_returned_, slot_, held->second.units);
    held->second.units = 0;
  }
}

// For hot keys of leasable limits, ask the store for several units at once: as many as the key
// was seen in the last lease period, twice over, at most max_units (the store then takes at
// most a quarter of what is left, so near the limit a lease shrinks to the request itself).
// Only when every limit of the request can be leased: a request that must go to the store for
// one limit anyway would never be answered from the others' leases.
void limiter::ask_for_leases(request_limits& r, const judging& how) {
  for (auto& c : r.checks) c.lease_want = 0;
  if (!how.lease) return;
  for (std::size_t i = 0; i < r.checks.size(); ++i)
    if (!r.applied[i].limit->lease || !store_->leases(r.checks[i].policy.algo)) return;
  const auto period =
      std::chrono::duration_cast<std::chrono::microseconds>(how.lease->max_duration).count();
  if (heat_.size() > 65536) heat_.clear();  // bounded; only the hot keys come back at once
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    auto& c = r.checks[i];
    if (!r.applied[i].limit->lease || !store_->leases(c.policy.algo)) continue;
    bool repeated = false;  // only a key's first check in a request may bring a lease
    for (std::size_t j = 0; j < i; ++j) repeated = repeated || r.checks[j].key == c.key;
    if (repeated) continue;
    auto& h = heat_[c.key];
    if (how.now - h.since >= period) {
      h.last_hits = how.now - h.since < 2 * period ? h.hits : 0;
      h.hits = 0;
      h.since = how.now;
    }
    ++h.hits;
    std::uint64_t seen = std::max(h.hits, h.last_hits);
    // Requests the last lease answered count too: a lease used up fast asks for a bigger one.
    const auto held = leases_.find(c.key);
    std::uint64_t holding = 0;
    if (held != leases_.end()) {
      seen = std::max<std::uint64_t>(seen, held->second.hits + 1);
      if (held->second.expires > how.now) holding = held->second.units;
    }
    if (seen < 2 || h.asking) continue;  // seen once, or a lease on its way: an ordinary check
    // At most max_units held in all, counting what a renewal keeps.
    const std::uint64_t most = how.lease->max_units * c.policy.cost;
    const std::uint64_t want =
        std::min<std::uint64_t>(most, 2 * seen * c.policy.cost) - std::min(most, holding);
    if (want <= c.policy.cost) continue;
    h.asking = true;
    if (held != leases_.end()) held->second.renewing = true;
    c.lease_want = want;
    c.lease_max = period;
  }
}

void limiter::keep_leases(request_limits& r, const judging& how, outcome o) {
  // Whatever came back, the key may ask again.
  for (const auto& c : r.checks) {
    if (c.lease_want == 0) continue;
    if (auto h = heat_.find(c.key); h != heat_.end()) h->second.asking = false;
    if (auto held = leases_.find(c.key); held != leases_.end()) {
      held->second.renewing = false;
      if (auto timer = std::move(held->second.renewal)) timer->cancel();  // the waiters go on
    }
  }
  if (r.result.leases.empty()) return;
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    const auto& grant = r.result.leases[i];
    if (grant.granted == 0) continue;
    const auto cost = r.checks[i].policy.cost;
    auto& held = leases_[r.checks[i].key];
    // A renewal with the same mark (for the window algorithms: of the same window) adds to what
    // is left; what an older lease, or an expired one, still holds goes back. (gcra's and
    // sliding_log's marks are the lease's own time, token_bucket's a stamp no other lease has.)
    const bool merge = held.units > 0 && held.mark == grant.mark && held.expires > how.now &&
                       same_policy(held.policy, r.checks[i].policy);
    const std::uint64_t kept = merge ? held.units : 0;
    if (held.units > 0 && !merge) {
      store_->release(r.checks[i].key, held.policy, held.units, held.mark);
      inc(units_returned_, slot_, held.units);
    }
    held.renewing = false;
    held.granted = grant.granted;
    held.policy = r.checks[i].policy;
    held.hits = 0;
    held.mark = grant.mark;
    // From the request's arrival, before the store took the units: it ends here first.
    held.expires = how.now + grant.life;
    held.taken = r.result.decisions[i];
    // The request spent `cost` of it, unless another limit rejected the request.
    held.units = kept + (o == outcome::admitted || o == outcome::shadow_limited
                             ? grant.granted - cost
                             : grant.granted);
    inc(leases_taken_, slot_);
    inc(units_leased_, slot_, grant.granted);
    if (held.units < kept + grant.granted) inc(units_used_, slot_, cost);
  }
}

bool limiter::answered_from_cache(request_limits& r, const judging& how) {
  // Only a store that is a round trip away is worth a cache; a key it recently called over its
  // limit is answered here until the moment it could pass. Shadow limits are never remembered
  // (their rejection must not stop the enforced ones being counted), so whatever the cache holds
  // is enforced.
  if (!how.local_cache || !store_->caches_rejections()) return false;
  r.result.error = store::error_kind::none;
  r.result.decisions.clear();
  std::size_t blocked = 0;
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    auto d = over_limit_.lookup(r.checks[i].key, how.now, r.checks[i].policy.cost);
    r.result.decisions.push_back(d.value_or(algorithms::decision{true, 0, 0, 0}));
    if (d) ++blocked;
  }
  // Unless the front end takes a rejection without every limit's numbers, all must be cached.
  const bool answer = blocked > 0 && (how.cache_answers_alone || blocked == r.checks.size());
  if (!answer) {
    r.result.decisions.clear();
    return false;
  }
  std::size_t kept = 0;
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    if (r.result.decisions[i].admitted) continue;
    r.applied[kept] = r.applied[i];
    r.result.decisions[kept] = r.result.decisions[i];
    ++kept;
  }
  r.applied.resize(kept);
  r.result.decisions.resize(kept);
  if (local_cache_hits_) local_cache_hits_->inc(slot_);
  return true;
}

void limiter::record_store_call(const request_limits& r, const judging& how,
                                std::chrono::steady_clock::time_point asked) {
  if (duration_) {
    duration_->observe(slot_, std::chrono::duration<double>(
                                  std::chrono::steady_clock::now() - asked).count());
    if (!r.result.ok()) errors_[static_cast<std::size_t>(r.result.error)]->inc(slot_);
  }
  if (how.local_cache && store_->caches_rejections() && r.result.ok())
    for (std::size_t i = 0; i < r.checks.size(); ++i)
      if (!r.applied[i].shadow)
        over_limit_.remember(r.checks[i].key, how.now, r.result.decisions[i],
                             r.checks[i].policy.cost);
}

outcome limiter::conclude(request_limits& r, const judging& how) {
  if (!r.result.ok()) {
    r.headers.clear();
    return how.on_failure == config::failure_mode::closed ? outcome::failed_closed
                                                          : outcome::failed_open;
  }
  r.v = judge(r.applied, r.result.decisions);
  render_headers(r.applied, r.result.decisions, r.v, how.ietf_headers, how.legacy_headers,
                 r.headers);
  if (r.v.limited) return outcome::limited;
  return r.v.shadow_limited ? outcome::shadow_limited : outcome::admitted;
}

// A request with one limit whose lease is spent while its renewal is on the way waits for the
// renewal (at most max_duration) instead of asking the store itself.
std::shared_ptr<boost::asio::steady_timer> limiter::renewal_to_wait_for(const request_limits& r,
                                                                       const judging& how) {
  if (!io_ || !how.lease || r.checks.size() != 1) return nullptr;
  const auto& c = r.checks.front();
  if (!r.applied.front().limit->lease || !store_->leases(c.policy.algo)) return nullptr;
  const auto held = leases_.find(c.key);
  const micros now = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::steady_clock::now().time_since_epoch()).count();
  // Only for a lease that is spent, and whose renewal could answer this request's cost.
  if (held == leases_.end() || !held->second.renewing || held->second.expires <= now ||
      !same_policy(held->second.policy, c.policy) || held->second.units >= c.policy.cost ||
      c.policy.cost > held->second.granted)
    return nullptr;
  auto& timer = held->second.renewal;
  if (!timer) {
    timer = std::make_shared<boost::asio::steady_timer>(*io_);
    timer->expires_after(how.lease->max_duration);
  }
  return timer;
}

std::optional<outcome> limiter::decide_now(request_limits& r, const judging& how) {
  r.wait_for_lease = false;
  if (answered_from_leases(r, how)) return conclude(r, how);
  if (answered_from_cache(r, how)) return conclude(r, how);
  if (renewal_to_wait_for(r, how)) {
    r.wait_for_lease = true;
    return std::nullopt;
  }
  give_back_before_asking(r);
  ask_for_leases(r, how);
  const auto asked = std::chrono::steady_clock::now();
  auto answered = store_->try_check_now(r.checks);
  if (!answered) return std::nullopt;
  r.result = std::move(*answered);
  record_store_call(r, how, asked);
  const auto o = conclude(r, how);
  keep_leases(r, how, o);
  return o;
}

boost::asio::awaitable<outcome> limiter::ask_store(request_limits& r, const judging& how) {
  if (r.wait_for_lease) {
    r.wait_for_lease = false;
    if (auto timer = renewal_to_wait_for(r, how)) {
      boost::system::error_code ec;
      co_await timer->async_wait(
          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
      // The renewal came: from it, or, if it found the key over its limit, from the cache.
      if (answered_from_leases(r, how) || answered_from_cache(r, how)) co_return conclude(r, how);
    }
    give_back_before_asking(r);
    ask_for_leases(r, how);
  }
  const auto asked = std::chrono::steady_clock::now();
  r.result = co_await store_->check(r.checks);
  record_store_call(r, how, asked);
  const auto o = conclude(r, how);
  if (!r.result.ok()) r.result.leases.clear();
  keep_leases(r, how, o);
  co_return o;
}

boost::asio::awaitable<outcome> limiter::decide(request_limits& r, const judging& how) {
  if (auto now = decide_now(r, how)) co_return *now;
  co_return co_await ask_store(r, how);
}

}  // namespace gw::limit
