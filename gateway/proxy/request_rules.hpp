// The HTTP/1.1 framing rules the proxy enforces before anything is forwarded (SPEC 4.1), and the
// path normalisation routes are matched against. Pure functions: no sockets here.
#pragma once

#include "proxy/http_types.hpp"


#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace gw::proxy {

// Incremental scan of a request head as it arrives. Rejects NUL, bare CR, bare LF and obs-fold
// (a line starting with SP or HTAB) before Beast sees the bytes, so that nothing ambiguous is
// ever parsed leniently.
class head_scanner {
 public:
  enum class state { need_more, complete, malformed };

  // `data` is everything buffered so far (it only grows between calls until complete).
  state scan(std::string_view data);
  std::size_t head_length() const { return head_length_; }  // valid when complete
  void reset() { resume_ = 0; head_length_ = 0; }

 private:
  std::size_t resume_ = 0;
  std::size_t head_length_ = 0;
};

// Checks the parsed head for what Beast lets through but SPEC 4.1 forbids: a Transfer-Encoding
// whose last coding is not chunked, an invalid target, a missing or repeated Host. Returns the
// reason when the request must be refused with 400.
std::optional<std::string_view> framing_problem(const request_head& head);

// Origin-form target check: "/" followed by pchar / "/" / "?" and valid %XX escapes.
bool valid_origin_target(std::string_view target);

// An absolute-form target (RFC 9112 3.2.2), "http://authority/path?query" (or https), split into
// its authority, which replaces Host, and the origin-form the upstream receives ("/" when the
// path is empty). nullopt when the target is not absolute-form, or its authority is empty,
// carries userinfo, or is not a host[:port] of URI characters, or its rest is no origin-form.
struct absolute_target {
  std::string_view authority;
  std::string origin;
};
std::optional<absolute_target> split_absolute_form(std::string_view target);

// RFC 3986 normalisation of the path used for routing and forwarding: %XX escapes of unreserved
// characters decoded (so /%6Cogin cannot dodge the /login route's limits), remaining escapes
// upper-cased, dot segments removed.
std::string normalize_path(std::string_view path);

// The Host header without port, lower-cased ("API.example.com:8080" -> "api.example.com").
std::string host_without_port(std::string_view host);

}  // namespace gw::proxy
