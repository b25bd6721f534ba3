// How a request and its response are rewritten between the two sides (SPEC 4.6): hop-by-hop
// headers removed (Connection, the fields it names, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade), X-Forwarded-* and X-Request-Id set. The heads are written straight from the
// parsed fields with the edits applied on the way, never by editing Beast's field list.
#pragma once

#include "proxy/http_types.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace gw::proxy {

// How the request goes upstream: what replaces or joins the client's headers.
struct forward_context {
  std::string_view peer_ip;     // the TCP peer, appended to X-Forwarded-For
  std::string_view request_id;  // used when the request carries no X-Request-Id
  std::string_view target;      // normalised (and possibly prefix-stripped) target to send
  std::string_view consumer;    // X-Consumer (empty: none; the client's own is always dropped)
  // Host when the request has none (HTTP/1.0 may omit it; HTTP/1.1 must carry it upstream): the
  // upstream's name, as Envoy's default_host_for_http_10 would be set.
  std::string_view default_host;
  bool https = false;  // the client came over TLS: X-Forwarded-Proto: https
  // X-Forwarded-Client-Cert: Hash=...;Subject="..." for a verified client certificate (empty:
  // none); a client's own X-Forwarded-Client-Cert never goes upstream.
  std::string_view client_cert_sha256;
  std::string_view client_cert_subject;
  bool chunked = false;                        // the body goes chunked
  std::optional<std::uint64_t> content_length;  // or with this length (neither: no body)
};

// The head sent upstream, appended to `out`: HTTP/1.1, the new target, the client's fields less
// hop-by-hop ones, Expect (the gateway answers 100-continue itself), framing and the fields the
// gateway sets; Host (the context's default_host when the client sent none); then X-Forwarded-For (every line of it joined, the peer appended),
// X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id (when the client sent none), X-Consumer,
// X-Forwarded-Client-Cert, and Content-Length or Transfer-Encoding.
void write_upstream_head(const request_head& head, const forward_context& ctx, std::string& out);

// How the response goes to the client.
struct response_context {
  // Fields the gateway sets (rate limit headers): they replace the upstream's of the same name.
  std::span<const std::pair<std::string, std::string>> extra;
  bool chunked = false;  // re-chunked for the client: Transfer-Encoding: chunked
  bool close = false;    // Connection: close
  bool keep_alive_http10 = false;  // Connection: keep-alive (an HTTP/1.0 client that keeps it)
};

// The upstream's response head for the client, appended to `out`: HTTP/1.1, the status and
// reason, the fields less hop-by-hop ones, then the context's.
void write_downstream_head(const response_head& head, const response_context& ctx,
                           std::string& out);

// Appends v in decimal, as heads and the gateway's own responses write numbers.
void append_decimal(std::string& out, std::uint64_t v);

// {"error":"...","message":"..."} (SPEC 6); extra_fields are inserted verbatim before the brace.
std::string error_json(std::string_view error, std::string_view message,
                       std::string_view extra_fields = {});
// Appends s to out as a JSON string body (without quotes), escaping as needed.
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace gw::proxy
