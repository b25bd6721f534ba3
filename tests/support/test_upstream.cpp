// The test upstream: an accept loop and one coroutine per connection (each on its own strand) on a
// private io_context; requests on a connection are answered one after another, so in order.
#include "support/test_upstream.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <unordered_map>

namespace gw::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t header_limit = 1024 * 1024;

struct split_target {
  std::string_view path;
  std::string_view query;

  explicit split_target(std::string_view target) {
    auto mark = target.find('?');
    path = target.substr(0, mark);
    if (mark != std::string_view::npos) query = target.substr(mark + 1);
  }
};

std::optional<std::uint64_t> parse_number(std::string_view text) {
  std::uint64_t number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return number;
}

std::optional<std::uint64_t> query_number(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name && eq != std::string_view::npos)
      return parse_number(pair.substr(eq + 1));
  }
  return std::nullopt;
}

// Half-closes, then reads until the peer's FIN (at most a second) before closing: closing with
// unread request bytes would send a reset that can destroy the response still in flight.
asio::awaitable<void> close_gracefully(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(1s);
  char sink[4096];
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
    if (ec) break;
  }
  stream.socket().close(ignored);
}

void close_abortively(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().set_option(asio::socket_base::linger(true, 0), ignored);
  stream.socket().close(ignored);
}

struct reply_context {
  beast::tcp_stream& stream;
  unsigned version;
  bool keep_alive;
  bool head;
};

struct record_ticket {
  std::size_t index;
  std::uint64_t generation;
};

}  // namespace

struct test_upstream::state {
  explicit state(test_upstream_options opts);

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(tcp::socket socket);
  asio::awaitable<bool> respond(reply_context& reply, std::string_view path, std::string_view query,
                                std::uint64_t body_bytes, const fnv1a64& body_hash);
  asio::awaitable<bool> send_text(reply_context& reply, unsigned status, std::string_view body);
  asio::awaitable<bool> send_download(reply_context& reply, std::uint64_t bytes, bool chunked);
  asio::awaitable<bool> write_raw(beast::tcp_stream& stream, std::string_view bytes);

  std::optional<record_ticket> record_head(const http::request<http::buffer_body>& request);
  void record_body(const std::optional<record_ticket>& ticket, std::uint64_t bytes,
                   std::string body);

  // Declared before the io_context: destroying it destroys the suspended connection coroutines,
  // which still unregister themselves here.
  test_upstream_options options;
  std::string port_text;
  std::atomic<std::size_t> requests{0};
  std::atomic<std::size_t> connections{0};

  struct open_connection {
    asio::any_io_executor executor;
    std::weak_ptr<beast::tcp_stream> stream;
  };

  mutable std::mutex mutex;  // guards everything down to the io_context
  std::vector<received_request> recorded;
  std::uint64_t generation = 0;  // bumped by reset so a late body update cannot land elsewhere
  std::uint64_t next_connection_id = 0;
  std::unordered_map<std::uint64_t, open_connection> open_connections;

  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::uint16_t port = 0;
  std::vector<std::thread> threads;
};

test_upstream::state::state(test_upstream_options opts)
    : options(std::move(opts)), ioc(static_cast<int>(std::max(1u, options.threads))) {
  tcp::endpoint endpoint(asio::ip::make_address(options.address), options.port);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  port = acceptor.local_endpoint().port();
  port_text = std::to_string(port);
}

asio::awaitable<void> test_upstream::state::accept_loop() {
  for (;;) {
    tcp::socket socket(asio::make_strand(ioc));
    auto [ec] = co_await acceptor.async_accept(socket, use_tuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: back off rather than spin.
      asio::steady_timer pause(ioc, 10ms);
      co_await pause.async_wait(use_tuple);
      continue;
    }
    connections.fetch_add(1, std::memory_order_relaxed);
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto executor = socket.get_executor();
    asio::co_spawn(executor, serve(std::move(socket)), [](std::exception_ptr error) {
      try {
        if (error) std::rethrow_exception(error);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "test_upstream: connection failed: %s\n", e.what());
      }
    });
  }
}

asio::awaitable<void> test_upstream::state::serve(tcp::socket socket) {
  auto stream = std::make_shared<beast::tcp_stream>(std::move(socket));

  std::uint64_t id = 0;
  {
    std::lock_guard lock(mutex);
    id = next_connection_id++;
    open_connections.emplace(id, open_connection{stream->get_executor(), stream});
  }
  struct unregister {
    state& self;
    std::uint64_t id;
    ~unregister() {
      std::lock_guard lock(self.mutex);
      self.open_connections.erase(id);
    }
  } registration{*this, id};

  beast::flat_buffer buffer;
  std::unique_ptr<char[]> body_buffer;  // only connections that receive a body pay for it

  for (;;) {
    http::request_parser<http::buffer_body> parser;
    parser.header_limit(header_limit);
    parser.body_limit(boost::none);

    auto [ec, n] = co_await http::async_read_header(*stream, buffer, parser, use_tuple);
    if (ec) {
      // A head we cannot parse deserves a 400 so the failure shows in the test, not a hang.
      if (ec != http::error::end_of_stream && ec != asio::error::operation_aborted) {
        reply_context reply{*stream, 11, false, false};
        co_await send_text(reply, 400, "bad request\n");
      }
      co_return;
    }
    requests.fetch_add(1, std::memory_order_relaxed);

    auto& request = parser.get();
    auto ticket = record_head(request);
    split_target target(request.target());

    if (!parser.is_done() && beast::iequals(request[http::field::expect], "100-continue")) {
      if (!co_await write_raw(*stream, "HTTP/1.1 100 Continue\r\n\r\n")) co_return;
    }

    bool hash_body = target.path == "/upload";
    fnv1a64 body_hash;
    std::uint64_t body_bytes = 0;
    std::string captured;
    while (!parser.is_done()) {
      if (!body_buffer) {
        body_buffer = std::make_unique<char[]>(pattern_piece_bytes);
        // Beast reads at most the buffer's spare capacity (512 bytes when new) per call.
        buffer.reserve(pattern_piece_bytes);
      }
      request.body().data = body_buffer.get();
      request.body().size = pattern_piece_bytes;
      auto [body_ec, body_n] = co_await http::async_read(*stream, buffer, parser, use_tuple);
      if (body_ec == http::error::need_buffer) body_ec = {};
      if (body_ec) co_return;
      auto got = pattern_piece_bytes - request.body().size;
      if (hash_body) body_hash.update(body_buffer.get(), got);
      if (ticket && captured.size() < captured_body_bytes)
        captured.append(body_buffer.get(), std::min(got, captured_body_bytes - captured.size()));
      body_bytes += got;
    }
    record_body(ticket, body_bytes, std::move(captured));

    reply_context reply{*stream, request.version(), request.keep_alive(),
                        request.method() == http::verb::head};
    if (!co_await respond(reply, target.path, target.query, body_bytes, body_hash)) co_return;
  }
}

// Returns whether the connection stays open for the next request. Arguments to co_await are kept
// to plain names: GCC 12 mishandles temporaries (a ?: of strings, say) inside co_await expressions.
asio::awaitable<bool> test_upstream::state::respond(reply_context& reply, std::string_view path,
                                                    std::string_view query,
                                                    std::uint64_t body_bytes,
                                                    const fnv1a64& body_hash) {
  if (path.starts_with("/status/")) {
    auto code = parse_number(path.substr(8));
    if (!code || *code < 100 || *code > 999)
      co_return co_await send_text(reply, 400, "bad status\n");
    auto status = static_cast<unsigned>(*code);
    std::string body;
    if (status != 204 && status != 304) body = "status " + std::to_string(status) + "\n";
    co_return co_await send_text(reply, status, body);
  }
  if (path == "/slow") {
    std::chrono::milliseconds delay(query_number(query, "ms").value_or(0));
    asio::steady_timer timer(co_await asio::this_coro::executor, delay);
    co_await timer.async_wait(use_tuple);
    co_return co_await send_text(reply, 200, "slow\n");
  }
  if (path == "/download") {
    std::uint64_t bytes = query_number(query, "bytes").value_or(0);
    bool chunked = query_number(query, "chunked").value_or(0) != 0;
    co_return co_await send_download(reply, bytes, chunked);
  }
  if (path == "/upload") {
    std::string summary = std::to_string(body_bytes) + " " + body_hash.hex();
    co_return co_await send_text(reply, 200, summary);
  }
  if (path == "/garbage") {
    if (co_await write_raw(reply.stream, "this is not http\r\n\r\n"))
      co_await close_gracefully(reply.stream);
    co_return false;
  }
  if (path == "/truncated") {  // promises `bytes`, sends half of them, closes
    const std::uint64_t bytes = query_number(query, "bytes").value_or(1024);
    std::string raw = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: " + std::to_string(bytes) + "\r\n\r\n";
    raw.append(bytes / 2, 'x');
    if (co_await write_raw(reply.stream, raw)) co_await close_gracefully(reply.stream);
    co_return false;
  }
  if (path == "/endless-header") {  // header lines until the peer closes (1 GiB at most)
    if (!co_await write_raw(reply.stream, "HTTP/1.1 200 OK\r\n")) co_return false;
    const std::string line = "X-Filler: " + std::string(1014, 'f') + "\r\n";  // 1 KiB
    for (int i = 0; i < 1024 * 1024; ++i)
      if (!co_await write_raw(reply.stream, line)) co_return false;
    co_await close_gracefully(reply.stream);
    co_return false;
  }
  if (path == "/reset") {
    close_abortively(reply.stream);
    co_return false;
  }
  if (path == "/close") {
    reply.keep_alive = false;
    co_return co_await send_text(reply, 200, "bye\n");
  }
  if (path == "/endless-interim") {  // interim heads without end (the gateway gives up)
    for (int i = 0; i < 100; ++i)
      if (!co_await write_raw(reply.stream, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"))
        co_return false;
    co_return co_await send_text(reply, 200, "final\n");
  }
  if (path == "/interim") {
    if (!co_await write_raw(reply.stream, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"))
      co_return false;
    co_return co_await send_text(reply, 200, "final\n");
  }
  co_return co_await send_text(reply, 200, "hello from upstream\n");
}

asio::awaitable<bool> test_upstream::state::send_text(reply_context& reply, unsigned status,
                                                      std::string_view body) {
  http::response<http::string_body> response;
  response.version(reply.version);
  response.result(status);
  if (http::int_to_status(status) == http::status::unknown) response.reason("Unknown");
  response.set(http::field::content_type, "text/plain");
  response.set("X-Upstream-Port", port_text);
  response.keep_alive(reply.keep_alive);
  bool bodiless = status / 100 == 1 || status == 204 || status == 304;
  if (!bodiless) {
    response.content_length(body.size());
    response.body() = body;
  }

  http::response_serializer<http::string_body> serializer(response);
  beast::error_code ec;
  if (reply.head || bodiless)
    std::tie(ec, std::ignore) =
        co_await http::async_write_header(reply.stream, serializer, use_tuple);
  else
    std::tie(ec, std::ignore) = co_await http::async_write(reply.stream, serializer, use_tuple);
  if (ec) co_return false;
  if (!reply.keep_alive) {
    co_await close_gracefully(reply.stream);
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> test_upstream::state::send_download(reply_context& reply, std::uint64_t bytes,
                                                          bool chunked) {
  http::response<http::buffer_body> response;
  response.version(reply.version);
  response.result(http::status::ok);
  response.set(http::field::content_type, "application/octet-stream");
  response.set("X-Upstream-Port", port_text);
  response.keep_alive(reply.keep_alive);
  if (chunked)
    response.chunked(true);
  else
    response.content_length(bytes);
  response.body().data = nullptr;
  response.body().more = true;

  http::response_serializer<http::buffer_body> serializer(response);
  auto [ec, n] = co_await http::async_write_header(reply.stream, serializer, use_tuple);
  if (ec) co_return false;

  if (!reply.head) {
    for (std::uint64_t offset = 0; offset < bytes;) {
      auto piece = pattern_piece(offset, static_cast<std::size_t>(std::min<std::uint64_t>(
                                             bytes - offset, pattern_piece_bytes)));
      // buffer_body wants a mutable pointer; the serializer only reads through it.
      response.body().data = const_cast<char*>(piece.data());
      response.body().size = piece.size();
      response.body().more = true;
      auto [piece_ec, piece_n] = co_await http::async_write(reply.stream, serializer, use_tuple);
      if (piece_ec == http::error::need_buffer) piece_ec = {};
      if (piece_ec) co_return false;
      offset += piece.size();
    }
    response.body().data = nullptr;
    response.body().more = false;
    auto [end_ec, end_n] = co_await http::async_write(reply.stream, serializer, use_tuple);
    if (end_ec) co_return false;
  }
  if (!reply.keep_alive) {
    co_await close_gracefully(reply.stream);
    co_return false;
  }
  co_return true;
}

asio::awaitable<bool> test_upstream::state::write_raw(beast::tcp_stream& stream,
                                                      std::string_view bytes) {
  auto [ec, n] =
      co_await asio::async_write(stream, asio::buffer(bytes.data(), bytes.size()), use_tuple);
  co_return !ec;
}

std::optional<record_ticket> test_upstream::state::record_head(
    const http::request<http::buffer_body>& request) {
  if (!options.record_requests) return std::nullopt;
  received_request entry;
  entry.method = std::string(request.method_string());
  entry.target = std::string(request.target());
  for (const auto& field : request)
    entry.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  std::lock_guard lock(mutex);
  recorded.push_back(std::move(entry));
  return record_ticket{recorded.size() - 1, generation};
}

void test_upstream::state::record_body(const std::optional<record_ticket>& ticket,
                                       std::uint64_t bytes, std::string body) {
  if (!ticket) return;
  std::lock_guard lock(mutex);
  if (ticket->generation != generation || ticket->index >= recorded.size()) return;
  recorded[ticket->index].body_bytes = bytes;
  recorded[ticket->index].body = std::move(body);
}

test_upstream::test_upstream() : test_upstream(test_upstream_options{}) {}

test_upstream::test_upstream(test_upstream_options options)
    : state_(std::make_unique<state>(std::move(options))) {
  asio::co_spawn(state_->ioc, state_->accept_loop(), asio::detached);
  for (unsigned i = 0; i < std::max(1u, state_->options.threads); ++i) {
    state_->threads.emplace_back([s = state_.get()] {
      try {
        s->ioc.run();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "test_upstream: event loop failed: %s\n", e.what());
      }
    });
  }
}

test_upstream::~test_upstream() {
  // Stopping drops every connection mid-flight; the io_context's destructor then frees the
  // suspended coroutines (and closes their sockets) while the state they touch is still alive.
  state_->ioc.stop();
  for (auto& thread : state_->threads) thread.join();
}

std::uint16_t test_upstream::port() const { return state_->port; }

std::size_t test_upstream::request_count() const {
  return state_->requests.load(std::memory_order_relaxed);
}

std::size_t test_upstream::connection_count() const {
  return state_->connections.load(std::memory_order_relaxed);
}

std::vector<received_request> test_upstream::requests() const {
  std::lock_guard lock(state_->mutex);
  return state_->recorded;
}

void test_upstream::reset_counters() {
  std::lock_guard lock(state_->mutex);
  state_->recorded.clear();
  ++state_->generation;
  state_->requests.store(0, std::memory_order_relaxed);
  state_->connections.store(0, std::memory_order_relaxed);
}

void test_upstream::close_connections() {
  std::vector<state::open_connection> targets;
  {
    std::lock_guard lock(state_->mutex);
    for (const auto& [id, connection] : state_->open_connections) targets.push_back(connection);
  }
  std::vector<std::future<void>> closed;
  for (auto& target : targets) {
    auto done = std::make_shared<std::promise<void>>();
    closed.push_back(done->get_future());
    // On the connection's own strand: its coroutine may be running on another thread.
    asio::post(target.executor, [stream = target.stream, done] {
      if (auto alive = stream.lock()) {
        beast::error_code ignored;
        alive->socket().shutdown(tcp::socket::shutdown_both, ignored);
        alive->socket().close(ignored);
      }
      done->set_value();
    });
  }
  for (auto& one : closed) {
    if (one.wait_for(5s) != std::future_status::ready)
      throw std::runtime_error("test_upstream::close_connections: timed out");
  }
}

}  // namespace gw::test
