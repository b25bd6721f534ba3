// The two halves of relaying a body piece by piece that need no socket: parsing what is buffered
// into the relay buffer, and the chunk size line a re-chunked piece goes out with. The session
// (session.cpp: read_some, write_piece) and the chunked_body fuzz target both use these.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>

#include <cstddef>
#include <cstdio>
#include <string_view>

namespace gw::proxy {

// Puts what `buffer` holds into `parser` and consumes what it took (adding it to `used`). True
// when the parser has what it needs (a piece, the end, or an error in `ec`); false when it needs
// more bytes from the peer. A full buffer that still needs more is buffer_overflow.
template <bool isRequest>
bool parse_buffered(boost::beast::http::basic_parser<isRequest>& parser,
                    boost::beast::flat_buffer& buffer, boost::beast::error_code& ec,
                    std::size_t& used) {
  const auto n = parser.put(buffer.data(), ec);
  buffer.consume(n);
  used += n;
  if (ec == boost::beast::http::error::need_more && buffer.size() == buffer.max_size())
    ec = boost::beast::http::error::buffer_overflow;
  return ec != boost::beast::http::error::need_more;
}

// "<size in hex>\r\n", the line before a chunk of `size` bytes, written into `out`.
inline std::string_view chunk_size_line(std::size_t size, char (&out)[24]) {
  const int n = std::snprintf(out, sizeof out, "%zx\r\n", size);
  return {out, static_cast<std::size_t>(n)};
}

}  // namespace gw::proxy
