// Header rewriting between client and upstream: hop-by-hop removal, X-Forwarded-*, request ids,
// framing and the gateway's own fields, checked on the heads as written.
#include "proxy/forwarding.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/parser.hpp>

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace {

namespace http = boost::beast::http;
using gw::proxy::request_head;
using gw::proxy::response_head;

// The written head parsed back, as the upstream (or the client) will read it.
template <bool isRequest>
http::header<isRequest> parse_back(const std::string& text) {
  http::parser<isRequest, http::empty_body> p;
  if constexpr (!isRequest) p.skip(true);
  boost::beast::error_code ec;
  p.put(boost::asio::buffer(text), ec);
  EXPECT_FALSE(ec) << ec.message() << " in:\n" << text;
  EXPECT_TRUE(p.is_header_done()) << text;
  return p.release().base();
}

gw::proxy::forward_context context(std::string_view peer, std::string_view id,
                                   std::string_view target) {
  gw::proxy::forward_context c{};
  c.peer_ip = peer;
  c.request_id = id;
  c.target = target;
  return c;
}

std::string upstream_text(const request_head& h, const gw::proxy::forward_context& ctx) {
  std::string out;
  gw::proxy::write_upstream_head(h, ctx, out);
  return out;
}

TEST(write_upstream_head, removes_hop_by_hop_headers_and_those_connection_names) {
  request_head h;
  h.method(http::verb::get);
  h.target("/old");
  h.version(10);
  h.set(http::field::host, "api.example.com");
  h.insert(http::field::connection, "keep-alive, X-Secret-Hop");
  h.insert(http::field::connection, "Upgrade");
  h.set("X-Secret-Hop", "1");
  h.set(http::field::keep_alive, "timeout=5");
  h.set(http::field::proxy_connection, "keep-alive");
  h.set(http::field::te, "trailers");
  h.set(http::field::trailer, "X-T");
  h.set(http::field::transfer_encoding, "chunked");
  h.set(http::field::upgrade, "websocket");
  h.set(http::field::expect, "100-continue");
  h.set("X-Kept", "yes");

  const auto text = upstream_text(h, context("10.1.2.3", "rid-1", "/new?q=1"));
  EXPECT_TRUE(text.starts_with("GET /new?q=1 HTTP/1.1\r\n")) << text;
  EXPECT_TRUE(text.ends_with("\r\n\r\n")) << text;
  const auto up = parse_back<true>(text);
  for (auto name : {"Connection", "X-Secret-Hop", "Keep-Alive", "Proxy-Connection", "TE",
                    "Trailer", "Transfer-Encoding", "Upgrade", "Expect", "Content-Length",
                    "X-Consumer"})
    EXPECT_EQ(up.count(name), 0u) << name;
  EXPECT_EQ(up["X-Kept"], "yes");
  EXPECT_EQ(up.target(), "/new?q=1");
  EXPECT_EQ(up.version(), 11u);
  EXPECT_EQ(up["X-Forwarded-For"], "10.1.2.3");
  EXPECT_EQ(up["X-Forwarded-Proto"], "http");
  EXPECT_EQ(up["X-Forwarded-Host"], "api.example.com");
  EXPECT_EQ(up["X-Request-Id"], "rid-1");
  EXPECT_EQ(up[http::field::host], "api.example.com");
}

TEST(write_upstream_head, appends_the_peer_to_every_forwarded_for_line) {
  request_head h;
  h.method(http::verb::get);
  h.set(http::field::host, "x");
  h.insert("X-Forwarded-For", "1.1.1.1, 2.2.2.2");
  h.insert("x-forwarded-for", "3.3.3.3");
  h.set("X-Request-Id", "client-chose-this");
  const auto up = parse_back<true>(upstream_text(h, context("127.0.0.1", "generated", "/")));
  EXPECT_EQ(up.count("X-Forwarded-For"), 1u);
  EXPECT_EQ(up["X-Forwarded-For"], "1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1");
  EXPECT_EQ(up.count("X-Request-Id"), 1u);
  EXPECT_EQ(up["X-Request-Id"], "client-chose-this");
}

TEST(write_upstream_head, skips_empty_forwarded_for_lines_and_a_chain_named_hop_by_hop) {
  request_head h;
  h.method(http::verb::get);
  h.set(http::field::host, "x");
  h.insert("X-Forwarded-For", "");
  h.insert("X-Forwarded-For", "1.1.1.1");
  auto up = parse_back<true>(upstream_text(h, context("127.0.0.1", "id", "/")));
  EXPECT_EQ(up["X-Forwarded-For"], "1.1.1.1, 127.0.0.1");

  h.set(http::field::connection, "X-Forwarded-For");
  up = parse_back<true>(upstream_text(h, context("127.0.0.1", "id", "/")));
  EXPECT_EQ(up.count("X-Forwarded-For"), 1u);
  EXPECT_EQ(up["X-Forwarded-For"], "127.0.0.1");
}

TEST(write_upstream_head, keeps_host_even_when_connection_names_it) {
  // Otherwise an HTTP/1.1 request went upstream without Host (found by request_head_fuzz).
  request_head h;
  h.method(http::verb::get);
  h.set(http::field::host, "api.example.com");
  h.set(http::field::connection, "keep-alive, Host");
  const auto up = parse_back<true>(upstream_text(h, context("127.0.0.1", "id", "/")));
  EXPECT_EQ(up.count(http::field::host), 1u);
  EXPECT_EQ(up[http::field::host], "api.example.com");
  EXPECT_EQ(up["X-Forwarded-Host"], "api.example.com");
  EXPECT_EQ(up.count(http::field::connection), 0u);
}

TEST(write_upstream_head, gives_an_http10_request_without_host_the_upstreams_name) {
  // HTTP/1.0 may omit Host; the HTTP/1.1 request the upstream gets must carry one.
  request_head h;
  h.method(http::verb::get);
  h.version(10);
  auto ctx = context("127.0.0.1", "id", "/");
  ctx.default_host = "backend";
  const auto up = parse_back<true>(upstream_text(h, ctx));
  EXPECT_EQ(up.version(), 11);
  EXPECT_EQ(up.count(http::field::host), 1u);
  EXPECT_EQ(up[http::field::host], "backend");
  EXPECT_EQ(up.count("X-Forwarded-Host"), 0u);  // the client named no host
  // A Host of the client's own is never replaced.
  h.set(http::field::host, "api.example.com");
  const auto with_host = parse_back<true>(upstream_text(h, ctx));
  EXPECT_EQ(with_host.count(http::field::host), 1u);
  EXPECT_EQ(with_host[http::field::host], "api.example.com");
}

TEST(write_upstream_head, replaces_what_only_the_gateway_may_say) {
  request_head h;
  h.method(http::verb::post);
  h.set("X-Forwarded-Host", "forged.example");  // before Host: still replaced
  h.set(http::field::host, "real.example");
  h.set("X-Forwarded-Proto", "https");
  h.set("X-Consumer", "admin");
  h.set(http::field::content_length, "999");
  auto ctx = context("10.0.0.1", "rid", "/");
  ctx.consumer = "acme";
  ctx.content_length = 12;
  const auto up = parse_back<true>(upstream_text(h, ctx));
  EXPECT_EQ(up.count("X-Forwarded-Host"), 1u);
  EXPECT_EQ(up["X-Forwarded-Host"], "real.example");
  EXPECT_EQ(up.count("X-Forwarded-Proto"), 1u);
  EXPECT_EQ(up["X-Forwarded-Proto"], "http");
  EXPECT_EQ(up.count("X-Consumer"), 1u);
  EXPECT_EQ(up["X-Consumer"], "acme");
  EXPECT_EQ(up.count(http::field::content_length), 1u);
  EXPECT_EQ(up[http::field::content_length], "12");

  // Without a consumer the client's X-Consumer is simply gone; a chunked body says so.
  auto chunked = context("10.0.0.1", "rid", "/");
  chunked.chunked = true;
  const auto up2 = parse_back<true>(upstream_text(h, chunked));
  EXPECT_EQ(up2.count("X-Consumer"), 0u);
  EXPECT_EQ(up2.count(http::field::content_length), 0u);
  EXPECT_EQ(up2[http::field::transfer_encoding], "chunked");
}

TEST(write_upstream_head, says_https_and_who_the_client_certificate_is) {
  request_head h;
  h.method(http::verb::get);
  h.set(http::field::host, "api.example.com");
  h.set("X-Forwarded-Client-Cert", "Hash=forged");
  h.set("X_Forwarded_Client_Cert", "Hash=forged");  // the same header to a CGI-style upstream
  h.set("X_Consumer", "admin");
  auto ctx = context("10.0.0.1", "rid", "/");
  ctx.https = true;
  ctx.client_cert_sha256 = "ab01";
  // OpenSSL's RFC 2253 text escapes what needs it; quotes and backslashes are escaped again for
  // the quoted value, and a stray control byte is dropped.
  ctx.client_cert_subject = "CN=a \"b\" \\c\r\n,O=x";
  const auto text = upstream_text(h, ctx);
  const auto up = parse_back<true>(text);
  EXPECT_EQ(up["X-Forwarded-Proto"], "https");
  EXPECT_EQ(up.count("X-Forwarded-Client-Cert"), 1u);
  EXPECT_EQ(up["X-Forwarded-Client-Cert"], "Hash=ab01;Subject=\"CN=a \\\"b\\\" \\\\c,O=x\"");
  EXPECT_EQ(up.count("X_Forwarded_Client_Cert"), 0u);
  EXPECT_EQ(up.count("X_Consumer"), 0u);
  // Without a verified certificate: no such header at all.
  ctx.client_cert_sha256 = {};
  EXPECT_EQ(parse_back<true>(upstream_text(h, ctx)).count("X-Forwarded-Client-Cert"), 0u);
}

TEST(write_downstream_head, strips_hop_by_hop_and_sets_the_gateways_fields) {
  response_head h;
  h.version(10);
  h.result(http::status::ok);
  h.set(http::field::connection, "close, X-Hop");
  h.set("X-Hop", "1");
  h.set(http::field::transfer_encoding, "chunked");
  h.set(http::field::content_type, "text/plain");
  h.set("RateLimit", "from-upstream");
  const std::vector<std::pair<std::string, std::string>> extra{{"RateLimit", "\"l\";r=4;t=1"}};
  gw::proxy::response_context ctx;
  ctx.extra = extra;
  ctx.chunked = true;
  std::string text;
  gw::proxy::write_downstream_head(h, ctx, text);
  EXPECT_TRUE(text.starts_with("HTTP/1.1 200 OK\r\n")) << text;
  const auto down = parse_back<false>(text);
  EXPECT_EQ(down.count(http::field::connection), 0u);
  EXPECT_EQ(down.count("X-Hop"), 0u);
  EXPECT_EQ(down.count(http::field::transfer_encoding), 1u);
  EXPECT_EQ(down[http::field::transfer_encoding], "chunked");
  EXPECT_EQ(down[http::field::content_type], "text/plain");
  EXPECT_EQ(down.count("RateLimit"), 1u);
  EXPECT_EQ(down["RateLimit"], "\"l\";r=4;t=1");

  gw::proxy::response_context closing;
  closing.close = true;
  h.reason("Fine");
  text.clear();
  gw::proxy::write_downstream_head(h, closing, text);
  EXPECT_TRUE(text.starts_with("HTTP/1.1 200 Fine\r\n")) << text;
  const auto closed = parse_back<false>(text);
  EXPECT_EQ(closed[http::field::connection], "close");
  EXPECT_EQ(closed.count(http::field::transfer_encoding), 0u);
  EXPECT_EQ(closed["RateLimit"], "from-upstream");
}

TEST(error_json, renders_the_spec_shape_and_escapes) {
  EXPECT_EQ(gw::proxy::error_json("no_route", "No route matches the request"),
            R"({"error":"no_route","message":"No route matches the request"})");
  EXPECT_EQ(gw::proxy::error_json("x", "a \"quoted\"\n", R"(,"n":1)"),
            R"({"error":"x","message":"a \"quoted\"\n","n":1})");
}

}  // namespace
