// The limit pipeline shared by the proxy and the rate limit service (see limiter.hpp).
#include "limit/limiter.hpp"

namespace gw::limit {

limiter::limiter(std::shared_ptr<store::store> store, metrics::registry* metrics,
                 std::size_t slot)
    : store_(std::move(store)), slot_(slot) {
  if (!metrics) return;
  const auto backend = store_->backend();
  duration_ = metrics->store_duration(backend);
  errors_ = {nullptr, metrics->store_errors(backend, "timeout"),
             metrics->store_errors(backend, "connection"), metrics->store_errors(backend, "reply")};
  local_cache_hits_ = metrics->local_cache_hits();
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

std::optional<outcome> limiter::decide_now(request_limits& r, const judging& how) {
  if (answered_from_cache(r, how)) return conclude(r, how);
  const auto asked = std::chrono::steady_clock::now();
  auto answered = store_->try_check_now(r.checks);
  if (!answered) return std::nullopt;
  r.result = std::move(*answered);
  record_store_call(r, how, asked);
  return conclude(r, how);
}

boost::asio::awaitable<outcome> limiter::ask_store(request_limits& r, const judging& how) {
  const auto asked = std::chrono::steady_clock::now();
  r.result = co_await store_->check(r.checks);
  record_store_call(r, how, asked);
  co_return conclude(r, how);
}

boost::asio::awaitable<outcome> limiter::decide(request_limits& r, const judging& how) {
  if (auto now = decide_now(r, how)) co_return *now;
  co_return co_await ask_store(r, how);
}

}  // namespace gw::limit
