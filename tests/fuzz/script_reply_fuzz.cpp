// Feeds bytes as RESP, parsed by hiredis' reader, to what redis_store::on_reply does with a
// limit-check call's reply: an error reply goes to parse_redirect, a bulk string to read_decision
// (32 bytes a check) and read_lease (56). Checks that a field read is one the reply holds (no
// read past the end: a check beyond the reply is refused), that an accepted decision has no
// negative field, and that it encodes back to the same bytes.
#include "store/redis/cluster_slots.hpp"
#include "store/redis/scripts.hpp"

#include "fuzz_check.hpp"
#include "resp_replies.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using namespace gw::store::redis;

void append_field(std::string& out, std::int64_t v) {
  for (int b = 7; b >= 0; --b) out += static_cast<char>(static_cast<std::uint64_t>(v) >> (8 * b));
}

void check_decisions(std::string_view reply) {
  const auto n = reply.size() / reply_bytes_per_check;
  for (std::size_t i = 0; i <= n; ++i) {
    gw::algorithms::decision d;
    const bool ok = read_decision(reply, i, d);
    if (i == n) FUZZ_CHECK(!ok);
    if (!ok) continue;
    FUZZ_CHECK(d.reset >= 0 && d.retry_after >= 0);
    std::string again;
    append_field(again, d.admitted ? 1 : 0);
    append_field(again, static_cast<std::int64_t>(d.remaining));
    append_field(again, d.reset);
    append_field(again, d.retry_after);
    FUZZ_CHECK(again == reply.substr(i * reply_bytes_per_check, reply_bytes_per_check));
  }
}

void check_leases(std::string_view reply) {
  const auto n = reply.size() / lease_reply_bytes_per_check;
  for (std::size_t i = 0; i <= n; ++i) {
    gw::algorithms::decision d;
    gw::store::lease_grant lease;
    const bool ok = read_lease(reply, i, d, lease);
    if (i == n) FUZZ_CHECK(!ok);
    if (!ok) continue;
    FUZZ_CHECK(d.reset >= 0 && d.retry_after >= 0 && lease.life >= 0 && lease.mark >= 0);
    std::string again;
    append_field(again, d.admitted ? 1 : 0);
    append_field(again, static_cast<std::int64_t>(d.remaining));
    append_field(again, d.reset);
    append_field(again, d.retry_after);
    append_field(again, static_cast<std::int64_t>(lease.granted));
    append_field(again, lease.life);
    append_field(again, lease.mark);
    FUZZ_CHECK(again ==
               reply.substr(i * lease_reply_bytes_per_check, lease_reply_bytes_per_check));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  gw::fuzz::for_each_reply(bytes, size, [](const redisReply* r) {
    if (r->type == REDIS_REPLY_ERROR) {
      (void)parse_redirect({r->str, r->len});
      return;
    }
    if (r->type != REDIS_REPLY_STRING) return;
    // (on_reply takes a reply only when its length is the checks' exact size; these read any.)
    const std::string_view reply{r->str, r->len};
    check_decisions(reply);
    check_leases(reply);
  });
  return 0;
}
