// The client's side of a session: a timed TCP socket, with TLS on it when server.tls is set.
// The session reads and writes through this one type whatever the connection is, so the request
// path stays one coroutine; each read or write goes to the TLS stream or the socket at run time.
#pragma once

#include "proxy/timed_socket.hpp"
#include "tls/server_contexts.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <memory>
#include <optional>

namespace gw::proxy {

class client_stream {
 public:
  using executor_type = timed_socket::executor_type;

  explicit client_stream(boost::asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}

  // TLS from the first byte on, with `contexts` (the snapshot's when the connection came).
  void use_tls(std::shared_ptr<const tls::server_contexts> contexts);
  bool is_tls() const { return tls_.has_value(); }
  // The server handshake, within the socket's deadline. Nothing for a plain connection.
  boost::asio::awaitable<boost::system::error_code> handshake();
  // What the handshake found of the client's certificate (empty: none, or not verified).
  const tls::client_certificate& client_certificate() const { return client_certificate_; }
  // The TLS close_notify, within the socket's deadline; nothing for a plain connection.
  boost::asio::awaitable<void> shutdown_tls();

  executor_type get_executor() { return socket_.get_executor(); }
  timed_socket& transport() { return socket_; }
  boost::asio::ip::tcp::socket& socket() { return socket_.socket(); }
  void cancel() { socket_.cancel(); }
  void expires_after(timed_socket::clock::duration d) { socket_.expires_after(d); }
  void expires_at(timed_socket::clock::time_point t) { socket_.expires_at(t); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_)
            tls_->async_read_some(b, std::move(handler));
          else
            socket_.async_read_some(b, std::move(handler));
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls_)
            tls_->async_write_some(b, std::move(handler));
          else
            socket_.async_write_some(b, std::move(handler));
        },
        token, buffers);
  }

 private:
  timed_socket socket_;
  std::shared_ptr<const tls::server_contexts> contexts_;  // outlive the SSL that uses them
  std::optional<boost::asio::ssl::stream<timed_socket&>> tls_;
  tls::client_certificate client_certificate_;
};

}  // namespace gw::proxy
