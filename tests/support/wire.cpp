// The body pattern, FNV-1a 64 and header lookup shared by the test upstream and the test client.
#include "support/wire.hpp"

#include <strings.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <stdexcept>

namespace gw::test {

void fnv1a64::update(const void* data, std::size_t size) noexcept {
  auto bytes = static_cast<const unsigned char*>(data);
  std::uint64_t hash = hash_;
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 1099511628211ull;
  }
  hash_ = hash;
}

std::string fnv1a64::hex() const {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash_));
  return text;
}

std::string_view pattern_piece(std::uint64_t offset, std::size_t size) {
  // One period of slack lets any offset start inside the buffer without copying.
  static const auto pattern = [] {
    std::array<char, pattern_piece_bytes + 26> bytes{};
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>('a' + i % 26);
    return bytes;
  }();
  if (size > pattern_piece_bytes)
    throw std::invalid_argument("pattern_piece: size over pattern_piece_bytes");
  return {pattern.data() + offset % 26, size};
}

std::string fnv1a64_hex_of_pattern(std::uint64_t bytes) {
  fnv1a64 hash;
  for (std::uint64_t offset = 0; offset < bytes;) {
    auto piece = pattern_piece(offset, static_cast<std::size_t>(std::min<std::uint64_t>(
                                           bytes - offset, pattern_piece_bytes)));
    hash.update(piece.data(), piece.size());
    offset += piece.size();
  }
  return hash.hex();
}

namespace {

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::string header_value(const header_list& headers, std::string_view name) {
  std::string joined;
  bool found = false;
  for (const auto& [field, value] : headers) {
    if (!same_name(field, name)) continue;
    if (found) joined += ", ";
    joined += value;
    found = true;
  }
  return joined;
}

bool header_present(const header_list& headers, std::string_view name) {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& field) { return same_name(field.first, name); });
}

}  // namespace gw::test
