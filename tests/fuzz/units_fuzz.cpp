// Feeds bytes to the scalar parsers of the YAML: parse_duration, parse_size, parse_endpoint.
// Checks what each value promises: a duration fits in nanoseconds; a size that parses as a plain
// number of bytes reads back from its decimal text; an endpoint has a port and a host, and its
// to_string() parses back to the same endpoint.
#include "config/units.hpp"

#include "fuzz_check.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view text{reinterpret_cast<const char*>(bytes), size};
  using namespace gw::config;

  if (const auto d = parse_duration(text)) {
    FUZZ_CHECK(d->count() >= 0);
    FUZZ_CHECK(d->count() <= std::numeric_limits<std::int64_t>::max() / 1'000'000);
    (void)std::chrono::duration_cast<std::chrono::nanoseconds>(*d);
    FUZZ_CHECK(parse_duration(std::to_string(d->count()) + "ms") == d);
  }
  if (const auto n = parse_size(text)) FUZZ_CHECK(parse_size(std::to_string(*n)) == n);
  if (const auto e = parse_endpoint(text)) {
    FUZZ_CHECK(e->port >= 1);
    FUZZ_CHECK(!e->host.empty());
    FUZZ_CHECK(parse_endpoint(e->to_string()) == e);
  }
  return 0;
}
