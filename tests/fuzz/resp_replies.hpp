// Turns fuzz bytes into the redisReply trees the gateway's callbacks receive, with hiredis' own
// RESP reader (the one its async context uses), so that a target fuzzes the reader too.
#pragma once

#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace gw::fuzz {

// hiredis 0.14 allocates an array's element pointers as soon as it reads "*<count>", whatever
// the count ("*300000000" asks for 2.4 GB): it trusts the server, as the gateway trusts its Redis.
// Inputs announcing arrays larger than anything the gateway asks for are left out, so that the
// targets look for faults in what reads the replies rather than report that allocation.
inline bool announces_huge_array(std::string_view bytes) {
  constexpr std::uint64_t limit = 1 << 16;
  for (std::size_t at = bytes.find('*'); at != std::string_view::npos;
       at = bytes.find('*', at + 1)) {
    std::uint64_t count = 0;
    for (std::size_t i = at + 1; i < bytes.size() && bytes[i] >= '0' && bytes[i] <= '9'; ++i)
      if ((count = count * 10 + static_cast<unsigned>(bytes[i] - '0')) > limit) return true;
  }
  return false;
}

// Calls f(const redisReply*) for each complete reply in `bytes`, stopping at a protocol error
// (where the connection would be dropped) or at the first incomplete reply.
template <class F>
void for_each_reply(const void* bytes, std::size_t size, F&& f) {
  if (announces_huge_array({static_cast<const char*>(bytes), size})) return;
  std::unique_ptr<redisReader, void (*)(redisReader*)> reader{redisReaderCreate(),
                                                              &redisReaderFree};
  if (!reader) return;
  if (redisReaderFeed(reader.get(), static_cast<const char*>(bytes), size) != REDIS_OK) return;
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK || raw == nullptr) return;
    std::unique_ptr<redisReply, void (*)(void*)> reply{static_cast<redisReply*>(raw),
                                                       &freeReplyObject};
    f(static_cast<const redisReply*>(reply.get()));
  }
}

}  // namespace gw::fuzz
