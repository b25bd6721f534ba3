// Header rewriting between client and upstream (see forwarding.hpp).
#include "proxy/forwarding.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>

namespace gw::proxy {

namespace http = boost::beast::http;
using boost::beast::iequals;

namespace {

bool always_hop_by_hop(http::field f) {
  switch (f) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
    case http::field::trailer:
    case http::field::transfer_encoding:
    case http::field::upgrade:
      return true;
    default:
      return false;
  }
}

// The field names the Connection lines of a head list (RFC 9110 7.6.1): also hop-by-hop.
class connection_names {
 public:
  explicit connection_names(const fields& all) : all_(all) {
    for (auto [it, end] = all.equal_range(http::field::connection); it != end; ++it)
      for (auto token : http::token_list{it->value()}) {
        if (count_ < names_.size())
          names_[count_++] = token;
        else
          overflow_ = true;
      }
  }

  bool contains(std::string_view name) const {
    for (std::size_t i = 0; i < count_; ++i)
      if (iequals(names_[i], name)) return true;
    if (!overflow_) return false;
    for (auto [it, end] = all_.equal_range(http::field::connection); it != end; ++it)
      for (auto token : http::token_list{it->value()})
        if (iequals(token, name)) return true;
    return false;
  }

 private:
  const fields& all_;
  std::array<std::string_view, 8> names_;
  std::size_t count_ = 0;
  bool overflow_ = false;
};

bool is_hop_by_hop(const connection_names& named, const fields::value_type& field) {
  return always_hop_by_hop(field.name()) || named.contains(field.name_string());
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

// Case-insensitive, with "_" and "-" the same (how CGI-style upstreams see header names).
bool same_name(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x == '_') x = '-';
    if (y == '_') y = '-';
    if (std::tolower(x) != std::tolower(y)) return false;
  }
  return true;
}

}  // namespace

void append_decimal(std::string& out, std::uint64_t v) {
  char text[24];
  out.append(text, static_cast<std::size_t>(std::to_chars(text, text + sizeof text, v).ptr - text));
}

void write_upstream_head(const request_head& head, const forward_context& ctx, std::string& out) {
  const connection_names named{head};
  out.append(head.method_string()).append(" ").append(ctx.target).append(" HTTP/1.1\r\n");
  const auto host = head.find(http::field::host);
  const bool has_host = host != head.end();
  bool has_request_id = false;
  if (!has_host && !ctx.default_host.empty()) append_field(out, "Host", ctx.default_host);
  for (const auto& field : head) {
    // Host is end to end whatever the client's Connection names: an HTTP/1.1 request must carry
    // it (RFC 9112 3.2), and the upstream must see the host the request was routed by.
    if (field.name() != http::field::host && is_hop_by_hop(named, field)) continue;
    const auto name = field.name_string();
    switch (field.name()) {
      case http::field::expect:
      case http::field::content_length:  // framing is written below
        continue;
      case http::field::unknown:
        // Set by the gateway below, whatever the client sent.
        // Also their spellings with "_" for "-": CGI, PHP and WSGI upstreams read both as one
        // variable, so X_Consumer would pass for the gateway's X-Consumer.
        if (same_name(name, "X-Forwarded-For") || same_name(name, "X-Forwarded-Proto") ||
            same_name(name, "X-Consumer") || same_name(name, "X-Forwarded-Client-Cert"))
          continue;
        if (iequals(name, "X-Forwarded-Host") && has_host) continue;
        if (iequals(name, "X-Request-Id")) has_request_id = true;
        break;
      default:
        break;
    }
    append_field(out, name, field.value());
  }
  // All X-Forwarded-For lines form one list (empty ones add nothing; a chain the client's
  // Connection names as hop-by-hop is dropped); the peer goes on its end.
  out.append("X-Forwarded-For: ");
  if (!named.contains("X-Forwarded-For"))
    for (auto [it, end] = head.equal_range("X-Forwarded-For"); it != end; ++it)
      if (!it->value().empty()) out.append(it->value()).append(", ");
  out.append(ctx.peer_ip).append(ctx.https ? "\r\nX-Forwarded-Proto: https\r\n"
                                             : "\r\nX-Forwarded-Proto: http\r\n");
  if (has_host) append_field(out, "X-Forwarded-Host", host->value());
  if (!has_request_id) append_field(out, "X-Request-Id", ctx.request_id);
  if (!ctx.consumer.empty()) append_field(out, "X-Consumer", ctx.consumer);
  if (!ctx.client_cert_sha256.empty()) {
    // As Envoy writes it: the subject quoted, its quotes and backslashes escaped; OpenSSL's
    // RFC 2253 text has escaped control and non-ASCII bytes already, and any left are dropped.
    out.append("X-Forwarded-Client-Cert: Hash=").append(ctx.client_cert_sha256);
    out.append(";Subject=\"");
    for (char c : ctx.client_cert_subject) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u == 0x7f) continue;
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out.append("\"\r\n");
  }
  if (ctx.chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  } else if (ctx.content_length) {
    out.append("Content-Length: ");
    append_decimal(out, *ctx.content_length);
    out.append("\r\n");
  }
  out.append("\r\n");
}

void write_downstream_head(const response_head& head, const response_context& ctx,
                           std::string& out) {
  const connection_names named{head};
  out.append("HTTP/1.1 ");
  append_decimal(out, head.result_int());
  out.append(" ");
  const auto reason = head.reason();
  out.append(reason.empty() ? http::obsolete_reason(head.result()) : reason).append("\r\n");
  for (const auto& field : head) {
    if (is_hop_by_hop(named, field)) continue;
    const auto name = field.name_string();
    bool replaced = false;
    for (const auto& [extra_name, value] : ctx.extra)
      if (iequals(extra_name, name)) replaced = true;
    if (!replaced) append_field(out, name, field.value());
  }
  for (const auto& [name, value] : ctx.extra) append_field(out, name, value);
  if (ctx.chunked) out.append("Transfer-Encoding: chunked\r\n");
  if (ctx.close)
    out.append("Connection: close\r\n");
  else if (ctx.keep_alive_http10)
    out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
}

void append_json_escaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
}

std::string error_json(std::string_view error, std::string_view message,
                       std::string_view extra_fields) {
  std::string out = R"({"error":")";
  append_json_escaped(out, error);
  out += R"(","message":")";
  append_json_escaped(out, message);
  out += '"';
  out.append(extra_fields);
  out += '}';
  return out;
}

}  // namespace gw::proxy
