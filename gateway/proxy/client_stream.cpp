// The client's side of a session, plain or TLS (see client_stream.hpp).
#include "proxy/client_stream.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/ssl.h>

#include <stdexcept>

namespace gw::proxy {

namespace asio = boost::asio;

void client_stream::use_tls(std::shared_ptr<const tls::server_contexts> contexts) {
  SSL* ssl = SSL_new(contexts->default_context());
  if (!ssl) throw std::runtime_error("cannot make a TLS session");
  contexts_ = std::move(contexts);
  tls_.emplace(socket_, ssl);  // the stream owns `ssl` from here
}

asio::awaitable<boost::system::error_code> client_stream::handshake() {
  if (!tls_) co_return boost::system::error_code{};
  auto [ec] = co_await tls_->async_handshake(asio::ssl::stream_base::server,
                                              asio::as_tuple(asio::use_awaitable));
  if (!ec && contexts_->asks_client_certificates())
    client_certificate_ = tls::verified_client_certificate(tls_->native_handle());
  co_return ec;
}

asio::awaitable<void> client_stream::shutdown_tls() {
  if (!tls_) co_return;
  // Sends close_notify and waits (within the deadline) for the client's, or its close.
  co_await tls_->async_shutdown(asio::as_tuple(asio::use_awaitable));
}

}  // namespace gw::proxy
