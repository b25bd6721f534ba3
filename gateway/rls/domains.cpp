// Compiling and matching the rate limit service's domains (see domains.hpp).
#include "rls/domains.hpp"

#include "config/key_hash.hpp"

#include <algorithm>
#include <charconv>

namespace gw::rls {

namespace {

constexpr std::string_view code_names[] = {"ok", "over_limit", "error"};

}  // namespace

domain::domain(const config::rls_domain& source, std::string_view key_prefix,
               metrics::registry* metrics)
    : name_(source.domain) {
  if (metrics) {
    for (std::size_t c = 0; c < 3; ++c) requests_[c] = metrics->rls_requests(name_, code_names[c]);
    duration_ = metrics->rls_duration(name_);
  }
  compile(source.descriptors, roots_, "", key_prefix, metrics);
}

void domain::compile(const std::vector<config::rls_descriptor>& from, std::vector<node>& into,
                     std::string path, std::string_view key_prefix, metrics::registry* metrics) {
  into.reserve(from.size());
  for (const auto& d : from) {
    node n;
    n.key = d.key;
    if (d.value) {
      n.wildcard = !d.value->empty() && d.value->back() == '*';
      n.value = n.wildcard ? d.value->substr(0, d.value->size() - 1) : *d.value;
    }
    const std::string here = path.empty() ? d.key : path + "." + d.key;
    if (d.rate_limit) {
      auto m = std::make_unique<matched_limit>();
      const auto& r = *d.rate_limit;
      m->source = &r;
      m->limit.name = r.name.empty() ? here : r.name;
      m->limit.algorithm = r.algorithm;
      m->limit.requests = r.requests;
      m->limit.window = r.window;
      m->limit.burst = r.burst;
      m->limit.lease = r.lease;
      m->limit_label = here;
      std::string keys = here;
      std::replace(keys.begin(), keys.end(), '.', ':');
      m->key_head = std::string{key_prefix} + "{rls:" + name_ + ":" + keys + ":";
      m->shadow = d.shadow_mode;
      if (metrics) {
        const std::string route = "rls:" + name_;
        m->checks = {metrics->ratelimit_checks(route, here, false),
                     metrics->ratelimit_checks(route, here, true)};
      }
      n.limit = std::move(m);
    }
    compile(d.descriptors, n.children, here, key_prefix, metrics);
    into.push_back(std::move(n));
  }
}

const matched_limit* domain::match(std::span<const entry_view> entries) const {
  const std::vector<node>* level = &roots_;
  const node* at = nullptr;
  for (const auto& e : entries) {
    const node* exact = nullptr;
    const node* prefix = nullptr;
    const node* key_only = nullptr;
    for (const auto& n : *level) {
      if (n.key != e.key) continue;
      if (!n.value) {
        key_only = &n;
      } else if (!n.wildcard) {
        if (*n.value == e.value) exact = &n;
      } else if (e.value.starts_with(*n.value)) {
        // The longest prefix wins among several.
        if (!prefix || prefix->value->size() < n.value->size()) prefix = &n;
      }
    }
    at = exact ? exact : prefix ? prefix : key_only;
    if (!at) return nullptr;
    level = &at->children;
  }
  return at ? at->limit.get() : nullptr;
}

domain_set::domain_set(const config::rls_settings& settings, std::string_view key_prefix,
                       bool local_cache, std::optional<config::lease_settings> lease,
                       metrics::registry* metrics)
    : settings_(settings), local_cache_(local_cache), lease_(lease) {
  for (const auto& d : settings_.domains)
    domains_.emplace(d.domain, std::make_unique<domain>(d, key_prefix, metrics));
  unknown_ = std::make_unique<domain>(config::rls_domain{"unknown", "", {}}, key_prefix, metrics);
}

const domain* domain_set::find(std::string_view name) const {
  const auto it = domains_.find(name);
  return it == domains_.end() ? nullptr : it->second.get();
}

void store_key(const matched_limit& m, std::span<const entry_view> entries, std::string& out) {
  std::string values;
  for (const auto& e : entries) {
    char length[24];
    const auto end = std::to_chars(length, length + sizeof length, e.value.size()).ptr;
    values.append(length, end).append(":").append(e.value);
  }
  out.assign(m.key_head);
  out.append(config::sha256_hex(values).substr(0, 16));
  out += '}';
}

}  // namespace gw::rls
