// A timed socket, plain or TLS (see tls_socket.hpp).
#include "proxy/tls_socket.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/ssl.h>

#include <stdexcept>

namespace gw::proxy {

namespace asio = boost::asio;

tls_socket::~tls_socket() {
  // Freed without a close_notify both ways, OpenSSL would drop the session from the server's
  // cache (and mark it not resumable): every keep-alive connection a client or an idle timeout
  // ends is such a close. A session whose handshake completed stays resumable, as with nginx.
  if (tls_ && handshake_done_)
    SSL_set_shutdown(tls_->native_handle(), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
}

void tls_socket::use_server_tls(std::shared_ptr<const tls::server_contexts> contexts) {
  SSL* ssl = SSL_new(contexts->default_context());
  if (!ssl) throw std::runtime_error("cannot make a TLS session");
  server_ = contexts.get();
  identity_ = std::move(contexts);
  tls_.emplace(socket_, ssl);  // the stream owns `ssl` from here
}

void tls_socket::use_client_tls(std::shared_ptr<const tls::upstream_context> context,
                                const std::string& host) {
  SSL* ssl = context->new_session(host);
  identity_ = std::move(context);
  tls_.emplace(socket_, ssl);
}

asio::awaitable<boost::system::error_code> tls_socket::handshake() {
  if (!tls_) co_return boost::system::error_code{};
  const auto side = server_ ? asio::ssl::stream_base::server : asio::ssl::stream_base::client;
  auto [ec] = co_await tls_->async_handshake(side, asio::as_tuple(asio::use_awaitable));
  handshake_done_ = !ec;
  if (!ec && server_ && server_->asks_client_certificates())
    client_certificate_ = tls::verified_client_certificate(tls_->native_handle());
  co_return ec;
}

bool tls_socket::has_buffered_input() const {
  if (!tls_) return false;
  SSL* ssl = const_cast<asio::ssl::stream<timed_socket&>&>(*tls_).native_handle();
  // Decrypted bytes not yet read, or records the socket delivered that TLS has not looked at
  // (a close_notify that came with the response, say): either way the connection is not clean.
  return SSL_has_pending(ssl) == 1 || BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0;
}

asio::awaitable<void> tls_socket::shutdown_tls() {
  if (!tls_) co_return;
  // Sends close_notify and waits (within the deadline) for the peer's, or its close.
  co_await tls_->async_shutdown(asio::as_tuple(asio::use_awaitable));
}

}  // namespace gw::proxy
