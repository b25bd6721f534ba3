// The downstream session: the whole request path, top to bottom (see session.hpp).
#include "proxy/session.hpp"

#include "config/key_hash.hpp"
#include "identity/consumers.hpp"
#include "limit/verdict.hpp"
#include "proxy/body_pieces.hpp"
#include "proxy/forwarding.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <tuple>

namespace gw::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t relay_buffer_size = worker::relay_buffer_size;
// A body this small is read and dropped after an early answer so the connection can stay open;
// a larger one closes the connection instead.
constexpr std::uint64_t discard_body_limit = 64 * 1024;

bool is_timeout(const beast::error_code& ec) { return ec == beast::error::timeout; }


// The request as the limits see it.
class request_view final : public limit::request_facts {
 public:
  request_view(const request_head& head, std::string_view client_ip,
               std::string_view path, std::string_view query,
               std::optional<std::string> api_key_sha256, const config::consumer* consumer,
               std::string_view client_cert_sha256)
      : head_(head), client_ip_(client_ip), path_(path), query_(query),
        api_key_sha256_(std::move(api_key_sha256)), consumer_(consumer),
        client_cert_sha256_(client_cert_sha256) {}

  std::string_view client_ip() const override { return client_ip_; }
  std::optional<std::string_view> api_key_sha256() const override {
    if (!api_key_sha256_) return std::nullopt;
    return std::string_view{*api_key_sha256_};
  }
  const config::consumer* consumer() const override { return consumer_; }
  std::optional<std::string_view> client_cert_sha256() const override {
    if (client_cert_sha256_.empty()) return std::nullopt;
    return client_cert_sha256_;
  }
  std::string_view method() const override { return head_.method_string(); }
  std::string_view path() const override { return path_; }
  std::optional<std::string_view> header(std::string_view name) const override {
    const auto it = head_.find(name);
    if (it == head_.end()) return std::nullopt;
    return it->value();
  }
  std::optional<std::string_view> query(std::string_view name) const override {
    std::string_view rest = query_;
    while (!rest.empty()) {
      const auto amp = rest.find('&');
      const auto pair = rest.substr(0, amp);
      const auto eq = pair.find('=');
      if (pair.substr(0, eq) == name)
        return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
      if (amp == std::string_view::npos) break;
      rest.remove_prefix(amp + 1);
    }
    return std::nullopt;
  }

 private:
  const request_head& head_;
  std::string_view client_ip_, path_, query_;
  std::optional<std::string> api_key_sha256_;
  const config::consumer* consumer_;
  std::string_view client_cert_sha256_;  // empty: none
};

// Writes `head` (then empties it) and one piece of body in a single write, the piece framed as a
// chunk when `chunked`, followed by the terminating chunk when `last`.
template <class Stream>
asio::awaitable<std::tuple<beast::error_code, std::size_t>> write_piece(
    Stream& stream, std::string& head, const char* data, std::size_t size, bool chunked,
    bool last) {
  char size_line[24];
  std::array<asio::const_buffer, 5> buffers;
  std::size_t count = 0;
  if (!head.empty()) buffers[count++] = asio::buffer(head);
  if (chunked && size > 0) {
    const auto line = chunk_size_line(size, size_line);
    buffers[count++] = asio::buffer(line.data(), line.size());
  }
  if (size > 0) buffers[count++] = asio::buffer(data, size);
  if (chunked && size > 0) buffers[count++] = asio::buffer("\r\n", 2);
  if (chunked && last) buffers[count++] = asio::buffer("0\r\n\r\n", 5);
  if (count == 0) co_return std::tuple{beast::error_code{}, std::size_t{0}};
  auto result = co_await asio::async_write(
      stream, std::span<const asio::const_buffer>{buffers.data(), count}, use_tuple);
  head.clear();
  co_return result;
}

// As http::async_read_some, without its composed-operation machinery: what is already buffered
// is parsed at once (no I/O, no trip through the scheduler), and the socket is read only when the
// parser needs more. Returns the parser's error and the bytes it consumed.
template <class Stream, bool isRequest>
asio::awaitable<std::tuple<beast::error_code, std::size_t>> read_some(
    Stream& stream, beast::flat_buffer& buffer, http::basic_parser<isRequest>& parser) {
  std::size_t used = 0;
  beast::error_code ec;
  auto parse = [&] { return parse_buffered(parser, buffer, ec, used); };
  if (buffer.size() > 0 && parse()) co_return std::tuple{ec, used};
  for (;;) {
    auto [rec, n] =
        co_await stream.async_read_some(buffer.prepare(beast::read_size(buffer, 65536)), use_tuple);
    if (rec == asio::error::eof) {
      // The peer finished: that ends a message delimited by the connection closing, and
      // truncates any other.
      if (parser.got_some()) {
        ec = {};
        parser.put_eof(ec);
      } else {
        ec = http::error::end_of_stream;
      }
      co_return std::tuple{ec, used};
    }
    if (rec) co_return std::tuple{rec, used};
    buffer.commit(n);
    if (parse()) co_return std::tuple{ec, used};
  }
}

}  // namespace

session::session(worker& owner, tcp::socket socket)
    : worker_(owner), stream_(std::move(socket)) {
  beast::error_code ec;
  auto peer = stream_.socket().remote_endpoint(ec);
  if (!ec) {
    peer_address_ = identity::normalize(peer.address());
    peer_ip_ = peer_address_.to_string();
  }
  worker_.add(this);
}

session::~session() { worker_.remove(this); }

void session::close_if_idle() {
  if (idle_) {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.cancel();
  }
}

namespace {

// An error the TLS layer raised itself (an alert, a certificate that does not verify), as opposed
// to the connection ending under it.
bool is_tls_refusal(const beast::error_code& ec) {
  return ec.category() == asio::error::get_ssl_category();
}

// OpenSSL saw an HTTP request line where a ClientHello belongs (it sends no alert then).
bool is_plain_http(const beast::error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_HTTP_REQUEST;
}

// Why a client's handshake failed, for gateway_tls_handshake_errors_total.
snapshot::handshake_error handshake_error_of(const beast::error_code& ec) {
  using reason = snapshot::handshake_error;
  if (ec == beast::error::timeout) return reason::timeout;
  // Ended under it by the client, or by the gateway's own drain (operation_aborted).
  if (ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::ssl::error::stream_truncated || ec == asio::error::operation_aborted)
    return reason::closed;
  if (ec.category() == asio::error::get_ssl_category()) {
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
      case SSL_R_CERTIFICATE_VERIFY_FAILED:
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      case SSL_R_NO_CERTIFICATES_RETURNED:
        return reason::certificate;
      default:
        break;
    }
  }
  return reason::protocol;
}

}  // namespace

asio::awaitable<void> session::run() {
  if (auto tls = worker_.current()->tls()) {
    // The handshake and the first head share header_timeout from the accept: a client that
    // stalls either holds the connection no longer than one that stalls a plain head.
    stream_.use_server_tls(std::move(tls));
    stream_.expires_at(accepted_at_ + worker_.current()->config().server.header_timeout);
    if (auto ec = co_await stream_.handshake()) {
      // Plain HTTP on the TLS port, an old protocol version, no shared cipher, a required
      // client certificate missing or not verified: the handshake ends with an alert.
      spdlog::debug("TLS handshake from {} failed: {}", peer_ip_, ec.message());
      if (worker_.metrics_on())
        worker_.current()->tls_handshake_errors(handshake_error_of(ec)).inc(worker_.slot());
      if (is_plain_http(ec)) {
        co_await refuse_plain_http();
        co_return;
      }
      beast::error_code ignored;
      stream_.socket().close(ignored);
      co_return;
    }
  }
  for (bool first = true;; first = false) {
    switch (co_await read_head(first)) {
      case head_status::closed:
        co_return;
      case head_status::too_large:
        record_refused_head(431, co_await respond(431, "header_too_large",
                                                  "Request header too large", false));
        co_await close_gracefully();
        co_return;
      case head_status::malformed:
        record_refused_head(400, co_await respond(400, "bad_request", "Malformed request", false));
        co_await close_gracefully();
        co_return;
      case head_status::ready:
        break;
    }
    if (!co_await handle_request(scanner_.head_length())) {
      co_await close_gracefully();
      co_return;
    }
    // A body relay grew the buffer, or a large head the head buffer; an idle connection should
    // not keep that memory.
    if (buffer_.size() == 0 && buffer_.capacity() > relay_buffer_size) buffer_.shrink_to_fit();
    if (head_.capacity() > 16 * 1024) std::string{}.swap(head_);
  }
}

// A head refused before it was read as a request: counted and logged with no route, as an error.
void session::record_refused_head(unsigned status, std::size_t bytes_out) {
  const auto snap = worker_.current();
  if (worker_.metrics_on())
    snap->unrouted().requests.at(status, static_cast<std::size_t>(decision::error))
        .inc(worker_.slot());
  if (snap->config().server.access_log) {
    access_entry entry;
    entry.client_ip = peer_ip_;
    entry.status = status;
    entry.decision = to_string(decision::error);
    entry.bytes_in = buffer_.size();
    entry.bytes_out = bytes_out;
    worker_.log().write(entry);
  }
}

asio::awaitable<session::head_status> session::read_head(bool first) {
  // Copied: a reload while this connection waits frees the snapshot the settings come from.
  const auto& current = worker_.current()->config().server;
  const struct {
    config::duration header_timeout, idle_timeout;
    std::size_t max_header_bytes;
  } server{current.header_timeout, current.idle_timeout, current.max_header_bytes};
  scanner_.reset();
  idle_ = true;
  // The first request's head must arrive within header_timeout of the accept (the TLS
  // handshake, if any, included); later ones get idle_timeout to start and header_timeout from
  // their first byte.
  auto deadline = first ? accepted_at_ + server.header_timeout
                        : timed_socket::coarse_now() + server.idle_timeout;
  for (;;) {
    // Stray CRLFs between pipelined requests are allowed before a request line (RFC 9112 2.2).
    auto data = std::string_view{static_cast<const char*>(buffer_.data().data()), buffer_.size()};
    std::size_t leading = 0;
    while (leading + 1 < data.size() && data[leading] == '\r' && data[leading + 1] == '\n')
      leading += 2;
    if (leading > 0) {
      buffer_.consume(leading);
      data.remove_prefix(leading);
    }
    if (!data.empty()) {
      if (idle_) {
        idle_ = false;
        if (!first) deadline = timed_socket::coarse_now() + server.header_timeout;
      }
      switch (scanner_.scan(data)) {
        case head_scanner::state::complete:
          co_return scanner_.head_length() > server.max_header_bytes ? head_status::too_large
                                                                      : head_status::ready;
        case head_scanner::state::malformed:
          co_return head_status::malformed;
        case head_scanner::state::need_more:
          if (data.size() >= server.max_header_bytes) co_return head_status::too_large;
          break;
      }
    }
    if (idle_ && worker_.draining()) co_return head_status::closed;
    stream_.expires_at(deadline);
    // Small reads keep an idle connection cheap; a larger head grows the buffer as it comes.
    auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), use_tuple);
    if (ec) co_return head_status::closed;  // EOF, reset, drain or timeout: nothing to answer
    buffer_.commit(n);
  }
}

asio::awaitable<bool> session::handle_request(std::size_t head_length) {
  const auto started = clock::now();
  // The request keeps this snapshot to its end, whatever a reload does meanwhile.
  const std::shared_ptr<const snapshot> snap = worker_.current();
  const auto& server = snap->config().server;

  // The previous request's parsers go, and with them their fields: the arena is free again.
  response_.reset();
  request_.reset();
  arena_.release();
  auto& parser = request_.emplace(std::piecewise_construct, std::make_tuple(),
                                  std::make_tuple(arena_allocator{&arena_}));
  parser.header_limit(static_cast<std::uint32_t>(head_length + 1));
  if (server.max_body_bytes > 0)
    parser.body_limit(server.max_body_bytes);
  else
    parser.body_limit(boost::none);
  beast::error_code ec;
  parser.put(asio::buffer(buffer_.data().data(), head_length), ec);
  buffer_.consume(head_length);

  outcome out;
  out.bytes_in = head_length;
  auto& req = parser.get();
  const std::string_view method = req.method_string();
  std::string path, client_ip;
  std::string_view request_id;
  std::string_view route_name;
  route_series* series = &snap->unrouted();

  auto log_and_return = [&]() {
    const auto elapsed = std::chrono::duration<double>(clock::now() - started).count();
    if (worker_.metrics_on()) {
      series->requests.at(out.status, static_cast<std::size_t>(out.decision)).inc(worker_.slot());
      series->duration->observe(worker_.slot(), elapsed);
    }
    if (server.access_log) {
      const access_entry entry{request_id, client_ip.empty() ? peer_ip_ : client_ip, method,
                               path, route_name, out.upstream, out.status,
                               to_string(out.decision), elapsed * 1000, out.bytes_in,
                               out.bytes_out};
      worker_.log().write(entry);
    }
    return out.keep_alive;
  };

  if (ec == http::error::body_limit) {
    out.status = 413;
    out.decision = decision::error;
    out.bytes_out = co_await respond(413, "payload_too_large", "Request body too large", false);
    co_return log_and_return();
  }
  if (ec || !parser.is_header_done() || framing_problem(req)) {
    out.status = 400;
    out.decision = decision::error;
    out.bytes_out = co_await respond(400, "bad_request", "Malformed request", false);
    co_return log_and_return();
  }
  if (auto absolute = split_absolute_form(req.target())) {
    // RFC 9112 3.2.2: the target's authority replaces Host, and the upstream gets origin-form.
    const std::string authority{absolute->authority};
    req.set(http::field::host, authority);
    req.target(absolute->origin);
  }

  const auto target = req.target();
  const auto query_at = target.find('?');
  path = target == "*" ? std::string{"*"} : normalize_path(target.substr(0, query_at));
  // The client's X-Request-Id, or one of ours, made only when something will carry it (the
  // access log, the request upstream): a 429 with the log off needs none.
  auto generate_request_id = [&] {
    worker_.next_request_id(request_id_);
    request_id = {request_id_.data(), request_id_.size()};
  };
  if (auto it = req.find("X-Request-Id"); it != req.end())
    request_id = it->value();
  else if (server.access_log)
    generate_request_id();

  const auto route_index =
      snap->routes().match(method, host_without_port(req[http::field::host]), path);
  if (!route_index) {
    out.status = 404;
    bool keep = parser.keep_alive() && !worker_.draining();
    if (keep && !parser.is_done()) keep = co_await discard_body(parser);
    out.bytes_out = co_await respond(404, "no_route", "No route matches the request", keep);
    out.keep_alive = keep;
    co_return log_and_return();
  }
  const auto& route = snap->route(*route_index);
  route_name = route.name;
  series = &snap->series_of(*route_index);
  const auto& cfg = snap->config();

  // Who is asking: the address behind trusted proxies, and the consumer behind the API key.
  auto& forwarded = forwarded_;
  std::size_t forwarded_lines = 0;
  for (auto [it, end] = req.equal_range(cfg.identity.forwarded_header);
       it != end && forwarded_lines < forwarded.size(); ++it)
    forwarded[forwarded_lines++] = it->value();
  const auto client_address =
      snap->client_ips().resolve(peer_address_, std::span{forwarded.data(), forwarded_lines});
  // Usually the peer itself, whose text the session already has.
  client_ip = client_address == peer_address_ ? peer_ip_ : client_address.to_string();
  std::optional<std::string> key_hash;
  const config::consumer* consumer = nullptr;
  if (auto it = req.find(cfg.identity.api_key_header); it != req.end() && !it->value().empty()) {
    key_hash = config::sha256_hex(it->value());
    consumer = snap->consumers().find(*key_hash);
  }
  // Without an API key that names one, a verified client certificate may.
  if (!consumer && !stream_.client_certificate().sha256.empty())
    consumer = snap->consumers().find_by_cert(stream_.client_certificate().sha256);
  if (route.auth == config::auth_mode::required && !consumer) {
    out.status = 401;
    out.keep_alive = parser.keep_alive() && !worker_.draining();
    if (out.keep_alive && !parser.is_done()) out.keep_alive = co_await discard_body(parser);
    out.bytes_out = co_await respond(401, "unauthorized", "A valid API key is required",
                                     out.keep_alive);
    co_return log_and_return();
  }

  std::string_view query;
  if (query_at != std::string_view::npos) query = target.substr(query_at + 1);
  // Filled in place when the store answers (its strings reused from request to request), and
  // emptied below when it does not.
  auto& rate_headers = limits_.headers;
  bool rendered = false;
  const auto& limits = snap->limits_of(*route_index);
  if (!limits.empty()) {
    const request_view view{req,      client_ip, path, query, key_hash, consumer,
                            stream_.client_certificate().sha256};
    limits.plan(view, limits_.checks, limits_.applied);
    if (!limits_.checks.empty()) {
      limit::judging how;
      how.now = std::chrono::duration_cast<std::chrono::microseconds>(started.time_since_epoch())
                    .count();
      how.on_failure = route.on_failure.value_or(cfg.storage.on_failure);
      how.local_cache = cfg.storage.local_cache;
      if (cfg.storage.lease) how.lease = &*cfg.storage.lease;
      how.ietf_headers = route.ietf_headers;
      how.legacy_headers = route.legacy_headers;
      auto& limiter = worker_.limiter();
      auto decided = limiter.decide_now(limits_, how);
      if (!decided) decided = co_await limiter.ask_store(limits_, how);
      const auto result = *decided;
      if (result == limit::outcome::failed_open || result == limit::outcome::failed_closed) {
        // The store could not answer: the route's failure mode decided.
        out.decision = decision::error;
        const bool closed = result == limit::outcome::failed_closed;
        if (worker_.metrics_on()) series->failures[closed ? 1 : 0]->inc(worker_.slot());
        if (closed) {
          out.status = 503;
          // (Without a body to drop, no coroutine call: this is the 429s' hot path.)
          out.keep_alive = parser.keep_alive() && !worker_.draining();
          if (out.keep_alive && !parser.is_done())
            out.keep_alive = co_await discard_body(parser);
          out.bytes_out =
              co_await respond(503, "unavailable", "Rate limit store unavailable", out.keep_alive);
          co_return log_and_return();
        }
      } else {
        const auto& applied = limits_.applied;
        const auto& decisions = limits_.result.decisions;
        if (worker_.metrics_on()) {
          for (std::size_t i = 0; i < applied.size(); ++i)
            series->limit_checks[applied[i].index][decisions[i].admitted ? 0 : 1]->inc(
                worker_.slot());
        }
        rendered = true;
        if (result == limit::outcome::shadow_limited) {
          out.decision = decision::shadow_limited;
        } else if (result == limit::outcome::limited) {
          const auto& v = limits_.v;
          out.status = 429;
          out.decision = decision::limited;
          rate_headers.emplace_back("Retry-After", std::to_string(v.retry_after_seconds));
          // (Without a body to drop, no coroutine call: this is the 429s' hot path.)
          out.keep_alive = parser.keep_alive() && !worker_.draining();
          if (out.keep_alive && !parser.is_done())
            out.keep_alive = co_await discard_body(parser);
          body_.clear();
          limit::append_rejection_body(body_, route.name, applied[v.deciding].limit->name,
                                       v.retry_after_seconds);
          out.bytes_out = co_await respond(429, body_, out.keep_alive, &rate_headers);
          co_return log_and_return();
        }
      }
    }
  }

  if (!rendered) rate_headers.clear();
  std::string upstream_target = router::rewrite_path(route, path);
  if (query_at != std::string_view::npos) upstream_target.append(target.substr(query_at));
  // Nobody but the gateway says who the consumer is. (Computed outside the co_await: GCC 12
  // mishandles a conditional expression among a co_await's arguments.)
  std::string_view consumer_name;
  if (consumer) consumer_name = consumer->name;
  if (request_id.empty()) generate_request_id();
  co_await forward(*snap, *route_index, parser, upstream_target, request_id, consumer_name,
                   rate_headers, out);
  co_return log_and_return();
}

asio::awaitable<void> session::forward(const snapshot& snap, std::size_t route_index,
                                       request_parser& parser, std::string_view target,
                                       std::string_view request_id, std::string_view consumer,
                                       const limit::header_list& rate_headers, outcome& out) {
  const auto& server = snap.config().server;
  const auto& upstream = snap.upstream_of(route_index);
  const auto& settings = *upstream.settings;
  auto& req = parser.get();
  auto& pool = worker_.pool();

  const bool client_keep_alive = parser.keep_alive();
  const bool client_http11 = req.version() >= 11;
  const bool is_head = req.method() == http::verb::head;
  const bool has_body = !parser.is_done();
  const bool expects_continue =
      has_body && client_http11 && beast::iequals(req[http::field::expect], "100-continue");
  const auto content_length = parser.content_length();
  const bool chunked = parser.chunked();

  forward_context upstream_head{.peer_ip = peer_ip_,
                                .request_id = request_id,
                                .target = target,
                                .consumer = consumer,
                                .default_host = settings.name,
                                .https = stream_.is_tls(),
                                .client_cert_sha256 = stream_.client_certificate().sha256,
                                .client_cert_subject = stream_.client_certificate().subject,
                                .chunked = chunked,
                                .content_length = std::nullopt};
  if (!chunked && content_length) upstream_head.content_length = *content_length;

  auto count_upstream_error = [&](upstream_error kind) {
    if (worker_.metrics_on())
      snap.upstream_series_of(route_index).errors[static_cast<std::size_t>(kind)]->inc(
          worker_.slot());
  };
  auto fail = [&](unsigned status, std::string_view error,
                  std::string_view message) -> asio::awaitable<void> {
    out.status = status;
    // The request body may be half read (or, with 100-continue, unsent): only a fresh
    // connection is safe after that.
    out.keep_alive = false;
    out.bytes_out += co_await respond(status, error, message, false);
  };

  // The client hears 100 Continue before anything else happens: it may be waiting for it.
  if (expects_continue) {
    static constexpr std::string_view continue_line = "HTTP/1.1 100 Continue\r\n\r\n";
    stream_.expires_after(server.idle_timeout);
    auto [wec, n] = co_await asio::async_write(stream_, asio::buffer(continue_line), use_tuple);
    if (wec) {
      out.keep_alive = false;
      co_return;  // client gone
    }
    out.bytes_out += n;
  }

  // The first piece of the body is read before any upstream is chosen, so that a body that is
  // broken from its first byte (a bad chunk size) is refused without reaching the upstream.
  auto& body = req.body();
  worker::relay_buffer relay{nullptr, {&worker_}};
  bool piece_pending = false;
  if (has_body) {
    relay = worker_.take_relay_buffer();
    // Beast reads no more than the buffer's spare capacity per call: give it room for bodies.
    buffer_.reserve(relay_buffer_size);
    if (auto ec = co_await read_body_piece(parser, relay.get(), out)) {
      co_await refuse_body(ec, out);
      co_return;
    }
    piece_pending = true;
  }

  // Pick a server: round robin over the healthy ones; a connect failure moves on to the next,
  // which is safe because nothing of the request has been sent yet.
  const auto now = timed_socket::coarse_now();
  auto& candidates = candidates_;
  pool.candidates(upstream, now, candidates);
  if (candidates.empty()) {
    co_await fail(503, "unavailable", "No healthy upstream server");
    co_return;
  }
  // A connection to `server`: TCP within connect_timeout, then, with upstream TLS, the handshake
  // within what is left of it (SNI and the certificate check name tls.server_name or the
  // server's host as written). A server that cannot be reached, or that drops or stalls the
  // handshake, is a connect failure: the next server is tried, and repeated ones eject it. One
  // whose certificate does not verify, or that refuses the gateway's, counts as kind tls, and
  // is otherwise a connect failure too (as with nginx and Envoy): one server with a bad
  // certificate is ejected rather than failing its share of requests.
  enum class opened { ok, unreachable, tls_refused };
  auto host_of = [&](const tcp::endpoint& server) -> const std::string& {
    std::size_t i = 0;
    while (i + 1 < upstream.servers.size() && upstream.servers[i] != server) ++i;
    return upstream.hosts[i];
  };
  // `server` by value: the retry passes the address of the connection `c` replaces.
  auto open_connection = [&](tcp::endpoint server,
                             std::unique_ptr<upstream_connection>& c) -> asio::awaitable<opened> {
    c = std::make_unique<upstream_connection>(worker_.io());
    c->server = server;
    c->stream.expires_after(settings.connect_timeout);
    auto [ec] = co_await c->stream.async_connect(server, use_tuple);
    if (!ec) {
      beast::error_code ignored;
      c->stream.socket().set_option(tcp::no_delay(true), ignored);
      if (upstream.tls) {
        c->stream.use_client_tls(upstream.tls, host_of(server));
        ec = co_await c->stream.handshake();
        if (ec && is_tls_refusal(ec)) {
          spdlog::debug("TLS to upstream {} ({}) refused: {}", settings.name, c->label(),
                        ec.message());
          count_upstream_error(upstream_error::tls);
          pool.record_connect_failure(server, settings, clock::now());
          c.reset();
          co_return opened::tls_refused;
        }
      }
    }
    if (ec) {
      pool.record_connect_failure(server, settings, clock::now());
      count_upstream_error(upstream_error::connect);
      c.reset();
      co_return opened::unreachable;
    }
    pool.record_connect_success(server);
    co_return opened::ok;
  };
  std::unique_ptr<upstream_connection> conn;
  bool reused = false;
  bool tls_refused = false;
  for (const auto& candidate : candidates) {
    // A bodiless request can be replayed if the connection turns out closed: no probe needed.
    if ((conn = pool.take_idle(candidate, has_body, upstream.tls.get()))) {
      reused = true;
      break;
    }
    const auto how = co_await open_connection(candidate, conn);
    if (how == opened::ok) break;
    tls_refused = tls_refused || how == opened::tls_refused;
  }
  if (!conn) {
    co_await fail(502, "bad_gateway",
                  tls_refused ? "TLS to the upstream failed" : "Upstream refused the connection");
    co_return;
  }
  out.upstream = conn->label();

  auto& response_reader = response_;
  auto& head = head_;
  const bool chunked_upstream = chunked;
  const auto sent_at = clock::now();

  // Send the head and the body, then read the response head. A bodiless request that failed on
  // a reused connection before any response byte is retried once on a fresh connection: the
  // upstream may have closed the idle connection just as we picked it.
  for (int attempt = 0;; ++attempt) {
    head.clear();
    write_upstream_head(req, upstream_head, head);
    // The head leaves together with the first piece of the body (or alone): one write.
    beast::error_code upstream_ec;
    for (;;) {
      if (has_body && !piece_pending) {
        if (auto ec = co_await read_body_piece(parser, relay.get(), out)) {
          co_await refuse_body(ec, out);
          co_return;
        }
      }
      piece_pending = false;
      const bool last = !has_body || parser.is_done();
      conn->stream.expires_after(settings.timeout);
      auto [wec, wn] = co_await write_piece(conn->stream, head, relay.get(),
                                            has_body ? body.size : 0, chunked_upstream,
                                            has_body && last);
      upstream_ec = wec;
      if (upstream_ec || last) break;
    }

    // The response head; interim 1xx responses are consumed (the gateway answered
    // 100-continue itself) and the next head read.
    constexpr int max_interim_heads = 16;
    int interim_heads = 0;
    while (!upstream_ec) {
      response_reader.emplace(std::piecewise_construct, std::make_tuple(),
                              std::make_tuple(arena_allocator{&arena_}));
      response_reader->body_limit(boost::none);
      response_reader->header_limit(64 * 1024);
      if (is_head) response_reader->skip(true);
      conn->stream.expires_after(settings.timeout);
      while (!upstream_ec && !response_reader->is_header_done()) {
        auto [rec, rn] = co_await read_some(conn->stream, conn->buffer, *response_reader);
        upstream_ec = rec;
      }
      if (upstream_ec) break;
      const auto status = response_reader->get().result_int();
      if (status >= 200) break;
      // Each interim head stays in the request's arena until the request ends: an upstream
      // that sends them without end is broken, not slow.
      if (++interim_heads > max_interim_heads) {
        upstream_ec = http::error::bad_status;
        break;
      }
      if (status == 101) upstream_ec = http::error::bad_version;  // Upgrade was never forwarded
    }
    if (!upstream_ec) break;

    const bool nothing_received = !response_reader || !response_reader->got_some();
    if (reused && !has_body && attempt == 0 && nothing_received && !is_timeout(upstream_ec)) {
      const auto how = co_await open_connection(conn->server, conn);
      if (how == opened::ok) {
        reused = false;
        continue;
      }
      // Counted by open_connection (connect or tls).
      co_await fail(502, "bad_gateway",
                    how == opened::tls_refused ? "TLS to the upstream failed"
                                               : "Upstream refused the connection");
      co_return;
    }
    if (is_timeout(upstream_ec)) {
      count_upstream_error(upstream_error::timeout);
      co_await fail(504, "gateway_timeout", "Upstream did not answer in time");
    } else {
      // A connection that ended (or was reset, or cut without close_notify) is a reset; a TLS
      // alert is TLS (over TLS 1.3 a server refuses the gateway's certificate only after the
      // handshake, on the first read); anything else is a broken reply.
      const bool reset = upstream_ec == http::error::end_of_stream ||
                         upstream_ec == asio::error::connection_reset ||
                         upstream_ec == asio::error::eof ||
                         upstream_ec == asio::error::broken_pipe ||
                         upstream_ec == http::error::partial_message ||
                         upstream_ec == asio::ssl::error::stream_truncated;
      if (!reset && is_tls_refusal(upstream_ec)) {
        count_upstream_error(upstream_error::tls);
        co_await fail(502, "bad_gateway", "TLS to the upstream failed");
      } else {
        count_upstream_error(reset ? upstream_error::reset : upstream_error::protocol);
        co_await fail(502, "bad_gateway",
                      "Upstream reset the connection or sent an invalid response");
      }
    }
    co_return;
  }

  // The response: head rewritten for the client, body relayed as it arrives.
  auto& res = response_reader->get();
  if (worker_.metrics_on()) {
    auto& up = snap.upstream_series_of(route_index);
    up.responses.at(res.result_int()).inc(worker_.slot());
    up.duration->observe(worker_.slot(),
                         std::chrono::duration<double>(clock::now() - sent_at).count());
  }
  const bool upstream_keep_alive = response_reader->keep_alive();
  const bool response_has_body = !response_reader->is_done();
  bool keep_alive = client_keep_alive && !worker_.draining();
  bool chunked_down = false;
  if (response_has_body && !response_reader->content_length()) {
    // Chunked or delimited by the upstream closing: re-chunk for HTTP/1.1 clients; an HTTP/1.0
    // client learns the end from the connection closing.
    if (client_http11)
      chunked_down = true;
    else
      keep_alive = false;
  }
  out.status = res.result_int();
  out.keep_alive = keep_alive;

  auto& response_body = res.body();
  head.clear();
  write_downstream_head(
      res, {rate_headers, chunked_down, !keep_alive, !client_http11 && keep_alive}, head);
  if (response_has_body) {
    if (!relay) relay = worker_.take_relay_buffer();
    conn->buffer.reserve(relay_buffer_size);
  }
  // Each write carries what the upstream has sent so far; the first also carries the head, so a
  // small response (usually read whole with its head) leaves in a single write.
  for (bool head_sent = false;; head_sent = true) {
    std::size_t produced = 0;
    while (!response_reader->is_done()) {
      response_body.data = relay.get();
      response_body.size = relay_buffer_size;
      conn->stream.expires_after(settings.timeout);
      auto [rec, rn] =
          co_await read_some(conn->stream, conn->buffer, *response_reader);
      if (rec == http::error::need_buffer) rec = {};
      if (rec) {
        if (!head_sent) {
          count_upstream_error(is_timeout(rec) ? upstream_error::timeout : upstream_error::reset);
          co_await fail(502, "bad_gateway", "Upstream reset the connection or sent an invalid response");
          co_return;
        }
        // Too late for an error response: the client sees the connection end early.
        out.keep_alive = false;
        co_return;
      }
      produced = relay_buffer_size - response_body.size;
      if (produced > 0) break;
    }
    const bool last = response_reader->is_done();
    stream_.expires_after(server.idle_timeout);
    auto [wec, wn] = co_await write_piece(stream_, head, relay.get(), produced, chunked_down,
                                          chunked_down && last);
    out.bytes_out += wn;
    if (wec) {
      out.keep_alive = false;
      co_return;
    }
    if (last) break;
  }

  if (upstream_keep_alive && !response_reader->need_eof() && conn->buffer.size() == 0 &&
      !conn->stream.has_buffered_input())
    pool.give_back(std::move(conn), settings.max_idle_per_server);
}

asio::awaitable<beast::error_code> session::read_body_piece(request_parser& parser, char* relay,
                                                            outcome& out) {
  auto& body = parser.get().body();
  const auto idle_timeout = worker_.current()->config().server.idle_timeout;
  for (;;) {
    body.data = relay;
    body.size = relay_buffer_size;
    stream_.expires_after(idle_timeout);
    auto [ec, n] = co_await read_some(stream_, buffer_, parser);
    if (ec == http::error::need_buffer) ec = {};
    out.bytes_in += n;
    if (ec) co_return ec;
    const auto produced = relay_buffer_size - body.size;
    if (produced == 0 && !parser.is_done()) continue;
    body.data = produced ? relay : nullptr;
    body.size = produced;
    body.more = !parser.is_done();
    co_return ec;
  }
}

asio::awaitable<void> session::refuse_body(beast::error_code ec, outcome& out) {
  out.keep_alive = false;
  if (ec == http::error::body_limit) {
    out.status = 413;
    out.decision = decision::error;
    out.bytes_out += co_await respond(413, "payload_too_large", "Request body too large", false);
  } else if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
             is_timeout(ec) || ec == asio::error::connection_reset ||
             ec == asio::error::operation_aborted) {
    out.status = 499;  // the client went away: there is nobody to answer (nginx's 499)
  } else {
    out.status = 400;
    out.bytes_out += co_await respond(400, "bad_request", "Malformed request body", false);
  }
}

asio::awaitable<std::size_t> session::respond(unsigned status, std::string_view error,
                                              std::string_view message, bool keep_alive) {
  body_ = error_json(error, message);
  co_return co_await respond(status, body_, keep_alive);
}

asio::awaitable<std::size_t> session::respond(unsigned status, std::string_view json,
                                              bool keep_alive,
                                              const limit::header_list* extra_headers) {
  // Written by hand into one reused buffer: the gateway's own answers (429s above all) are on a
  // hot path, and Beast's serializer walks its header list through several buffer-sequence
  // layers. Whatever head_ held (an upstream head of a request being failed) is done with.
  auto& out = head_;
  out.clear();
  out += "HTTP/1.1 ";
  append_decimal(out, status);
  out += ' ';
  out += http::obsolete_reason(static_cast<http::status>(status));
  out += "\r\nContent-Type: application/json\r\nContent-Length: ";
  append_decimal(out, json.size());
  out += "\r\n";
  if (extra_headers) {
    for (const auto& [name, value] : *extra_headers) {
      out += name;
      out += ": ";
      out += value;
      out += "\r\n";
    }
  }
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  out += json;
  stream_.expires_after(worker_.current()->config().server.idle_timeout);
  auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(out), use_tuple);
  co_return n;
}

asio::awaitable<bool> session::discard_body(request_parser& parser) {
  if (parser.is_done()) co_return true;
  const auto& req = parser.get();
  // With 100-continue the client waits for us before sending the body it never needs to send.
  if (beast::iequals(req[http::field::expect], "100-continue")) co_return false;
  const auto length = parser.content_length();
  if (!length || *length > discard_body_limit) co_return false;
  // Into a relay buffer: an array here would make the coroutine's frame that large.
  auto sink = worker_.take_relay_buffer();
  auto& body = parser.get().body();
  while (!parser.is_done()) {
    body.data = sink.get();
    body.size = relay_buffer_size;
    stream_.expires_after(worker_.current()->config().server.idle_timeout);
    auto [ec, n] = co_await read_some(stream_, buffer_, parser);
    if (ec && ec != http::error::need_buffer) co_return false;
  }
  co_return true;
}

asio::awaitable<void> session::refuse_plain_http() {
  // nginx's answer to the same mistake: a plain-text 400 that says so, then the connection
  // closed after a moment of reading what the client still sends (so that it reads the answer
  // rather than a reset).
  const auto body = error_json("bad_request", "Plain HTTP request sent to the TLS port; use https");
  std::string reply =
      "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
      "Content-Length: ";
  append_decimal(reply, body.size());
  reply += "\r\n\r\n";
  reply += body;
  auto& raw = stream_.transport();
  raw.expires_after(std::chrono::seconds(1));
  auto [wec, written] = co_await asio::async_write(raw, asio::buffer(reply), use_tuple);
  beast::error_code ec;
  if (!wec) {
    raw.socket().shutdown(tcp::socket::shutdown_send, ec);
    std::array<char, 4096> sink;
    std::size_t drained = 0;
    while (!ec && drained < 64 * 1024) {
      auto [rec, n] = co_await raw.async_read_some(asio::buffer(sink), use_tuple);
      ec = rec;
      drained += n;
    }
  }
  raw.socket().close(ec);
}

asio::awaitable<void> session::close_gracefully() {
  // TLS says it is closing first (close_notify), so the client can tell an end from a cut.
  if (stream_.is_tls()) {
    stream_.expires_after(std::chrono::seconds(1));
    co_await stream_.shutdown_tls();
  }
  // Half-close, then read what the client still sends for a moment, so that closing with
  // unread data does not reset the connection before the client has read our last response.
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  std::array<char, 4096> sink;
  std::size_t drained = 0;
  stream_.expires_after(std::chrono::seconds(1));
  while (drained < 256 * 1024) {
    auto [rec, n] = co_await stream_.async_read_some(asio::buffer(sink), use_tuple);
    if (rec) break;
    drained += n;
  }
  stream_.socket().close(ec);
}

}  // namespace gw::proxy
