// Parsers for durations, sizes and endpoints. Strict on purpose: a value that is almost right
// ("10" for 10s, "16KB") is rejected rather than guessed.
#include "config/units.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

namespace gw::config {
namespace {

struct unit_factor {
  std::string_view unit;
  std::uint64_t factor;
};

constexpr unit_factor duration_units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};

// Binary units only: "KB" is ambiguous (1000 or 1024), so it is rejected rather than guessed.
constexpr unit_factor size_units[] = {
    {"", 1}, {"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}};

template <std::size_t n>
std::optional<std::uint64_t> factor_of(const unit_factor (&table)[n], std::string_view unit) {
  for (const unit_factor& entry : table)
    if (entry.unit == unit) return entry.factor;
  return std::nullopt;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// A run of decimal digits only: no sign, no spaces, no hex (from_chars alone would allow '-').
std::optional<std::uint64_t> parse_digits(std::string_view text) {
  if (text.empty()) return std::nullopt;
  for (char c : text)
    if (!is_digit(c)) return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// Splits "250ms" into "250" and "ms".
std::pair<std::string_view, std::string_view> split_number(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && is_digit(text[i])) ++i;
  return {text.substr(0, i), text.substr(i)};
}

bool is_ipv4(const std::string& host) {
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr addr{};
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
bool is_dns_name(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = host.find('.', start);
    std::string_view label = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool looks_numeric(std::string_view host) {
  for (char c : host)
    if (!is_digit(c) && c != '.') return false;
  return true;
}

}  // namespace

std::optional<duration> parse_duration(std::string_view text) {
  auto [number, unit] = split_number(text);
  auto count = parse_digits(number);
  if (!count) return std::nullopt;

  auto ms_per_unit = factor_of(duration_units, unit);
  if (!ms_per_unit) return std::nullopt;

  // Capped so that the value still fits in nanoseconds: timers (steady_clock) convert to them.
  constexpr std::uint64_t max_ms =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / 1'000'000;
  if (*count > max_ms / *ms_per_unit) return std::nullopt;
  return duration{static_cast<duration::rep>(*count * *ms_per_unit)};
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  auto [number, unit] = split_number(text);
  auto count = parse_digits(number);
  if (!count) return std::nullopt;

  auto multiplier = factor_of(size_units, unit);
  if (!multiplier) return std::nullopt;

  if (*count > std::numeric_limits<std::uint64_t>::max() / *multiplier) return std::nullopt;
  return *count * *multiplier;
}

std::optional<endpoint> parse_endpoint(std::string_view text) {
  std::string_view host;
  std::string_view port_text;
  bool bracketed = false;

  if (!text.empty() && text.front() == '[') {
    std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    bracketed = true;
  } else {
    std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    // An unbracketed IPv6 literal would be ambiguous ("::1:80"); require the brackets.
    if (host.find(':') != std::string_view::npos) return std::nullopt;
  }

  if (port_text.size() > 5) return std::nullopt;  // also rules out overflow before the range test
  auto port = parse_digits(port_text);
  if (!port || *port < 1 || *port > 65535) return std::nullopt;

  std::string host_string{host};
  if (bracketed) {
    if (!is_ipv6(host_string)) return std::nullopt;
  } else if (looks_numeric(host)) {
    // "300.1.1.1" or "10.1" is a mistyped address, never a name.
    if (!is_ipv4(host_string)) return std::nullopt;
  } else if (!is_dns_name(host)) {
    return std::nullopt;
  }
  return endpoint{std::move(host_string), static_cast<std::uint16_t>(*port)};
}

}  // namespace gw::config
