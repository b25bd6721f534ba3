// Header rewriting between client and upstream: hop-by-hop removal, X-Forwarded-*, request ids.
#include "proxy/forwarding.hpp"

#include <boost/beast/http/field.hpp>

#include <gtest/gtest.h>

namespace {

namespace http = boost::beast::http;

TEST(prepare_upstream_head, removes_hop_by_hop_headers_and_those_connection_names) {
  http::request_header<> h;
  h.method(http::verb::get);
  h.target("/old");
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

  gw::proxy::prepare_upstream_head(h, {"10.1.2.3", "rid-1", "/new?q=1"});

  for (auto name : {"Connection", "X-Secret-Hop", "Keep-Alive", "Proxy-Connection", "TE",
                    "Trailer", "Transfer-Encoding", "Upgrade", "Expect"})
    EXPECT_EQ(h.count(name), 0u) << name;
  EXPECT_EQ(h["X-Kept"], "yes");
  EXPECT_EQ(h.target(), "/new?q=1");
  EXPECT_EQ(h["X-Forwarded-For"], "10.1.2.3");
  EXPECT_EQ(h["X-Forwarded-Proto"], "http");
  EXPECT_EQ(h["X-Forwarded-Host"], "api.example.com");
  EXPECT_EQ(h["X-Request-Id"], "rid-1");
  EXPECT_EQ(h[http::field::host], "api.example.com");
}

TEST(prepare_upstream_head, appends_the_peer_to_every_forwarded_for_line) {
  http::request_header<> h;
  h.insert("X-Forwarded-For", "1.1.1.1, 2.2.2.2");
  h.insert("X-Forwarded-For", "3.3.3.3");
  h.set("X-Request-Id", "client-chose-this");
  gw::proxy::prepare_upstream_head(h, {"127.0.0.1", "generated", "/"});
  EXPECT_EQ(h.count("X-Forwarded-For"), 1u);
  EXPECT_EQ(h["X-Forwarded-For"], "1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1");
  EXPECT_EQ(h["X-Request-Id"], "client-chose-this");
}

TEST(prepare_downstream_head, strips_hop_by_hop_from_responses) {
  http::response_header<> h;
  h.version(10);
  h.set(http::field::connection, "close");
  h.set(http::field::transfer_encoding, "chunked");
  h.set(http::field::content_type, "text/plain");
  gw::proxy::prepare_downstream_head(h);
  EXPECT_EQ(h.count(http::field::connection), 0u);
  EXPECT_EQ(h.count(http::field::transfer_encoding), 0u);
  EXPECT_EQ(h[http::field::content_type], "text/plain");
  EXPECT_EQ(h.version(), 11u);
}

TEST(error_json, renders_the_spec_shape_and_escapes) {
  EXPECT_EQ(gw::proxy::error_json("no_route", "No route matches the request"),
            R"({"error":"no_route","message":"No route matches the request"})");
  EXPECT_EQ(gw::proxy::error_json("x", "a \"quoted\"\n", R"(,"n":1)"),
            R"({"error":"x","message":"a \"quoted\"\n","n":1})");
}

}  // namespace
