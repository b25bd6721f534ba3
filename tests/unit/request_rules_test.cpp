// Framing rules and path normalisation: what gets a request refused with 400 before anything
// reaches an upstream, and which path a route sees.
#include "proxy/request_rules.hpp"

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/empty_body.hpp>

#include <gtest/gtest.h>

namespace {

using gw::proxy::head_scanner;
namespace http = boost::beast::http;

head_scanner::state scan_all(std::string_view head) {
  head_scanner s;
  return s.scan(head);
}

TEST(head_scanner, finds_the_end_of_a_complete_head) {
  head_scanner s;
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
  ASSERT_EQ(s.scan(head), head_scanner::state::complete);
  EXPECT_EQ(s.head_length(), head.size() - 4);
}

TEST(head_scanner, resumes_across_partial_reads) {
  head_scanner s;
  std::string data;
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\n";
  for (std::size_t i = 0; i + 1 < head.size(); ++i) {
    data += head[i];
    ASSERT_EQ(s.scan(data), head_scanner::state::need_more) << "after " << i + 1 << " bytes";
  }
  data += head.back();
  ASSERT_EQ(s.scan(data), head_scanner::state::complete);
  EXPECT_EQ(s.head_length(), head.size());
}

TEST(head_scanner, refuses_nul_bare_cr_bare_lf_and_obs_fold) {
  using enum head_scanner::state;
  EXPECT_EQ(scan_all(std::string("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 29)), malformed);
  EXPECT_EQ(scan_all("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), malformed);
  EXPECT_EQ(scan_all("GET / HTTP/1.1\nHost: a\r\n\r\n"), malformed);
  EXPECT_EQ(scan_all("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), malformed);
  EXPECT_EQ(scan_all("GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n"), malformed);
  EXPECT_EQ(scan_all("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), malformed);
}

gw::proxy::request_head parse(std::string_view head) {
  http::request_parser<http::empty_body, gw::proxy::arena_allocator> p;
  boost::beast::error_code ec;
  p.put(boost::asio::buffer(head.data(), head.size()), ec);
  EXPECT_FALSE(ec) << ec.message() << " for " << head;
  return p.release().base();
}

TEST(framing_problem, accepts_ordinary_requests) {
  EXPECT_FALSE(gw::proxy::framing_problem(parse("GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_FALSE(gw::proxy::framing_problem(
      parse("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")));
  EXPECT_FALSE(gw::proxy::framing_problem(
      parse("POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")));
  EXPECT_FALSE(gw::proxy::framing_problem(parse("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_FALSE(gw::proxy::framing_problem(parse("GET / HTTP/1.0\r\n\r\n")));
}

TEST(split_absolute_form, gives_the_authority_and_the_origin_form) {
  using gw::proxy::split_absolute_form;
  EXPECT_FALSE(gw::proxy::framing_problem(parse("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n")));
  const auto a = split_absolute_form("http://Api.example:8080/a/b?c=d");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->authority, "Api.example:8080");
  EXPECT_EQ(a->origin, "/a/b?c=d");
  EXPECT_EQ(split_absolute_form("HTTPS://h")->origin, "/");
  EXPECT_EQ(split_absolute_form("http://h?q=1")->origin, "/?q=1");
  EXPECT_EQ(split_absolute_form("http://[::1]:80/x")->authority, "[::1]:80");
  for (const char* bad : {"/x", "http://", "http:///x", "http://u:p@h/", "http://h/x#f",
                          "http://h/%zz", "ftp://h/", "http://h%41/", "http://h x/"})
    EXPECT_FALSE(split_absolute_form(bad)) << bad;
}

TEST(framing_problem, refuses_ambiguous_or_foreign_forms) {
  EXPECT_TRUE(gw::proxy::framing_problem(parse("GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_TRUE(gw::proxy::framing_problem(parse("GET x/y HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_TRUE(gw::proxy::framing_problem(parse("GET * HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_TRUE(gw::proxy::framing_problem(parse("GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_TRUE(gw::proxy::framing_problem(parse("GET /a\"b HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_TRUE(gw::proxy::framing_problem(parse("GET / HTTP/1.1\r\n\r\n")));
  EXPECT_TRUE(gw::proxy::framing_problem(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")));
  EXPECT_TRUE(gw::proxy::framing_problem(
      parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")));
  EXPECT_TRUE(gw::proxy::framing_problem(
      parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")));
  EXPECT_TRUE(gw::proxy::framing_problem(
      parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")));
}

TEST(normalize_path, decodes_unreserved_and_removes_dot_segments) {
  using gw::proxy::normalize_path;
  EXPECT_EQ(normalize_path("/"), "/");
  EXPECT_EQ(normalize_path("/%6Cogin"), "/login");
  EXPECT_EQ(normalize_path("/a/%2e%2E/login"), "/login");
  EXPECT_EQ(normalize_path("/a/./b/../c"), "/a/c");
  EXPECT_EQ(normalize_path("/../../etc"), "/etc");
  EXPECT_EQ(normalize_path("/a/b/.."), "/a/");
  EXPECT_EQ(normalize_path("/a/b/."), "/a/b/");
  EXPECT_EQ(normalize_path("/a%2fb"), "/a%2Fb");  // an encoded slash stays encoded
  EXPECT_EQ(normalize_path("/a//b/"), "/a//b/");
  EXPECT_EQ(normalize_path("/file.txt"), "/file.txt");
}

TEST(host_without_port, lowercases_and_drops_the_port) {
  using gw::proxy::host_without_port;
  EXPECT_EQ(host_without_port("API.Example.com:8080"), "api.example.com");
  EXPECT_EQ(host_without_port("example.com"), "example.com");
  EXPECT_EQ(host_without_port("[::1]:80"), "[::1]");
  EXPECT_EQ(host_without_port(""), "");
}

}  // namespace
