// The admin listener: /healthz, /readyz (and /metrics, later). It runs on the control thread,
// away from the workers, so a slow scrape never delays a proxied request.
#pragma once

#include "config/config.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <optional>
#include <string>

namespace gw::admin {

class admin_server {
 public:
  // `ready` answers /readyz: true when the gateway should receive traffic; `metrics` renders
  // /metrics.
  admin_server(boost::asio::io_context& io, std::function<bool()> ready,
               std::function<std::string()> metrics);

  // Throws boost::system::system_error when the address cannot be bound.
  void listen(const config::endpoint& address);
  void close();

 private:
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> serve(boost::asio::ip::tcp::socket socket);

  boost::asio::io_context& io_;
  std::function<bool()> ready_;
  std::function<std::string()> metrics_;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
};

}  // namespace gw::admin
