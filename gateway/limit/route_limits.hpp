// A route's limits, compiled once per config snapshot: which limits apply to a request, under
// which store key and with which numbers (overrides resolved), and what their decisions mean.
#pragma once

#include "config/config.hpp"
#include "algorithms/algorithms.hpp"
#include "store/store.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gw::limit {

using algorithms::decision;
using algorithms::micros;
using algorithms::policy;

// What limits may key on. Header and query lookups go through the proxy's request.
class request_facts {
 public:
  virtual ~request_facts() = default;
  virtual std::string_view client_ip() const = 0;
  virtual std::optional<std::string_view> api_key_sha256() const = 0;
  virtual const config::consumer* consumer() const = 0;
  virtual std::string_view method() const = 0;
  virtual std::string_view path() const = 0;
  virtual std::optional<std::string_view> header(std::string_view lower_name) const = 0;
  virtual std::optional<std::string_view> query(std::string_view name) const = 0;
  // The verified client certificate's SHA-256 (lower-case hex); none over plain HTTP, without
  // a certificate, or from a front end that has no TLS clients (the rate limit service).
  virtual std::optional<std::string_view> client_cert_sha256() const { return std::nullopt; }
};

// One limit that applies to a request: the store check plus what the headers need.
struct applied_limit {
  const config::limit* limit;
  policy effective;
  std::size_t index = 0;  // which of the front end's limits (route limit, RLS descriptor)
  bool shadow = false;    // a rejection is reported and counted, not enforced
};

class route_limits {
 public:
  route_limits(const config::route& route, std::string key_prefix);

  bool empty() const { return limits_.empty(); }

  // Replaces `checks` with one check per applicable limit (a limit whose key part the request
  // lacks does not apply), and `applied` with the matching entries. The checks' key strings are
  // overwritten in place: vectors kept from request to request stop allocating.
  void plan(const request_facts& request, std::vector<store::limit_check>& checks,
            std::vector<applied_limit>& applied) const;

 private:
  struct compiled_override {
    const config::limit_override* when;
    policy effective;
  };
  struct compiled_limit {
    const config::limit* limit;
    policy base;
    std::vector<compiled_override> overrides;
    std::string key_head;  // key_prefix + "{" + route + ":" + limit + ":"
  };

  std::string_view route_name_;  // points into the config, which outlives the snapshot's parts
  bool shadow_;
  std::vector<compiled_limit> limits_;
};

// The store key's identity part for secrets: a SHA-256 prefix, never the value itself.
std::string secret_digest(std::string_view value);

}  // namespace gw::limit
