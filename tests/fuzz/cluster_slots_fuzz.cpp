// Feeds bytes as RESP, parsed by hiredis' reader, to parse_cluster_slots, as a CLUSTER SLOTS
// reply from the node "10.0.0.1"; each bulk string in the reply also goes to key_slot. Checks
// that every range is a valid slot range with a port and a host (the asked node's when the reply
// gave none), and that key_slot hashes a key's hash tag: key_slot("{" + k + "}x") == key_slot(k)
// for any k that is not empty and has no '}'.
#include "store/redis/cluster_slots.hpp"

#include "fuzz_check.hpp"
#include "resp_replies.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using namespace gw::store::redis;

void check_keys(const redisReply* r) {
  if (r->type == REDIS_REPLY_STRING) {
    const std::string_view key{r->str, r->len};
    FUZZ_CHECK(key_slot(key) < cluster_slots);
    if (!key.empty() && key.find('}') == std::string_view::npos)
      FUZZ_CHECK(key_slot("{" + std::string{key} + "}x") == key_slot(key));
  }
  if (r->type == REDIS_REPLY_ARRAY)
    for (std::size_t i = 0; i < r->elements; ++i) check_keys(r->element[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  gw::fuzz::for_each_reply(bytes, size, [](const redisReply* r) {
    check_keys(r);
    const auto ranges = parse_cluster_slots(r, "10.0.0.1");
    if (!ranges) return;
    FUZZ_CHECK(ranges->size() == r->elements);
    for (const auto& range : *ranges) {
      FUZZ_CHECK(range.first <= range.last && range.last < cluster_slots);
      FUZZ_CHECK(range.port >= 1);
      FUZZ_CHECK(!range.host.empty());
    }
  });
  return 0;
}
