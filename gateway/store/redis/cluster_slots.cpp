// Key slots, CLUSTER SLOTS replies and redirections (see cluster_slots.hpp).
#include "store/redis/cluster_slots.hpp"

#include <hiredis/hiredis.h>

#include <array>
#include <charconv>

namespace gw::store::redis {

namespace {

// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the one the cluster specification
// names, one table lookup per byte.
constexpr std::array<std::uint16_t, 256> crc16_table = [] {
  std::array<std::uint16_t, 256> table{};
  for (unsigned i = 0; i < 256; ++i) {
    std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
    for (int bit = 0; bit < 8; ++bit)
      crc = static_cast<std::uint16_t>(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    table[i] = crc;
  }
  return table;
}();

std::uint16_t crc16(std::string_view data) {
  std::uint16_t crc = 0;
  for (unsigned char c : data)
    crc = static_cast<std::uint16_t>((crc << 8) ^ crc16_table[((crc >> 8) ^ c) & 0xff]);
  return crc;
}

template <typename Int>
std::optional<Int> to_int(std::string_view text) {
  Int v{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

bool is_integer(const redisReply* r) { return r && r->type == REDIS_REPLY_INTEGER; }

}  // namespace

std::uint16_t key_slot(std::string_view key) {
  if (const auto open = key.find('{'); open != std::string_view::npos) {
    const auto close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1)
      key = key.substr(open + 1, close - open - 1);
  }
  return crc16(key) & (cluster_slots - 1);
}

std::optional<std::vector<slot_range>> parse_cluster_slots(const redisReply* reply,
                                                           std::string_view asked_host) {
  if (!reply || reply->type != REDIS_REPLY_ARRAY) return std::nullopt;
  std::vector<slot_range> ranges;
  for (std::size_t i = 0; i < reply->elements; ++i) {
    const redisReply* entry = reply->element[i];
    if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements < 3) return std::nullopt;
    const redisReply* first = entry->element[0];
    const redisReply* last = entry->element[1];
    const redisReply* master = entry->element[2];
    if (!is_integer(first) || !is_integer(last) || first->integer < 0 ||
        last->integer < first->integer || last->integer >= cluster_slots)
      return std::nullopt;
    if (!master || master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
        (master->element[0]->type != REDIS_REPLY_STRING &&
         master->element[0]->type != REDIS_REPLY_NIL) ||
        !is_integer(master->element[1]) || master->element[1]->integer <= 0 ||
        master->element[1]->integer > 65535)
      return std::nullopt;
    slot_range range;
    range.first = static_cast<std::uint16_t>(first->integer);
    range.last = static_cast<std::uint16_t>(last->integer);
    if (master->element[0]->type == REDIS_REPLY_STRING)
      range.host.assign(master->element[0]->str, master->element[0]->len);
    // Empty or NIL: the node's endpoint is the one the answer came from (Redis 7's
    // cluster-preferred-endpoint-type unknown-endpoint). "?" (no hostname known) stays as is.
    if (range.host.empty()) range.host = asked_host;
    range.port = static_cast<std::uint16_t>(master->element[1]->integer);
    ranges.push_back(std::move(range));
  }
  return ranges;
}

std::optional<redirect> parse_redirect(std::string_view error) {
  redirect r;
  if (error.starts_with("MOVED ")) {
    r.moved = true;
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const auto space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const auto slot = to_int<unsigned>(error.substr(0, space));
  const auto where = error.substr(space + 1);
  const auto colon = where.rfind(':');
  // An empty host ("MOVED 3999 :6381") means the node that sent the redirection.
  if (!slot || *slot >= cluster_slots || colon == std::string_view::npos) return std::nullopt;
  const auto port = to_int<unsigned>(where.substr(colon + 1));
  if (!port || *port == 0 || *port > 65535) return std::nullopt;
  r.slot = static_cast<std::uint16_t>(*slot);
  r.host = std::string{where.substr(0, colon)};
  r.port = static_cast<std::uint16_t>(*port);
  return r;
}

}  // namespace gw::store::redis
