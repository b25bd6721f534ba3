// Feeds bytes as the lines of an X-Forwarded-For header (split at '\n') to client_ip_resolver,
// from a trusted and from an untrusted peer, and each line to parse_address. Checks that an
// untrusted peer is always the client, that the client is the peer or an address some line
// names, and that it is never an IPv4-mapped IPv6 address.
#include "identity/client_ip.hpp"

#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace ip = boost::asio::ip;

bool named_in(const ip::address& a, const std::vector<std::string_view>& lines) {
  for (auto line : lines) {
    for (std::size_t start = 0; start <= line.size();) {
      auto end = line.find(',', start);
      if (end == std::string_view::npos) end = line.size();
      auto entry = line.substr(start, end - start);
      while (!entry.empty() && (entry.front() == ' ' || entry.front() == '\t'))
        entry.remove_prefix(1);
      while (!entry.empty() && (entry.back() == ' ' || entry.back() == '\t'))
        entry.remove_suffix(1);
      if (auto parsed = gw::identity::parse_address(entry); parsed && *parsed == a) return true;
      start = end + 1;
    }
  }
  return false;
}

bool v4_mapped(const ip::address& a) { return a.is_v6() && a.to_v6().is_v4_mapped(); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  static const gw::identity::client_ip_resolver resolver{gw::identity::cidr_set{
      {"127.0.0.1/32", "10.0.0.0/8", "192.168.0.0/16", "::1/128", "2001:db8::/32", "fd00::/8"}}};

  const std::string_view text{reinterpret_cast<const char*>(bytes), size};
  std::vector<std::string_view> lines;
  for (std::size_t start = 0; start <= text.size();) {
    auto end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  for (auto line : lines)
    if (auto a = gw::identity::parse_address(line)) FUZZ_CHECK(!v4_mapped(*a));

  const auto untrusted_peer = ip::make_address("198.51.100.9");
  FUZZ_CHECK(resolver.resolve(untrusted_peer, lines) == untrusted_peer);

  for (const auto& peer : {ip::make_address("10.1.2.3"), ip::make_address("::ffff:127.0.0.1")}) {
    const auto client = resolver.resolve(peer, lines);
    FUZZ_CHECK(!v4_mapped(client));
    FUZZ_CHECK(client == gw::identity::normalize(peer) || named_in(client, lines));
  }
  return 0;
}
