// The Beast message types the proxy parses into. Their fields allocate from a per-session arena
// (session.hpp) that is reset between requests: a parsed head costs no trip to malloc per field.
// Anything else (tests) gets the default memory resource.
#pragma once

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>

#include <memory_resource>

namespace gw::proxy {

using arena_allocator = std::pmr::polymorphic_allocator<char>;
using fields = boost::beast::http::basic_fields<arena_allocator>;
using request_head = boost::beast::http::request_header<fields>;
using response_head = boost::beast::http::response_header<fields>;
using request_parser =
    boost::beast::http::request_parser<boost::beast::http::buffer_body, arena_allocator>;
using response_parser =
    boost::beast::http::response_parser<boost::beast::http::buffer_body, arena_allocator>;

}  // namespace gw::proxy
