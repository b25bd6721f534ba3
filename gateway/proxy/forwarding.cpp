// Header rewriting between client and upstream (see forwarding.hpp).
#include "proxy/forwarding.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <cstdio>
#include <vector>

namespace gw::proxy {

namespace http = boost::beast::http;

void remove_hop_by_hop(http::fields& fields) {
  // Collect the names listed in Connection before erasing it; every Connection line counts.
  std::vector<std::string> named;
  auto [first, last] = fields.equal_range(http::field::connection);
  for (auto it = first; it != last; ++it)
    for (auto token : http::token_list{it->value()}) named.emplace_back(token);
  for (const auto& name : named) fields.erase(name);
  fields.erase(http::field::connection);
  fields.erase(http::field::keep_alive);
  fields.erase(http::field::proxy_connection);
  fields.erase(http::field::te);
  fields.erase(http::field::trailer);
  fields.erase(http::field::transfer_encoding);
  fields.erase(http::field::upgrade);
}

void prepare_upstream_head(http::request_header<>& head, const forward_context& ctx) {
  remove_hop_by_hop(head);
  head.erase(http::field::expect);
  head.target(ctx.target);
  head.version(11);

  // All X-Forwarded-For lines form one list; the peer goes on its end.
  std::string forwarded_for;
  auto [first, last] = head.equal_range("X-Forwarded-For");
  for (auto it = first; it != last; ++it) {
    if (!forwarded_for.empty()) forwarded_for += ", ";
    forwarded_for.append(it->value());
  }
  if (!forwarded_for.empty()) forwarded_for += ", ";
  forwarded_for.append(ctx.peer_ip);
  head.set("X-Forwarded-For", forwarded_for);

  head.set("X-Forwarded-Proto", "http");
  if (auto host = head.find(http::field::host); host != head.end())
    head.set("X-Forwarded-Host", host->value());
  if (head.find("X-Request-Id") == head.end()) head.set("X-Request-Id", ctx.request_id);
}

void prepare_downstream_head(http::response_header<>& head) {
  remove_hop_by_hop(head);
  head.version(11);
}

namespace {

void append_fields(const http::fields& fields, std::string& out) {
  for (const auto& field : fields) {
    out.append(field.name_string());
    out += ": ";
    out.append(field.value());
    out += "\r\n";
  }
  out += "\r\n";
}

}  // namespace

void serialize_head(const http::request_header<>& head, std::string& out) {
  out.append(head.method_string());
  out += ' ';
  out.append(head.target());
  out += head.version() == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n";
  append_fields(head, out);
}

void serialize_head(const http::response_header<>& head, std::string& out) {
  out += head.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(head.result_int());
  out += ' ';
  const auto reason = head.reason();
  out.append(reason.empty() ? http::obsolete_reason(head.result()) : reason);
  out += "\r\n";
  append_fields(head, out);
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
