// Who the client is, by address (SPEC 4.3): the TCP peer, or, when the peer is a trusted proxy,
// the rightmost untrusted address of the forwarded header.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gw::identity {

// IPv4-mapped IPv6 addresses (::ffff:1.2.3.4) become plain IPv4 ones.
boost::asio::ip::address normalize(const boost::asio::ip::address& address);

// Parses "1.2.3.4", "2001:db8::1", "[2001:db8::1]"; nullopt for anything else.
std::optional<boost::asio::ip::address> parse_address(std::string_view text);

class cidr_set {
 public:
  cidr_set() = default;
  // CIDRs as validated by the config loader ("10.0.0.0/8", "::1/128", or a bare address).
  // Throws std::invalid_argument for anything else.
  explicit cidr_set(const std::vector<std::string>& cidrs);

  bool contains(const boost::asio::ip::address& address) const;
  bool empty() const { return v4_.empty() && v6_.empty(); }

 private:
  std::vector<boost::asio::ip::network_v4> v4_;
  std::vector<boost::asio::ip::network_v6> v6_;
};

class client_ip_resolver {
 public:
  explicit client_ip_resolver(cidr_set trusted) : trusted_(std::move(trusted)) {}

  // `forwarded_lines`: every line of the forwarded header, in order. Reading them as one comma
  // list right to left, the client is the first address that is not a trusted proxy; an entry
  // that is not an address stops the walk at the last address checked.
  boost::asio::ip::address resolve(const boost::asio::ip::address& peer,
                                   std::span<const std::string_view> forwarded_lines) const;

 private:
  cidr_set trusted_;
};

}  // namespace gw::identity
