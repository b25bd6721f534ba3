// How a request and its response are rewritten between the two sides (SPEC 4.6): hop-by-hop
// headers removed, X-Forwarded-* and X-Request-Id set. Pure functions over Beast headers.
#pragma once

#include <boost/beast/http/message.hpp>

#include <string>
#include <string_view>

namespace gw::proxy {

struct forward_context {
  std::string_view peer_ip;     // the TCP peer, appended to X-Forwarded-For
  std::string_view request_id;  // used when the request carries no X-Request-Id
  std::string_view target;      // normalised (and possibly prefix-stripped) target to send
};

// Removes Connection, the fields it names, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding and Upgrade. Framing is set again by whoever serialises the message.
void remove_hop_by_hop(boost::beast::http::fields& fields);

// Rewrites a client's request head into the head sent upstream. Expect is dropped because the
// gateway answers 100-continue itself.
void prepare_upstream_head(boost::beast::http::request_header<>& head, const forward_context& ctx);

// Rewrites an upstream response head for the client.
void prepare_downstream_head(boost::beast::http::response_header<>& head);

// A head as it goes on the wire (start line, fields, empty line), appended to `out`. The proxy
// writes heads itself: Beast's serializer costs more than the rest of a small request.
void serialize_head(const boost::beast::http::request_header<>& head, std::string& out);
void serialize_head(const boost::beast::http::response_header<>& head, std::string& out);

// {"error":"...","message":"..."} (SPEC 6); extra_fields are inserted verbatim before the brace.
std::string error_json(std::string_view error, std::string_view message,
                       std::string_view extra_fields = {});

// Appends s to out as a JSON string body (without quotes), escaping as needed.
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace gw::proxy
