// From the store's decisions to what the client sees (SPEC 6): admitted or 429, Retry-After,
// the IETF RateLimit/RateLimit-Policy fields and the legacy X-RateLimit-* ones.
#pragma once

#include "limit/route_limits.hpp"

#include <span>
#include <string>
#include <utility>
#include <vector>

namespace gw::limit {

struct verdict {
  bool limited = false;         // at least one enforced limit rejected the request
  bool shadow_limited = false;  // only shadow limits rejected it: admitted, reported as limited
  std::size_t deciding = 0;  // rejected: the rejecting limit that frees up last; admitted: the
                             // limit closest to exhaustion (fewest units left)
  std::int64_t retry_after_seconds = 0;  // rejected: whole seconds, rounded up, at least 1
};

// `decisions` has one entry per `applied` limit; both non-empty.
verdict judge(std::span<const applied_limit> applied, std::span<const decision> decisions);

using header_list = std::vector<std::pair<std::string, std::string>>;

// Replaces `out` with the rate-limit header fields the route asks for. The list's strings are
// overwritten in place, so a list kept from request to request stops allocating.
void render_headers(std::span<const applied_limit> applied, std::span<const decision> decisions,
                    const verdict& v, bool ietf, bool legacy, header_list& out);

// The 429 body: {"error":"rate_limited",...,"route":...,"limit":...,"retry_after":N}, appended.
void append_rejection_body(std::string& out, std::string_view route, std::string_view limit,
                           std::int64_t retry_after_seconds);

}  // namespace gw::limit
