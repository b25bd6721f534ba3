// The blocking test client: each call runs its coroutine on a private io_context until it ends or
// its deadline passes; on a deadline the socket's operations are cancelled and the call throws.
#include "support/http_client.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <cstdio>
#include <map>
#include <mutex>
#include <exception>
#include <optional>
#include <stdexcept>

namespace gw::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t header_limit = 1024 * 1024;
constexpr std::uint64_t reply_body_limit = 64 * 1024 * 1024;

// The client's connection, plain or TLS (tls_options): every helper below reads and writes
// through this, so each test behaviour runs over either.
class test_stream {
 public:
  explicit test_stream(asio::io_context& ioc) : socket(ioc) {}

  using executor_type = tcp::socket::executor_type;
  executor_type get_executor() { return socket.get_executor(); }

  // Prepares TLS for after the TCP connect (handshake() then runs it).
  void use_tls(const tls_options& options) {
    context.emplace(asio::ssl::context::tls_client);
    auto* ctx = context->native_handle();
    if (options.max_version) SSL_CTX_set_max_proto_version(ctx, options.max_version);
    // OpenSSL 3 refuses TLS 1.1 and older at its default security level: a client that asks
    // for them must be let down to level 0 to offer them at all (for the server to refuse).
    if (options.max_version && options.max_version < TLS1_2_VERSION) {
      SSL_CTX_set_security_level(ctx, 0);
      SSL_CTX_set_cipher_list(ctx, "DEFAULT@SECLEVEL=0");
    }
    if (options.min_version) SSL_CTX_set_min_proto_version(ctx, options.min_version);
    if (!options.ca_file.empty()) {
      context->load_verify_file(options.ca_file);
      context->set_verify_mode(asio::ssl::verify_peer);
    }
    if (!options.cert_file.empty()) {
      context->use_certificate_chain_file(options.cert_file);
      context->use_private_key_file(options.key_file, asio::ssl::context::pem);
    }
    if (!options.alpn.empty()) {
      std::string wire;
      for (const auto& p : options.alpn) wire.append(1, static_cast<char>(p.size())).append(p);
      SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                              static_cast<unsigned>(wire.size()));
    }
    tls.emplace(socket, *context);
    SSL* ssl = tls->native_handle();
    if (!options.server_name.empty()) SSL_set_tlsext_host_name(ssl, options.server_name.c_str());
    if (options.resume) SSL_set_session(ssl, options.resume.get());
  }

  asio::awaitable<bool> handshake() {
    if (!tls) co_return true;
    auto [ec] = co_await tls->async_handshake(asio::ssl::stream_base::client, use_tuple1);
    if (ec) throw std::runtime_error("TLS handshake: " + ec.message());
    co_return true;
  }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          if (tls)
            tls->async_read_some(b, std::move(handler));
          else
            socket.async_read_some(b, std::move(handler));
        },
        token, buffers);
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          if (tls)
            tls->async_write_some(b, std::move(handler));
          else
            socket.async_write_some(b, std::move(handler));
        },
        token, buffers);
  }

  tls_session info() const {
    tls_session out;
    if (!tls) return out;
    SSL* ssl = const_cast<test_stream*>(this)->tls->native_handle();
    out.version = SSL_get_version(ssl);
    const unsigned char* alpn = nullptr;
    unsigned alpn_length = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_length);
    if (alpn) out.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_length);
    out.resumed = SSL_session_reused(ssl) == 1;
    if (X509* peer = SSL_get0_peer_certificate(ssl)) {
      char name[256] = {};
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, name, sizeof name);
      out.peer_common_name = name;
    }
    // A copy: OpenSSL marks the connection's own session not resumable when the connection
    // is freed without a TLS shutdown, as a test's connection usually is.
    if (SSL_SESSION* session = SSL_get0_session(ssl))
      out.session = std::shared_ptr<SSL_SESSION>(SSL_SESSION_dup(session), SSL_SESSION_free);
    return out;
  }

  tcp::socket socket;
  std::optional<asio::ssl::context> context;
  std::optional<asio::ssl::stream<tcp::socket&>> tls;

 private:
  static constexpr auto use_tuple1 = asio::as_tuple(asio::use_awaitable);
};

// Runs `operation` until it finishes or `deadline` passes; nullopt means it timed out and was
// cancelled. Exceptions from the operation propagate.
template <class T>
std::optional<T> run_until(asio::io_context& ioc, tcp::socket& socket,
                           clock_type::time_point deadline, asio::awaitable<T> operation) {
  // Shared with the completion handler, which must stay harmless even if it outlives this call.
  struct outcome_type {
    bool done = false;
    std::exception_ptr error;
    std::optional<T> value;
  };
  auto outcome = std::make_shared<outcome_type>();
  asio::co_spawn(ioc, std::move(operation), [outcome](std::exception_ptr error, T value) {
    outcome->done = true;
    outcome->error = error;
    if (!error) outcome->value.emplace(std::move(value));
  });
  ioc.restart();
  ioc.run_until(deadline);
  if (!outcome->done) {
    // Cancelling keeps the socket usable (wait_closed, try_send); the coroutines end on the
    // first error, so the aborted completion arrives at once.
    beast::error_code ignored;
    socket.cancel(ignored);
    ioc.restart();
    ioc.run_for(5s);
    if (!outcome->done) {
      socket.close(ignored);
      ioc.restart();
      ioc.run_for(5s);
    }
    return std::nullopt;
  }
  if (outcome->error) std::rethrow_exception(outcome->error);
  return std::move(outcome->value);
}

template <class T>
T run_or_throw(asio::io_context& ioc, tcp::socket& socket, clock_type::time_point deadline,
               asio::awaitable<T> operation, const std::string& what) {
  auto result = run_until(ioc, socket, deadline, std::move(operation));
  if (!result) throw std::runtime_error(what + ": timed out");
  return std::move(*result);
}

tcp::endpoint resolve(const std::string& host, std::uint16_t port) {
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (!ec) return {address, port};
  // Names such as "localhost": the resolver's blocking lookup reads /etc/hosts, it does not hang.
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec || results.empty())
    throw std::runtime_error("cannot resolve " + host + ": " + ec.message());
  return results.begin()->endpoint();
}

asio::awaitable<bool> connect_stream(test_stream& stream, tcp::endpoint endpoint) {
  auto& socket = stream.socket;
  auto [ec] = co_await socket.async_connect(endpoint, use_tuple);
  if (ec)
    throw std::runtime_error("connect to " + endpoint.address().to_string() + ":" +
                             std::to_string(endpoint.port()) + ": " + ec.message());
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  co_return co_await stream.handshake();
}

// Connects (and handshakes, with `tls` enabled, or else the port's default_tls_for()).
void connect(asio::io_context& ioc, test_stream& stream, tcp::endpoint endpoint,
             clock_type::time_point deadline, const tls_options* tls = nullptr) {
  std::optional<tls_options> by_default;
  if (!tls && (by_default = default_tls_for(endpoint.port()))) tls = &*by_default;
  if (tls && tls->enabled) stream.use_tls(*tls);
  run_or_throw(ioc, stream.socket, deadline, connect_stream(stream, endpoint),
               "connect to port " + std::to_string(endpoint.port()));
}

asio::awaitable<bool> write_all(test_stream& socket, std::string_view bytes) {
  auto [ec, n] =
      co_await asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()), use_tuple);
  if (ec) throw std::runtime_error("send: " + ec.message());
  co_return true;
}

http_reply to_reply(http::response<http::string_body>& message) {
  http_reply reply;
  reply.status = static_cast<int>(message.result_int());
  for (const auto& field : message)
    reply.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  reply.keep_alive = message.keep_alive();
  reply.body = std::move(message.body());
  return reply;
}

bool is_interim(unsigned status) {
  // 101 ends HTTP on the connection; the caller must see it.
  return status / 100 == 1 && status != 101;
}

asio::awaitable<http_reply> read_one_reply(test_stream& socket, beast::flat_buffer& buffer,
                                           bool head_request, bool return_interim) {
  for (;;) {
    http::response_parser<http::string_body> parser;
    parser.header_limit(header_limit);
    parser.body_limit(reply_body_limit);
    if (head_request) parser.skip(true);
    auto [ec, n] = co_await http::async_read(socket, buffer, parser, use_tuple);
    if (ec == http::error::end_of_stream)
      throw std::runtime_error("read_reply: the connection closed before a reply");
    if (ec) throw std::runtime_error("read_reply: " + ec.message());
    if (is_interim(parser.get().result_int()) && !return_interim) continue;
    co_return to_reply(parser.get());
  }
}

// Reads into `buffer` until the peer closes; true for EOF or reset.
asio::awaitable<bool> read_to_close(test_stream& socket, beast::flat_buffer& buffer) {
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(buffer.prepare(64 * 1024), use_tuple);
    buffer.commit(n);
    if (ec == asio::error::operation_aborted) co_return false;
    if (ec) co_return true;
  }
}

struct streamed_reply {
  int status = 0;
  header_list headers;
  std::uint64_t bytes = 0;
  fnv1a64 hash;
  std::string text;
};

// Reads one final response, hashing the body piece by piece through a fixed buffer.
asio::awaitable<bool> read_streamed_reply(test_stream& socket, beast::flat_buffer& buffer,
                                          streamed_reply& out) {
  auto piece = std::make_unique<char[]>(pattern_piece_bytes);
  // Beast reads at most the buffer's spare capacity (512 bytes when new) per call.
  buffer.reserve(pattern_piece_bytes);
  for (;;) {
    http::response_parser<http::buffer_body> parser;
    parser.header_limit(header_limit);
    parser.body_limit(boost::none);
    auto [ec, n] = co_await http::async_read_header(socket, buffer, parser, use_tuple);
    if (ec) throw std::runtime_error("reading the reply head: " + ec.message());
    auto& message = parser.get();
    if (is_interim(message.result_int())) continue;
    out.status = static_cast<int>(message.result_int());
    for (const auto& field : message)
      out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    while (!parser.is_done()) {
      message.body().data = piece.get();
      message.body().size = pattern_piece_bytes;
      auto [body_ec, body_n] = co_await http::async_read(socket, buffer, parser, use_tuple);
      if (body_ec == http::error::need_buffer) body_ec = {};
      if (body_ec)
        throw std::runtime_error("reading the reply body after " + std::to_string(out.bytes) +
                                 " bytes: " + body_ec.message());
      auto got = pattern_piece_bytes - message.body().size;
      out.hash.update(piece.get(), got);
      out.bytes += got;
      if (out.text.size() < captured_body_bytes)
        out.text.append(piece.get(), std::min(got, captured_body_bytes - out.text.size()));
    }
    co_return true;
  }
}

struct upload_progress {
  std::uint64_t sent = 0;
  fnv1a64 hash;
};

// Stops between pieces once `stop` is set: cancelling the socket alone misses a write that is
// not waiting in the reactor at that moment.
asio::awaitable<bool> write_pattern_upload(test_stream& socket, std::string head,
                                           std::uint64_t bytes, bool chunked,
                                           upload_progress& progress, const bool& stop) {
  auto [ec, n] = co_await asio::async_write(socket, asio::buffer(head), use_tuple);
  if (ec) co_return false;
  for (std::uint64_t offset = 0; offset < bytes;) {
    if (stop) co_return false;
    auto piece = pattern_piece(offset, static_cast<std::size_t>(std::min<std::uint64_t>(
                                           bytes - offset, pattern_piece_bytes)));
    if (chunked) {
      char size_line[32];
      int size_length = std::snprintf(size_line, sizeof size_line, "%zx\r\n", piece.size());
      std::array<asio::const_buffer, 3> chunk{
          asio::buffer(size_line, static_cast<std::size_t>(size_length)),
          asio::buffer(piece.data(), piece.size()), asio::buffer("\r\n", 2)};
      std::tie(ec, n) = co_await asio::async_write(socket, chunk, use_tuple);
    } else {
      std::tie(ec, n) =
          co_await asio::async_write(socket, asio::buffer(piece.data(), piece.size()), use_tuple);
    }
    if (ec) co_return false;
    progress.hash.update(piece.data(), piece.size());
    progress.sent += piece.size();
    offset += piece.size();
  }
  if (chunked && !stop) {
    std::tie(ec, n) = co_await asio::async_write(socket, asio::buffer("0\r\n\r\n", 5), use_tuple);
    if (ec) co_return false;
  }
  co_return true;
}

std::string request_head(std::string_view method, std::string_view target,
                         const header_list& headers) {
  std::string head;
  head.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  if (!header_present(headers, "Host")) head += "Host: localhost\r\n";
  for (const auto& [name, value] : headers)
    head.append(name).append(": ").append(value).append("\r\n");
  return head;
}

}  // namespace

namespace {

std::mutex default_tls_mutex;
std::map<std::uint16_t, tls_options>& default_tls() {
  static std::map<std::uint16_t, tls_options> by_port;
  return by_port;
}

}  // namespace

void use_tls_by_default(std::uint16_t port, tls_options options) {
  std::lock_guard lock{default_tls_mutex};
  default_tls()[port] = std::move(options);
}

void use_plain_by_default(std::uint16_t port) {
  std::lock_guard lock{default_tls_mutex};
  default_tls().erase(port);
}

std::optional<tls_options> default_tls_for(std::uint16_t port) {
  std::lock_guard lock{default_tls_mutex};
  const auto it = default_tls().find(port);
  if (it == default_tls().end()) return std::nullopt;
  return it->second;  // a copy: another thread may replace or erase the entry meanwhile
}

struct client_connection::state {
  std::chrono::milliseconds timeout;
  asio::io_context ioc{1};
  test_stream stream{ioc};
  tcp::socket& socket = stream.socket;
  beast::flat_buffer buffer;  // bytes read past the last reply, kept for the next one

  state() { buffer.reserve(16 * 1024); }  // Beast reads at most the spare capacity per call

  clock_type::time_point deadline() const { return clock_type::now() + timeout; }
};

client_connection::client_connection(std::uint16_t port, std::string host,
                                     std::chrono::milliseconds timeout)
    : state_(std::make_unique<state>()) {
  state_->timeout = timeout;
  connect(state_->ioc, state_->stream, resolve(host, port), state_->deadline());
}

client_connection::client_connection(std::uint16_t port, const tls_options& tls,
                                     std::chrono::milliseconds timeout)
    : state_(std::make_unique<state>()) {
  state_->timeout = timeout;
  connect(state_->ioc, state_->stream, {asio::ip::address_v4::loopback(), port},
          state_->deadline(), &tls);
}

tls_session client_connection::tls() const { return state_->stream.info(); }

client_connection::~client_connection() = default;
client_connection::client_connection(client_connection&&) noexcept = default;
client_connection& client_connection::operator=(client_connection&&) noexcept = default;

void client_connection::send(std::string_view raw) {
  run_or_throw(state_->ioc, state_->socket, state_->deadline(), write_all(state_->stream, raw),
               "send");
}

bool client_connection::try_send(std::string_view raw) {
  try {
    return run_until(state_->ioc, state_->socket, state_->deadline(),
                     write_all(state_->stream, raw))
        .has_value();
  } catch (const std::runtime_error&) {
    return false;
  }
}

void client_connection::shutdown_send() {
  beast::error_code ec;
  state_->socket.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) throw std::runtime_error("shutdown_send: " + ec.message());
}

http_reply client_connection::read_reply(bool head_request) {
  return read_reply(head_request, false);
}

http_reply client_connection::read_reply(bool head_request, bool return_interim) {
  return run_or_throw(state_->ioc, state_->socket, state_->deadline(),
                      read_one_reply(state_->stream, state_->buffer, head_request, return_interim),
                      "read_reply");
}

bool client_connection::wait_closed(std::chrono::milliseconds timeout) {
  auto closed = run_until(state_->ioc, state_->socket, clock_type::now() + timeout,
                          read_to_close(state_->stream, state_->buffer));
  return closed.value_or(false);
}

std::string client_connection::read_until_close() {
  if (!run_or_throw(state_->ioc, state_->socket, state_->deadline(),
                    read_to_close(state_->stream, state_->buffer), "read_until_close"))
    throw std::runtime_error("read_until_close: cancelled");
  std::string text = beast::buffers_to_string(state_->buffer.data());
  state_->buffer.consume(state_->buffer.size());
  return text;
}

http_reply request(std::uint16_t port, std::string method, std::string target, header_list headers,
                   std::string body, std::chrono::milliseconds timeout) {
  std::string raw = request_head(method, target, headers);
  if (!body.empty() && !header_present(headers, "Content-Length") &&
      !header_present(headers, "Transfer-Encoding"))
    raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  if (!header_present(headers, "Connection")) raw += "Connection: close\r\n";
  raw += "\r\n";
  raw += body;

  client_connection connection(port, "127.0.0.1", timeout);
  connection.send(raw);
  return connection.read_reply(method == "HEAD");
}

stream_result upload_pattern(std::uint16_t port, std::string target, std::uint64_t bytes,
                             bool chunked, std::chrono::milliseconds timeout, header_list headers) {
  auto deadline = clock_type::now() + timeout;
  asio::io_context ioc{1};
  test_stream stream(ioc);
  tcp::socket& socket = stream.socket;
  connect(ioc, stream, {asio::ip::address_v4::loopback(), port}, deadline);

  std::string head = request_head("POST", target, headers);
  head += chunked ? "Transfer-Encoding: chunked\r\n"
                  : "Content-Length: " + std::to_string(bytes) + "\r\n";
  head += "Connection: close\r\n\r\n";

  // The writer and the reader run side by side: a server may answer (413, 429) before the body
  // is through, and a client that only writes would then block until the deadline.
  upload_progress progress;
  beast::flat_buffer buffer;
  streamed_reply reply;
  bool writer_done = false;
  bool reply_done = false;
  std::exception_ptr reply_error;
  asio::co_spawn(
      ioc, write_pattern_upload(stream, std::move(head), bytes, chunked, progress, reply_done),
      [&](std::exception_ptr, bool) { writer_done = true; });
  asio::co_spawn(ioc, read_streamed_reply(stream, buffer, reply),
                 [&](std::exception_ptr error, bool) {
                   reply_done = true;
                   reply_error = error;
                   if (!writer_done) {
                     beast::error_code ignored;
                     socket.cancel(ignored);
                   }
                 });
  ioc.restart();  // the connect above ran the context dry, which stops it
  ioc.run_until(deadline);
  if (!reply_done) {
    beast::error_code ignored;
    socket.close(ignored);
    ioc.restart();
    ioc.run_for(5s);
    throw std::runtime_error("upload_pattern " + target + ": timed out after sending " +
                             std::to_string(progress.sent) + " of " + std::to_string(bytes) +
                             " bytes");
  }
  if (reply_error) {
    try {
      std::rethrow_exception(reply_error);
    } catch (const std::exception& e) {
      throw std::runtime_error("upload_pattern " + target + " (sent " +
                               std::to_string(progress.sent) + " of " + std::to_string(bytes) +
                               " bytes): " + e.what());
    }
  }
  return {reply.status, progress.sent, progress.hash.hex(), std::move(reply.text),
          std::move(reply.headers)};
}

stream_result download(std::uint16_t port, std::string target, std::chrono::milliseconds timeout,
                       header_list headers) {
  auto deadline = clock_type::now() + timeout;
  asio::io_context ioc{1};
  test_stream stream(ioc);
  tcp::socket& socket = stream.socket;
  connect(ioc, stream, {asio::ip::address_v4::loopback(), port}, deadline);

  std::string head = request_head("GET", target, headers);
  head += "Connection: close\r\n\r\n";
  run_or_throw(ioc, socket, deadline, write_all(stream, head), "download " + target + ": send");

  beast::flat_buffer buffer;
  streamed_reply reply;
  run_or_throw(ioc, socket, deadline, read_streamed_reply(stream, buffer, reply),
               "download " + target);
  return {reply.status, reply.bytes, reply.hash.hex(), std::move(reply.text),
          std::move(reply.headers)};
}

}  // namespace gw::test
