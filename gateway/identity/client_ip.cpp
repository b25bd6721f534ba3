// Client address resolution behind trusted proxies (see client_ip.hpp).
#include "identity/client_ip.hpp"

#include <stdexcept>

namespace gw::identity {

namespace ip = boost::asio::ip;

ip::address normalize(const ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return ip::make_address_v4(ip::v4_mapped, address.to_v6());
  return address;
}

std::optional<ip::address> parse_address(std::string_view text) {
  if (text.size() > 2 && text.front() == '[' && text.back() == ']')
    text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() > 64) return std::nullopt;
  boost::system::error_code ec;
  const auto address = ip::make_address(std::string{text}, ec);
  if (ec) return std::nullopt;
  return normalize(address);
}

cidr_set::cidr_set(const std::vector<std::string>& cidrs) {
  for (const auto& text : cidrs) {
    boost::system::error_code ec;
    if (text.find('/') == std::string::npos) {
      const auto address = parse_address(text);
      if (!address) throw std::invalid_argument("not an address: " + text);
      if (address->is_v4())
        v4_.emplace_back(address->to_v4(), 32);
      else
        v6_.emplace_back(address->to_v6(), 128);
      continue;
    }
    if (text.find(':') == std::string::npos) {
      const auto net = ip::make_network_v4(text, ec);
      if (ec) throw std::invalid_argument("not a CIDR: " + text);
      v4_.push_back(net.canonical());
    } else {
      const auto net = ip::make_network_v6(text, ec);
      if (ec) throw std::invalid_argument("not a CIDR: " + text);
      v6_.push_back(net.canonical());
    }
  }
}

bool cidr_set::contains(const ip::address& address) const {
  if (address.is_v4()) {
    const auto bits = address.to_v4().to_uint();
    for (const auto& net : v4_) {
      const auto prefix = net.prefix_length();
      const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
      if ((bits & mask) == (net.address().to_uint() & mask)) return true;
    }
    return false;
  }
  const auto bytes = address.to_v6().to_bytes();
  for (const auto& net : v6_) {
    const auto base = net.address().to_bytes();
    int remaining = net.prefix_length();
    bool match = true;
    for (std::size_t i = 0; i < bytes.size() && remaining > 0 && match; ++i, remaining -= 8) {
      const unsigned mask = remaining >= 8 ? 0xffu : (0xffu << (8 - remaining)) & 0xffu;
      match = (bytes[i] & mask) == (base[i] & mask);
    }
    if (match) return true;
  }
  return false;
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

ip::address client_ip_resolver::resolve(const ip::address& peer,
                                        std::span<const std::string_view> forwarded_lines) const {
  ip::address client = normalize(peer);
  if (!trusted_.contains(client)) return client;
  // Right to left over the lines, and over the entries within each line.
  for (auto line = forwarded_lines.rbegin(); line != forwarded_lines.rend(); ++line) {
    std::string_view rest = trim(*line);
    if (rest.empty()) continue;  // an empty header line carries no entries
    while (true) {
      const auto comma = rest.rfind(',');
      const auto entry = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
      const auto address = parse_address(entry);
      if (!address) return client;
      client = *address;
      if (!trusted_.contains(client)) return client;
      if (comma == std::string_view::npos) break;
      rest = rest.substr(0, comma);
    }
  }
  return client;
}

}  // namespace gw::identity
