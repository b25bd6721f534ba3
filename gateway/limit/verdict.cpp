// Rendering decisions for the client (see verdict.hpp).
#include "limit/verdict.hpp"

#include <algorithm>
#include <charconv>

namespace gw::limit {

using algorithms::algorithm;
using algorithms::ceil_seconds;

namespace {

// Seconds until the client may expect more room: rejected limits count until the request fits,
// admitted ones until they are back to full.
std::int64_t seconds_until(const decision& d) {
  return ceil_seconds(d.admitted ? d.reset : d.retry_after);
}

// What a client can spend at once, and over how long it comes back. For the bucket algorithms
// that is the burst, refilled over burst x T; for the window algorithms, requests per window.
// So that `r` never exceeds `q` (10/s with a burst of 20 reads as q=20;w=2).
struct quota {
  std::uint64_t units;
  micros window;
};

quota quota_of(const policy& p) {
  if (p.algo != algorithm::gcra && p.algo != algorithm::token_bucket) return {p.requests, p.window};
  const auto window = static_cast<micros>(
      (static_cast<unsigned __int128>(p.window) * p.burst + p.requests - 1) / p.requests);
  return {p.burst, window};
}

}  // namespace

verdict judge(std::span<const applied_limit> applied, std::span<const decision> decisions) {
  // Shadow limits decide only when no enforced limit rejects.
  bool enforced = false;
  for (std::size_t i = 0; i < decisions.size(); ++i)
    if (!decisions[i].admitted && !applied[i].shadow) enforced = true;
  verdict v;
  bool rejected_any = false;
  for (std::size_t i = 0; i < decisions.size(); ++i) {
    const auto& d = decisions[i];
    if (!d.admitted && (!enforced || !applied[i].shadow)) {
      if (!rejected_any || d.retry_after > decisions[v.deciding].retry_after) v.deciding = i;
      rejected_any = true;
    } else if (!rejected_any) {
      const auto& best = decisions[v.deciding];
      // Fewest units left relative to the quota; ties go to the longer reset.
      const auto lhs = static_cast<double>(d.remaining) /
                       static_cast<double>(quota_of(applied[i].effective).units);
      const auto rhs = static_cast<double>(best.remaining) /
                       static_cast<double>(quota_of(applied[v.deciding].effective).units);
      if (lhs < rhs || (lhs == rhs && d.reset > best.reset)) v.deciding = i;
    }
  }
  v.limited = rejected_any && enforced;
  v.shadow_limited = rejected_any && !enforced;
  if (rejected_any)
    v.retry_after_seconds = std::max<std::int64_t>(1, ceil_seconds(decisions[v.deciding].retry_after));
  return v;
}

namespace {

template <class Integer>
void append_number(std::string& out, Integer v) {
  char text[24];
  out.append(text, static_cast<std::size_t>(std::to_chars(text, text + sizeof text, v).ptr - text));
}

// The next field of `out`, its name set and its value empty; `used` counts the fields so far.
std::string& next_field(header_list& out, std::size_t& used, std::string_view name) {
  if (used == out.size()) out.emplace_back();
  auto& field = out[used++];
  field.first.assign(name);
  field.second.clear();
  return field.second;
}

}  // namespace

void render_headers(std::span<const applied_limit> applied, std::span<const decision> decisions,
                    const verdict& v, bool ietf, bool legacy, header_list& out) {
  std::size_t used = 0;
  if (ietf) {
    auto& policy_field = next_field(out, used, "RateLimit-Policy");
    for (std::size_t i = 0; i < applied.size(); ++i) {
      const auto q = quota_of(applied[i].effective);
      if (i) policy_field += ", ";
      policy_field.append("\"").append(applied[i].limit->name).append("\";q=");
      append_number(policy_field, q.units);
      policy_field.append(";w=");
      append_number(policy_field, ceil_seconds(q.window));
    }
    auto& limit_field = next_field(out, used, "RateLimit");
    for (std::size_t i = 0; i < applied.size(); ++i) {
      if (i) limit_field += ", ";
      limit_field.append("\"").append(applied[i].limit->name).append("\";r=");
      append_number(limit_field, decisions[i].remaining);
      limit_field.append(";t=");
      append_number(limit_field, seconds_until(decisions[i]));
    }
  }
  if (legacy) {
    const auto& d = decisions[v.deciding];
    append_number(next_field(out, used, "X-RateLimit-Limit"),
                  quota_of(applied[v.deciding].effective).units);
    append_number(next_field(out, used, "X-RateLimit-Remaining"), d.remaining);
    append_number(next_field(out, used, "X-RateLimit-Reset"), seconds_until(d));
  }
  out.resize(used);
}

void append_rejection_body(std::string& out, std::string_view route, std::string_view limit,
                           std::int64_t retry_after_seconds) {
  out.append(R"({"error":"rate_limited","message":"Rate limit exceeded","route":")");
  out.append(route);
  out.append(R"(","limit":")");
  out.append(limit);
  out.append(R"(","retry_after":)");
  append_number(out, retry_after_seconds);
  out += '}';
}

}  // namespace gw::limit
