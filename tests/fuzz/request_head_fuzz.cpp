// Feeds bytes as a client sends them down the session's request-head path: leading CRLFs
// dropped, head_scanner (whole and one byte at a time), Beast's parser, framing_problem,
// split_absolute_form, normalize_path, host_without_port, routing over a fixed route table,
// rewrite_path and write_upstream_head. Checks that the scanner agrees with itself however the
// bytes arrive, that an accepted request has a valid target, that normalize_path is idempotent
// and yields a valid path free of dot segments, and that the head sent upstream parses back as
// one complete, well-framed head without hop-by-hop fields.
#include "config/loader.hpp"
#include "proxy/forwarding.hpp"
#include "proxy/http_types.hpp"
#include "proxy/request_rules.hpp"
#include "proxy/router.hpp"

#include "fuzz_check.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string>
#include <string_view>

namespace {

namespace http = boost::beast::http;
using namespace gw::proxy;

constexpr std::size_t max_header_bytes = 16 * 1024;  // server.max_header_bytes' default

const gw::config::gateway_config& routes_config() {
  static const auto loaded = gw::config::load_string(R"(
upstreams:
  u: { servers: [127.0.0.1:9000] }
routes:
  - name: login
    match: { path: /login, methods: [POST], host: api.example.com }
    upstream: u
  - name: public
    match: { path_prefix: /public/ }
    upstream: u
    strip_prefix: true
  - name: versioned
    match: { path_regex: "^/v[0-9]+/items$" }
    upstream: u
  - name: bare_prefix
    match: { path_prefix: /api }
    upstream: u
    strip_prefix: true
)");
  FUZZ_CHECK(loaded.ok());
  return *loaded.config;
}

bool has_dot_segment(std::string_view path) {
  for (std::size_t start = 1; start <= path.size();) {
    auto end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const auto segment = path.substr(start, end - start);
    if (segment == "." || segment == "..") return true;
    start = end + 1;
  }
  return false;
}

bool has_ascii_upper(std::string_view s) {
  for (char c : s)
    if (c >= 'A' && c <= 'Z') return true;
  return false;
}

void check_path(std::string_view raw, const std::string& path) {
  FUZZ_CHECK(!path.empty() && path.front() == '/');
  FUZZ_CHECK(normalize_path(path) == path);
  FUZZ_CHECK(!has_dot_segment(path));
  FUZZ_CHECK(path.size() <= raw.size());
  // Decoding an escape of an unreserved character and dropping segments keep a valid path valid.
  if (valid_origin_target(raw)) FUZZ_CHECK(valid_origin_target(path));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  static const auto& cfg = routes_config();
  static const router routes{cfg.routes};

  std::string_view data{reinterpret_cast<const char*>(bytes), size};
  // As the session does: stray CRLFs before a request line go.
  while (data.size() >= 2 && data[0] == '\r' && data[1] == '\n') data.remove_prefix(2);

  head_scanner whole;
  const auto state = whole.scan(data);
  // Byte by byte, as the slowest client sends it: the same verdict at the same place.
  head_scanner pieces;
  auto piece_state = head_scanner::state::need_more;
  for (std::size_t n = 1; n <= data.size() && piece_state == head_scanner::state::need_more; ++n)
    piece_state = pieces.scan(data.substr(0, n));
  FUZZ_CHECK(piece_state == state);
  if (state != head_scanner::state::complete) return 0;
  const auto head_length = whole.head_length();
  FUZZ_CHECK(pieces.head_length() == head_length);
  FUZZ_CHECK(head_length <= data.size());
  FUZZ_CHECK(data.substr(0, head_length).ends_with("\r\n\r\n"));
  FUZZ_CHECK(data.substr(0, head_length).find('\0') == std::string_view::npos);
  if (head_length > max_header_bytes) return 0;  // 431

  std::pmr::monotonic_buffer_resource arena;
  request_parser parser{std::piecewise_construct, std::make_tuple(),
                        std::make_tuple(arena_allocator{&arena})};
  parser.header_limit(static_cast<std::uint32_t>(head_length + 1));
  parser.body_limit(10 * 1024 * 1024);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data.data(), head_length), ec);
  if (ec || !parser.is_header_done()) return 0;  // 400 (or 413)
  auto& req = parser.get();
  if (framing_problem(req)) return 0;  // 400

  const auto original_target = std::string{req.target()};
  const bool asterisk = original_target == "*";
  const auto absolute = split_absolute_form(original_target);
  FUZZ_CHECK((asterisk && req.method() == http::verb::options) ||
             valid_origin_target(original_target) || absolute);
  if (absolute) {
    FUZZ_CHECK(!absolute->authority.empty());
    FUZZ_CHECK(valid_origin_target(absolute->origin));
    const std::string authority{absolute->authority};
    req.set(http::field::host, authority);
    req.target(absolute->origin);
  }

  const auto target = req.target();
  const auto query_at = target.find('?');
  std::string path;
  if (asterisk) {
    path = "*";
  } else {
    const auto raw = target.substr(0, query_at);
    path = normalize_path(raw);
    check_path(raw, path);
  }
  const bool had_host = req.count(http::field::host) == 1;
  const auto host = host_without_port(req[http::field::host]);
  FUZZ_CHECK(!has_ascii_upper(host));
  FUZZ_CHECK(host.size() <= req[http::field::host].size());

  const auto index = routes.match(req.method_string(), host, path);
  if (!index) return 0;  // 404
  const auto& route = cfg.routes[*index];
  if (route.match.path) FUZZ_CHECK(path == *route.match.path);
  if (route.match.path_prefix) FUZZ_CHECK(path.starts_with(*route.match.path_prefix));
  if (route.match.host) FUZZ_CHECK(host == *route.match.host);
  std::string upstream_target = router::rewrite_path(route, path);
  FUZZ_CHECK(upstream_target.starts_with('/'));
  if (query_at != std::string_view::npos) upstream_target.append(target.substr(query_at));
  FUZZ_CHECK(valid_origin_target(upstream_target));

  forward_context ctx;
  ctx.peer_ip = "203.0.113.7";
  ctx.request_id = "2bda65bd9390c50e0000000000000001";
  ctx.target = upstream_target;
  ctx.consumer = size % 2 ? "acme" : "";
  ctx.default_host = "backend";
  ctx.chunked = parser.chunked();
  if (!ctx.chunked && parser.content_length()) ctx.content_length = *parser.content_length();
  std::string out;
  write_upstream_head(req, ctx, out);

  // What the upstream reads: exactly one complete head ...
  head_scanner upstream_scan;
  FUZZ_CHECK(upstream_scan.scan(out) == head_scanner::state::complete);
  FUZZ_CHECK(upstream_scan.head_length() == out.size());
  http::request_parser<http::empty_body, arena_allocator> back;
  back.eager(false);
  back.put(boost::asio::buffer(out), ec);
  FUZZ_CHECK(!ec || ec == http::error::need_more);
  FUZZ_CHECK(back.is_header_done());
  const auto& up = back.get();
  // ... with the target, framing and fields the gateway decided, and no hop-by-hop field.
  FUZZ_CHECK(up.target() == upstream_target);
  FUZZ_CHECK(up.method_string() == req.method_string());
  FUZZ_CHECK(up.version() == 11);
  FUZZ_CHECK(up.count(http::field::host) == 1);  // RFC 9112 3.2: one Host, always
  FUZZ_CHECK(up.count("X-Forwarded-For") == 1);
  FUZZ_CHECK(up.count("X-Forwarded-Proto") == 1);
  FUZZ_CHECK(up.count("X-Consumer") == (ctx.consumer.empty() ? 0u : 1u));
  FUZZ_CHECK(up.count(http::field::transfer_encoding) == (ctx.chunked ? 1u : 0u));
  FUZZ_CHECK(up.count(http::field::content_length) == (ctx.content_length ? 1u : 0u));
  for (auto field : {http::field::connection, http::field::keep_alive,
                     http::field::proxy_connection, http::field::te, http::field::trailer,
                     http::field::upgrade, http::field::expect})
    FUZZ_CHECK(up.count(field) == 0);
  for (auto [it, end] = req.equal_range(http::field::connection); it != end; ++it)
    for (auto token : http::token_list{it->value()}) {
      // The gateway writes these itself, whatever the client's Connection says.
      if (boost::beast::iequals(token, "Transfer-Encoding") ||
          boost::beast::iequals(token, "Content-Length") ||
          boost::beast::iequals(token, "Host") ||
          boost::beast::iequals(token, "X-Request-Id") ||
          boost::beast::iequals(token, "X-Forwarded-For") ||
          boost::beast::iequals(token, "X-Forwarded-Proto") ||
          boost::beast::iequals(token, "X-Forwarded-Host") ||
          boost::beast::iequals(token, "X-Consumer"))
        continue;
      FUZZ_CHECK(up.count(token) == 0);
    }
  // An accepted request goes upstream as one the gateway would accept itself, with the client's
  // Host or, for an HTTP/1.0 one without, the upstream's name.
  FUZZ_CHECK(!framing_problem(up));
  const std::string_view expected_host = had_host ? std::string_view{req[http::field::host]}
                                                 : ctx.default_host;
  FUZZ_CHECK(std::string_view{up[http::field::host]} == expected_host);
  return 0;
}
