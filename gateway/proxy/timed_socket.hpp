// A TCP socket with a deadline, for the proxy's two sides. Like beast::tcp_stream, the deadline
// only counts while an operation is pending and a timed-out operation fails with
// beast::error::timeout (the socket is closed). Unlike it, setting the deadline and starting an
// operation touch no timer: one timer per socket is armed lazily and, when it fires early because
// the deadline moved later, re-armed once. beast::tcp_stream arms and cancels a timer for every
// read and write, which cost a proxied request more than its header parsing.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>

#include <chrono>
#include <ctime>
#include <memory>

namespace gw::proxy {

class timed_socket {
 public:
  using clock = std::chrono::steady_clock;
  using executor_type = boost::asio::ip::tcp::socket::executor_type;

  explicit timed_socket(boost::asio::ip::tcp::socket socket);
  explicit timed_socket(boost::asio::io_context& io);
  ~timed_socket();
  timed_socket(const timed_socket&) = delete;
  timed_socket& operator=(const timed_socket&) = delete;

  executor_type get_executor() { return socket_.get_executor(); }
  boost::asio::ip::tcp::socket& socket() { return socket_; }
  // For a TLS stream on top (Asio's ssl::stream takes its executor from here).
  using lowest_layer_type = boost::asio::ip::tcp::socket;
  lowest_layer_type& lowest_layer() { return socket_; }
  const lowest_layer_type& lowest_layer() const { return socket_; }
  void cancel() { socket_.cancel(); }

  // The time deadlines are set from: the kernel's last tick (CLOCK_MONOTONIC_COARSE, the same
  // clock as steady_clock's, up to a few milliseconds behind), read without the TSC. A request
  // sets and checks several deadlines; they need no finer time than their timer does.
  static clock::time_point coarse_now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return clock::time_point{std::chrono::seconds{ts.tv_sec} + std::chrono::nanoseconds{ts.tv_nsec}};
  }

  void expires_after(clock::duration d) { expires_at(coarse_now() + d); }
  void expires_at(clock::time_point t) { deadline_ = t; }
  void expires_never() { deadline_ = clock::time_point::max(); }

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& b) {
          begin();
          socket_.async_read_some(b, [this, h = std::move(handler)](
                                         boost::system::error_code ec, std::size_t n) mutable {
            ec = end(ec);
            std::move(h)(ec, n);
          });
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& b) {
          begin();
          socket_.async_write_some(b, [this, h = std::move(handler)](
                                          boost::system::error_code ec, std::size_t n) mutable {
            ec = end(ec);
            std::move(h)(ec, n);
          });
        },
        token, buffers);
  }

  template <class Token>
  auto async_connect(const boost::asio::ip::tcp::endpoint& endpoint, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler, const boost::asio::ip::tcp::endpoint& ep) {
          begin();
          socket_.async_connect(ep, [this, h = std::move(handler)](
                                        boost::system::error_code ec) mutable {
            ec = end(ec);
            std::move(h)(ec);
          });
        },
        token, endpoint);
  }

 private:
  // An operation starts: make sure the timer will look at the deadline in time.
  void begin();
  // An operation ended: a cancellation caused by the deadline is reported as a timeout.
  boost::system::error_code end(boost::system::error_code ec);
  void arm(clock::time_point t);
  void on_timer();

  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  clock::time_point deadline_ = clock::time_point::max();
  clock::time_point armed_for_ = clock::time_point::max();
  bool armed_ = false;
  bool timed_out_ = false;
  int pending_ = 0;
  // Cleared by the destructor: a timer completion already queued must not touch a dead socket.
  std::shared_ptr<timed_socket*> alive_;
};

}  // namespace gw::proxy
