// Planning a request's limit checks (see route_limits.hpp).
#include "limit/route_limits.hpp"

#include "config/key_hash.hpp"

namespace gw::limit {

namespace {

policy make_policy(const config::limit& l, std::optional<std::uint64_t> requests,
                   std::optional<config::duration> window, std::optional<std::uint64_t> burst) {
  policy p;
  p.algo = l.algorithm;
  p.requests = requests.value_or(l.requests);
  p.window = std::chrono::duration_cast<std::chrono::microseconds>(window.value_or(l.window)).count();
  // burst defaults to the limit's own burst, and without one to the effective requests.
  p.burst = burst ? *burst : (l.burst ? *l.burst : p.requests);
  p.cost = l.cost;
  return p;
}

bool override_matches(const config::limit_override& o, const request_facts& r) {
  const auto* consumer = r.consumer();
  if (o.consumer && (!consumer || consumer->name != *o.consumer)) return false;
  if (o.tier && (!consumer || consumer->tier != *o.tier)) return false;
  if (o.api_key_sha256) {
    const auto key = r.api_key_sha256();
    if (!key || *key != *o.api_key_sha256) return false;
  }
  return true;
}

}  // namespace

std::string secret_digest(std::string_view value) {
  return config::sha256_hex(value).substr(0, 16);
}

route_limits::route_limits(const config::route& route, std::string key_prefix)
    : route_name_(route.name), shadow_(route.shadow) {
  for (const auto& l : route.limits) {
    compiled_limit c{&l, make_policy(l, std::nullopt, std::nullopt, std::nullopt), {},
                     key_prefix + "{" + route.name + ":" + l.name + ":"};
    for (const auto& o : l.overrides)
      c.overrides.push_back({&o, make_policy(l, o.requests, o.window, o.burst)});
    limits_.push_back(std::move(c));
  }
}

void route_limits::plan(const request_facts& request, std::vector<store::limit_check>& checks,
                        std::vector<applied_limit>& applied) const {
  std::size_t used = 0;
  applied.clear();
  for (const auto& c : limits_) {
    if (used == checks.size()) checks.emplace_back();
    auto& key = checks[used].key;
    key.assign(c.key_head);
    bool complete = true;
    bool first = true;
    for (const auto& part : c.limit->key) {
      if (!first) key += ':';
      first = false;
      switch (part.kind) {
        case config::key_part::client_ip:
          key += request.client_ip();
          break;
        case config::key_part::api_key:
          if (auto k = request.api_key_sha256())
            key += k->substr(0, 16);
          else
            complete = false;
          break;
        case config::key_part::consumer:
          if (const auto* consumer = request.consumer())
            key += consumer->name;
          else
            complete = false;
          break;
        case config::key_part::tier:
          if (const auto* consumer = request.consumer(); consumer && !consumer->tier.empty())
            key += consumer->tier;
          else
            complete = false;
          break;
        case config::key_part::route:
          key += route_name_;
          break;
        case config::key_part::method:
          key += request.method();
          break;
        case config::key_part::path:
          key += request.path();
          break;
        case config::key_part::header:
          if (auto v = request.header(part.name))
            key += secret_digest(*v);
          else
            complete = false;
          break;
        case config::key_part::query:
          if (auto v = request.query(part.name))
            key += secret_digest(*v);
          else
            complete = false;
          break;
        case config::key_part::client_cert:
          if (auto fingerprint = request.client_cert_sha256())
            key += fingerprint->substr(0, 16);
          else
            complete = false;
          break;
      }
      if (!complete) break;
    }
    if (!complete) continue;
    key += '}';

    const policy* effective = &c.base;
    for (const auto& o : c.overrides) {
      if (override_matches(*o.when, request)) {
        effective = &o.effective;
        break;
      }
    }
    checks[used++].policy = *effective;
    applied.push_back({c.limit, *effective, static_cast<std::size_t>(&c - limits_.data()), shadow_});
  }
  checks.resize(used);
}

}  // namespace gw::limit
