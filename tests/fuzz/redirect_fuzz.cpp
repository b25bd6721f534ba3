// Feeds bytes as the message of a Redis error reply to parse_redirect (MOVED/ASK). Checks that a
// redirection names a slot and a port in range, and that writing it back as Redis would
// ("MOVED <slot> <host>:<port>") parses to the same redirection.
#include "store/redis/cluster_slots.hpp"

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  using namespace gw::store::redis;
  const std::string_view message{reinterpret_cast<const char*>(bytes), size};
  const auto r = parse_redirect(message);
  if (!r) return 0;
  FUZZ_CHECK(message.starts_with(r->moved ? "MOVED " : "ASK "));
  FUZZ_CHECK(r->slot < cluster_slots);
  FUZZ_CHECK(r->port >= 1);
  const auto again = parse_redirect(std::string{r->moved ? "MOVED " : "ASK "} +
                                    std::to_string(r->slot) + " " + r->host + ":" +
                                    std::to_string(r->port));
  FUZZ_CHECK(again && again->moved == r->moved && again->slot == r->slot &&
             again->host == r->host && again->port == r->port);
  return 0;
}
