// A timed TCP socket with TLS on it when its side asks for it: the client's side of a session
// when server.tls is set, an upstream connection when its upstream has tls. The session reads
// and writes through this one type whatever the connection is, so the request path stays one
// coroutine; each read or write goes to the TLS stream or the socket at run time.
#pragma once

#include "proxy/timed_socket.hpp"
#include "tls/server_contexts.hpp"
#include "tls/upstream_context.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/stream.hpp>

#include <memory>
#include <optional>

namespace gw::proxy {

class tls_socket {
 public:
  using executor_type = timed_socket::executor_type;

  explicit tls_socket(boost::asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  explicit tls_socket(boost::asio::io_context& io) : socket_(io) {}
  ~tls_socket();
  tls_socket(const tls_socket&) = delete;
  tls_socket& operator=(const tls_socket&) = delete;

  // The server's side, from the first byte on, with `contexts` (the snapshot's when the
  // connection came).
  void use_server_tls(std::shared_ptr<const tls::server_contexts> contexts);
  // The client's side, to a server called `host`, after the TCP connect.
  void use_client_tls(std::shared_ptr<const tls::upstream_context> context,
                      const std::string& host);
  bool is_tls() const { return tls_.has_value(); }
  // What this side's TLS was made with (null for plain): a pooled connection is reused only by
  // a request whose upstream has the same.
  const void* tls_identity() const { return identity_.get(); }
  // The handshake of the side chosen, within the socket's deadline. Nothing when plain.
  boost::asio::awaitable<boost::system::error_code> handshake();
  // The server's side: what the handshake found of the client's certificate (empty: none, or
  // not verified).
  const tls::client_certificate& client_certificate() const { return client_certificate_; }
  // Bytes the TLS layer holds that no read has asked for yet (a record after the response, a
  // close_notify): a connection with such is not pooled. Always false when plain.
  bool has_buffered_input() const;
  // The TLS close_notify, within the socket's deadline; nothing when plain.
  boost::asio::awaitable<void> shutdown_tls();

  executor_type get_executor() { return socket_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return socket_.socket(); }
  // The TCP stream under the TLS layer, deadlines included: for the one plain answer a client
  // that spoke HTTP to the TLS port gets.
  timed_socket& transport() { return socket_; }
  void cancel() { socket_.cancel(); }
  void expires_after(timed_socket::clock::duration d) { socket_.expires_after(d); }
  void expires_at(timed_socket::clock::time_point t) { socket_.expires_at(t); }

  template <class Token>
  auto async_connect(const boost::asio::ip::tcp::endpoint& endpoint, Token&& token) {
    return socket_.async_connect(endpoint, std::forward<Token>(token));
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls_ && server_) {
            // A client that closes TCP without close_notify (a browser tab, curl ^C) has ended
            // the connection as surely as a plain one that closes: the same eof for the session.
            // Not so an upstream: a response cut that way may be truncated, and stays an error.
            tls_->async_read_some(
                b, [h = std::move(handler)](boost::system::error_code ec, std::size_t n) mutable {
                  if (ec == boost::asio::ssl::error::stream_truncated) ec = boost::asio::error::eof;
                  std::move(h)(ec, n);
                });
          } else if (tls_) {
            tls_->async_read_some(b, std::move(handler));
          } else {
            socket_.async_read_some(b, std::move(handler));
          }
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
  std::shared_ptr<const void> identity_;  // the contexts: outlive the SSL that uses them
  const tls::server_contexts* server_ = nullptr;  // set for the server's side
  std::optional<boost::asio::ssl::stream<timed_socket&>> tls_;
  bool handshake_done_ = false;
  tls::client_certificate client_certificate_;
};

}  // namespace gw::proxy
