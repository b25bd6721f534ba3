// What both ends of a test connection agree on: the body pattern, its FNV-1a 64 hash and
// header lookup by name, so that a gigabyte body can be checked without being held.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gw::test {

using header_list = std::vector<std::pair<std::string, std::string>>;

// Largest piece pattern_piece() hands out; also the size of every streamed write.
inline constexpr std::size_t pattern_piece_bytes = 64 * 1024;

// Bodies are this long at most in received_request::body and stream_result::body_text.
inline constexpr std::size_t captured_body_bytes = 64 * 1024;

// Incremental FNV-1a 64 (offset 14695981039346656037, prime 1099511628211).
class fnv1a64 {
 public:
  void update(const void* data, std::size_t size) noexcept;
  std::uint64_t value() const noexcept { return hash_; }
  // 16 lowercase hex digits, leading zeros kept.
  std::string hex() const;

 private:
  std::uint64_t hash_ = 14695981039346656037ull;
};

// Bytes [offset, offset + size) of the body pattern (byte i is 'a' + i % 26); size must be at
// most pattern_piece_bytes. The view points into static storage and stays valid.
std::string_view pattern_piece(std::uint64_t offset, std::size_t size);

// The hash a body of `bytes` pattern bytes must have.
std::string fnv1a64_hex_of_pattern(std::uint64_t bytes);

// Case-insensitive lookup; repeated fields are joined with ", " as HTTP allows; "" if absent.
std::string header_value(const header_list& headers, std::string_view name);
bool header_present(const header_list& headers, std::string_view name);

}  // namespace gw::test
