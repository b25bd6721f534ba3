// A blocking HTTP/1.1 client for tests: raw bytes out, parsed replies in, every call bounded by a
// timeout that throws std::runtime_error, so no test can hang on a socket.
#pragma once

#include "support/wire.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>
#include <string>
#include <string_view>

struct ssl_session_st;

namespace gw::test {

struct http_reply {
  int status = 0;
  header_list headers;
  std::string body;
  bool keep_alive = true;  // false when the reply said the connection closes

  // Case-insensitive; repeated fields joined with ", "; "" if absent.
  std::string header(std::string_view name) const { return header_value(headers, name); }
  bool has_header(std::string_view name) const { return header_present(headers, name); }
};

// TLS for a test client (OpenSSL): what it offers and checks.
struct tls_options {
  bool enabled = false;
  std::string server_name;  // SNI; empty: none sent
  std::string ca_file;      // verify the server against these; empty: no verification
  std::string cert_file;    // a client certificate and its key; empty: none
  std::string key_file;
  int min_version = 0;  // TLS1_1_VERSION...; 0: OpenSSL's default
  int max_version = 0;
  std::vector<std::string> alpn;               // protocols offered; empty: no ALPN
  std::shared_ptr<ssl_session_st> resume;      // a session to resume (tls_session::session)
};

// What a TLS handshake settled, from the client's side.
struct tls_session {
  std::string version;           // "TLSv1.3"; empty for plain TCP
  std::string alpn;              // the protocol the server chose; empty: none
  std::string peer_common_name;  // of the certificate the server showed
  bool resumed = false;
  std::shared_ptr<ssl_session_st> session;  // to resume with
};

// From now on, every connection of this process to `port` that is not given TLS options of its
// own uses `options`: request(), upload_pattern(), download() and client_connection(port, ...)
// then speak TLS to that port, so a behaviour's test runs over TLS unchanged. Ports are picked
// at random: use_plain_by_default undoes it for a port that now serves something plain (a later
// test's admin listener).
void use_tls_by_default(std::uint16_t port, tls_options options);
void use_plain_by_default(std::uint16_t port);
// What use_tls_by_default set for `port`, if anything.
std::optional<tls_options> default_tls_for(std::uint16_t port);

// One connection; `timeout` bounds each call (connect, send, read) separately.
class client_connection {
 public:
  explicit client_connection(std::uint16_t port, std::string host = "127.0.0.1",
                             std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Over TLS with `tls` (enabled or not); throws if the handshake fails.
  client_connection(std::uint16_t port, const tls_options& tls,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));
  tls_session tls() const;
  ~client_connection();
  client_connection(client_connection&&) noexcept;
  client_connection& operator=(client_connection&&) noexcept;

  // Writes all of `raw`; throws if the peer is gone or the write times out.
  void send(std::string_view raw);
  // As send, but reports failure (peer closed or reset, timeout) as false: for tests where the
  // server may answer and close before the whole request is out (413, 431, 400).
  bool try_send(std::string_view raw);
  // Half-closes: the peer reads EOF, replies can still be read.
  void shutdown_send();

  // Reads exactly one response; bytes after it stay buffered for the next call (pipelining).
  // 1xx interim responses are skipped. Pass head_request for a reply to HEAD (no body follows).
  http_reply read_reply(bool head_request = false);
  // As above; with return_interim a 1xx comes back as a reply of its own.
  http_reply read_reply(bool head_request, bool return_interim);

  // True once the peer has closed (EOF or reset) within `timeout`, false if it is still open.
  // Bytes that arrive meanwhile are kept for read_reply/read_until_close.
  bool wait_closed(std::chrono::milliseconds timeout);
  // Everything (buffered bytes included) until the peer closes; throws on timeout.
  std::string read_until_close();

 private:
  struct state;
  std::unique_ptr<state> state_;
};

// One request on a fresh connection. Adds "Host: localhost" unless given, Content-Length when
// the body is non-empty, and "Connection: close". A HEAD request reads no body.
http_reply request(std::uint16_t port, std::string method, std::string target,
                   header_list headers = {}, std::string body = {},
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));

// What a streamed transfer did, without the body ever being held whole.
struct stream_result {
  int status = 0;
  std::uint64_t bytes = 0;  // upload: body bytes sent; download: body bytes received
  std::string fnv_hex;      // FNV-1a 64 of those bytes, 16 hex digits
  std::string body_text;    // the reply body's first 64 KiB (upload: "<count> <hex>" from /upload)
  header_list headers;      // the reply's headers

  std::string header(std::string_view name) const { return header_value(headers, name); }
  bool has_header(std::string_view name) const { return header_present(headers, name); }
};

// POSTs `bytes` pattern bytes (Content-Length, or chunked in 64 KiB chunks) on a fresh connection
// while reading the reply, so an early answer (413, 429) ends the upload instead of blocking it.
// `timeout` bounds the whole exchange.
stream_result upload_pattern(std::uint16_t port, std::string target, std::uint64_t bytes,
                             bool chunked,
                             std::chrono::milliseconds timeout = std::chrono::seconds(60),
                             header_list headers = {});

// GETs `target` on a fresh connection and hashes the body as it arrives (any framing).
// `timeout` bounds the whole exchange.
stream_result download(std::uint16_t port, std::string target,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60),
                       header_list headers = {});

}  // namespace gw::test
