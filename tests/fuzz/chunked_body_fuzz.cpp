// Feeds bytes as a message body the gateway relays piece by piece (session::read_body_piece and
// write_piece, through proxy/body_pieces.hpp, which this drives the way they do): a chunked request body, a chunked response body, or a response delimited by the
// upstream closing (which the gateway re-chunks for the client). Input: one byte of settings
// (bits 0-1: which of the three; bits 2-4: relay buffer size; bit 5: a body limit on requests),
// one byte for how many bytes each socket read brings, then the body. The body goes through
// Beast's parser into a small relay buffer in reads of that size, as the session reads it.
// Checks that the pieces never exceed the limit, that the same bytes read all at once give the
// same body and the same verdict, and that the pieces re-chunked as the gateway writes them
// parse back to the same body.
#include "proxy/body_pieces.hpp"
#include "proxy/http_types.hpp"

#include "fuzz_check.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>

namespace {

namespace http = boost::beast::http;
using gw::proxy::arena_allocator;

constexpr std::string_view request_head =
    "POST /upload HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n";
constexpr std::string_view chunked_response_head =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
constexpr std::string_view close_delimited_head = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n";

struct relayed {
  bool done = false;  // the whole body arrived, nothing refused
  std::string body;
  std::string rechunked;  // as write_piece sends it on
};

// What read_some and read_body_piece do, with `body` arriving `read_size` bytes at a time and
// the peer closing after the last.
template <class Parser>
relayed relay(Parser& parser, std::string_view head, std::string_view body,
              std::size_t relay_size, std::size_t read_size) {
  relayed out;
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(head.data(), head.size()), ec);
  FUZZ_CHECK(!ec && parser.is_header_done());
  boost::beast::flat_buffer buffer;
  std::string relay_buffer(relay_size, '\0');
  auto& b = parser.get().body();
  auto next_read = [&] {
    if (body.empty()) return false;
    const auto n = std::min(read_size, body.size());
    buffer.commit(boost::asio::buffer_copy(buffer.prepare(n), boost::asio::buffer(body.data(), n)));
    body.remove_prefix(n);
    return true;
  };
  while (!parser.is_done()) {
    // read_body_piece
    b.data = relay_buffer.data();
    b.size = relay_size;
    // read_some: what is buffered is parsed first, the socket read only when the parser needs
    // more (an empty buffer is never put: Beast answers that with success, not need_more).
    std::size_t used = 0;
    auto parse = [&] { return gw::proxy::parse_buffered(parser, buffer, ec, used); };
    if (buffer.size() == 0 || !parse()) {
      for (;;) {
        if (!next_read()) {
          ec = {};
          parser.put_eof(ec);
          break;
        }
        if (parse()) break;
      }
    }
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return out;  // 400, 413, or the peer went away: nothing more is relayed
    const auto produced = relay_size - b.size;
    if (produced == 0 && !parser.is_done()) continue;
    out.body.append(relay_buffer.data(), produced);
    // write_piece
    if (produced > 0) {
      char size_line[24];
      out.rechunked.append(gw::proxy::chunk_size_line(produced, size_line));
      out.rechunked.append(relay_buffer.data(), produced).append("\r\n");
    }
  }
  out.rechunked.append("0\r\n\r\n");
  out.done = true;
  return out;
}

template <bool isRequest>
std::optional<std::string> parse_whole(std::string_view head, std::string_view body,
                                       std::optional<std::uint64_t> limit) {
  http::parser<isRequest, http::string_body> parser;
  if (limit)
    parser.body_limit(*limit);
  else
    parser.body_limit(boost::none);
  parser.eager(true);
  const std::string all = std::string{head} + std::string{body};
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(all), ec);
  if (ec == http::error::need_more) ec = {};
  if (!ec && !parser.is_done()) parser.put_eof(ec);  // the peer closed
  if (ec || !parser.is_done()) return std::nullopt;
  return parser.get().body();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size < 2) return 0;
  const unsigned settings = bytes[0];
  const unsigned mode = settings & 3u;
  if (mode == 3) return 0;
  const std::size_t relay_size = std::size_t{1} << ((settings >> 2) & 7u);  // 1 .. 128
  const std::optional<std::uint64_t> limit =
      mode == 0 && (settings & 32u) ? std::optional<std::uint64_t>{64} : std::nullopt;
  const std::size_t read_size = bytes[1] == 0 ? 4096 : bytes[1];
  const std::string_view body{reinterpret_cast<const char*>(bytes) + 2, size - 2};

  std::pmr::monotonic_buffer_resource arena;
  relayed got;
  std::optional<std::string> whole;
  if (mode == 0) {
    gw::proxy::request_parser parser{std::piecewise_construct, std::make_tuple(),
                                     std::make_tuple(arena_allocator{&arena})};
    if (limit)
      parser.body_limit(*limit);
    else
      parser.body_limit(boost::none);
    got = relay(parser, request_head, body, relay_size, read_size);
    whole = parse_whole<true>(request_head, body, limit);
  } else {
    const auto head = mode == 1 ? chunked_response_head : close_delimited_head;
    gw::proxy::response_parser parser{std::piecewise_construct, std::make_tuple(),
                                      std::make_tuple(arena_allocator{&arena})};
    parser.body_limit(boost::none);
    got = relay(parser, head, body, relay_size, read_size);
    whole = parse_whole<false>(head, body, std::nullopt);
  }

  FUZZ_CHECK(got.done == whole.has_value());
  if (!got.done) return 0;
  FUZZ_CHECK(got.body == *whole);
  if (limit) FUZZ_CHECK(got.body.size() <= *limit);
  // What the next hop reads from the gateway.
  const auto again = parse_whole<false>(chunked_response_head, got.rechunked, std::nullopt);
  FUZZ_CHECK(again && *again == got.body);
  return 0;
}
