// Rendering decisions for the client (see verdict.hpp).
#include "limit/verdict.hpp"

#include <algorithm>

namespace gw::limit {

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
  verdict v;
  for (std::size_t i = 0; i < decisions.size(); ++i) {
    const auto& d = decisions[i];
    if (!d.admitted) {
      if (!v.limited || d.retry_after > decisions[v.deciding].retry_after) v.deciding = i;
      v.limited = true;
    } else if (!v.limited) {
      const auto& best = decisions[v.deciding];
      // Fewest units left relative to the quota; ties go to the longer reset.
      const auto lhs = static_cast<double>(d.remaining) /
                       static_cast<double>(quota_of(applied[i].effective).units);
      const auto rhs = static_cast<double>(best.remaining) /
                       static_cast<double>(quota_of(applied[v.deciding].effective).units);
      if (lhs < rhs || (lhs == rhs && d.reset > best.reset)) v.deciding = i;
    }
  }
  if (v.limited)
    v.retry_after_seconds = std::max<std::int64_t>(1, ceil_seconds(decisions[v.deciding].retry_after));
  return v;
}

void render_headers(std::span<const applied_limit> applied, std::span<const decision> decisions,
                    const verdict& v, bool ietf, bool legacy, header_list& out) {
  if (ietf) {
    std::string policy_field, limit_field;
    for (std::size_t i = 0; i < applied.size(); ++i) {
      const auto& name = applied[i].limit->name;
      const auto q = quota_of(applied[i].effective);
      if (i) {
        policy_field += ", ";
        limit_field += ", ";
      }
      policy_field += '"' + name + "\";q=" + std::to_string(q.units) +
                      ";w=" + std::to_string(ceil_seconds(q.window));
      limit_field += '"' + name + "\";r=" + std::to_string(decisions[i].remaining) +
                     ";t=" + std::to_string(seconds_until(decisions[i]));
    }
    out.emplace_back("RateLimit-Policy", std::move(policy_field));
    out.emplace_back("RateLimit", std::move(limit_field));
  }
  if (legacy) {
    const auto& d = decisions[v.deciding];
    out.emplace_back("X-RateLimit-Limit",
                     std::to_string(quota_of(applied[v.deciding].effective).units));
    out.emplace_back("X-RateLimit-Remaining", std::to_string(d.remaining));
    out.emplace_back("X-RateLimit-Reset", std::to_string(seconds_until(d)));
  }
}

std::string rejection_body(std::string_view route, std::string_view limit,
                           std::int64_t retry_after_seconds) {
  std::string body = R"({"error":"rate_limited","message":"Rate limit exceeded","route":")";
  body += route;
  body += R"(","limit":")";
  body += limit;
  body += R"(","retry_after":)";
  body += std::to_string(retry_after_seconds);
  body += '}';
  return body;
}

}  // namespace gw::limit
