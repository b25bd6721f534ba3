// Request framing checks and path normalisation (see request_rules.hpp).
#include "proxy/request_rules.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <algorithm>
#include <cctype>
#include <vector>

namespace gw::proxy {

namespace beast = boost::beast;
namespace http = boost::beast::http;

head_scanner::state head_scanner::scan(std::string_view data) {
  for (std::size_t i = resume_; i < data.size(); ++i) {
    const char c = data[i];
    if (c == '\0') return state::malformed;
    if (c == '\r') {
      if (i + 1 == data.size()) { resume_ = i; return state::need_more; }
      if (data[i + 1] != '\n') return state::malformed;
      continue;
    }
    if (c != '\n') continue;
    if (i == 0 || data[i - 1] != '\r') return state::malformed;
    if (i >= 3 && data.substr(i - 3, 4) == "\r\n\r\n") {
      head_length_ = i + 1;
      return state::complete;
    }
    // The byte after a line end decides between a new field, the end of the head and obs-fold.
    if (i + 1 == data.size()) { resume_ = i; return state::need_more; }
    if (data[i + 1] == ' ' || data[i + 1] == '\t') return state::malformed;
  }
  resume_ = data.size();
  return state::need_more;
}

namespace {


bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

bool is_unreserved(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

bool is_pchar_or_slash_or_query(char c) {
  if (is_unreserved(c)) return true;
  switch (c) {
    case '!': case '$': case '&': case '\'': case '(': case ')': case '*': case '+': case ',':
    case ';': case '=': case ':': case '@': case '/': case '?': case '%':
      return true;
    default:
      return false;
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
}

}  // namespace

bool valid_origin_target(std::string_view target) {
  if (target.empty() || target.front() != '/') return false;
  for (std::size_t i = 0; i < target.size(); ++i) {
    const char c = target[i];
    if (!is_pchar_or_slash_or_query(c)) return false;
    if (c == '%' && (i + 2 >= target.size() || !is_hex(target[i + 1]) || !is_hex(target[i + 2])))
      return false;
  }
  return true;
}

std::optional<absolute_target> split_absolute_form(std::string_view target) {
  std::size_t scheme = 0;
  if (target.size() >= 7 && beast::iequals(target.substr(0, 7), "http://"))
    scheme = 7;
  else if (target.size() >= 8 && beast::iequals(target.substr(0, 8), "https://"))
    scheme = 8;
  else
    return std::nullopt;
  const auto rest = target.substr(scheme);
  const auto end = std::min(rest.find_first_of("/?#"), rest.size());
  const auto authority = rest.substr(0, end);
  if (authority.empty()) return std::nullopt;
  // host (reg-name, IPv4, or an IPv6 literal in brackets) and an optional port: no userinfo,
  // no escapes, nothing a Host header could not carry.
  for (const char c : authority) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
                    c == '_' || c == '~' || c == ':' || c == '[' || c == ']';
    if (!ok) return std::nullopt;
  }
  absolute_target out{authority, std::string{rest.substr(end)}};
  if (out.origin.empty() || out.origin.front() == '?') out.origin.insert(0, "/");
  if (!valid_origin_target(out.origin)) return std::nullopt;
  return out;
}

std::optional<std::string_view> framing_problem(const request_head& head) {
  const auto target = head.target();
  if (target == "*") {
    if (head.method() != http::verb::options) return "asterisk target outside OPTIONS";
  } else if (!valid_origin_target(target) && !split_absolute_form(target)) {
    return "target is neither origin-form nor absolute-form";
  }

  const auto hosts = head.count(http::field::host);
  if (hosts > 1) return "more than one Host header";
  if (hosts == 0 && head.version() >= 11) return "missing Host header";

  if (head.count(http::field::transfer_encoding) > 0) {
    if (head.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
    // Beast has already joined several lines or refused them; only the last coding may be
    // chunked, and it must be there, or the body length would be ambiguous.
    const http::token_list codings{head[http::field::transfer_encoding]};
    std::string_view last;
    std::size_t chunked_count = 0;
    for (auto coding : codings) {
      last = coding;
      if (beast::iequals(coding, "chunked")) ++chunked_count;
    }
    if (!beast::iequals(last, "chunked") || chunked_count != 1)
      return "Transfer-Encoding other than a final chunked";
    if (head.count(http::field::content_length) > 0)
      return "both Content-Length and Transfer-Encoding";
  }
  return std::nullopt;
}

std::string normalize_path(std::string_view path) {
  // Decode unreserved escapes first: "%2E%2E" must count as ".." when dot segments go.
  std::string decoded;
  decoded.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 2 < path.size() && is_hex(path[i + 1]) && is_hex(path[i + 2])) {
      const char c = static_cast<char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2]));
      if (is_unreserved(c)) {
        decoded += c;
      } else {
        decoded += '%';
        decoded += static_cast<char>(std::toupper(static_cast<unsigned char>(path[i + 1])));
        decoded += static_cast<char>(std::toupper(static_cast<unsigned char>(path[i + 2])));
      }
      i += 2;
    } else {
      decoded += path[i];
    }
  }
  if (decoded.find('.') == std::string::npos) return decoded;

  // remove_dot_segments (RFC 3986 5.2.4); a final "." or ".." leaves a trailing slash.
  std::vector<std::string_view> kept;
  std::string_view rest = std::string_view{decoded}.substr(1);  // decoded starts with '/'
  for (;;) {
    const auto slash = rest.find('/');
    const bool last = slash == std::string_view::npos;
    const auto segment = rest.substr(0, last ? rest.size() : slash);
    if (segment == "..") {
      if (!kept.empty()) kept.pop_back();
      if (last) kept.emplace_back();
    } else if (segment == ".") {
      if (last) kept.emplace_back();
    } else {
      kept.push_back(segment);
    }
    if (last) break;
    rest.remove_prefix(slash + 1);
  }
  std::string out;
  out.reserve(decoded.size());
  for (auto segment : kept) {
    out += '/';
    out += segment;
  }
  if (out.empty()) out.push_back('/');
  return out;
}

std::string host_without_port(std::string_view host) {
  std::string_view name = host;
  if (name.starts_with('[')) {
    auto close = name.find(']');
    name = close == std::string_view::npos ? name : name.substr(0, close + 1);
  } else if (auto colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  std::string out{name};
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // ASCII only, no locale
  return out;
}

}  // namespace gw::proxy
