// The fault proxy: an accept loop and, per connection, two relay coroutines (one each way) on a
// private io_context and thread. The fault is read before every chunk is relayed, so a change
// reaches open connections at their next bytes.
#include "support/fault_proxy.hpp"

#include <boost/asio.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

namespace gw::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Both sockets of a connection; closed together, with a reset when asked to.
struct link {
  tcp::socket client, server;
  // It lost bytes to a black hole: a TCP stream never skips bytes and goes on, so once the
  // black hole is gone this connection is reset, as one a partition outlived would be.
  bool broken = false;
  explicit link(asio::io_context& io) : client(io), server(io) {}
  void close(bool reset) {
    boost::system::error_code ignored;
    for (auto* s : {&client, &server}) {
      if (!s->is_open()) continue;
      if (reset) s->set_option(asio::socket_base::linger(true, 0), ignored);
      s->close(ignored);
    }
  }
};
}  // namespace

struct fault_proxy::state {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::uint16_t target = 0;
  std::thread thread;

  std::mutex mutex;  // guards the fault settings
  fault current = fault::none;
  std::chrono::milliseconds pace{0};
  std::size_t reset_budget = 0;  // reply bytes left before the reset
  std::atomic<std::size_t> accepted{0}, open{0};

  struct setting {
    fault f;
    std::chrono::milliseconds pace;
  };
  setting read() {
    std::lock_guard lock{mutex};
    return {current, pace};
  }
  // How many of `n` reply bytes may go before the reset; 0 once it is due.
  std::size_t spend_reset(std::size_t n) {
    std::lock_guard lock{mutex};
    const auto k = std::min(n, reset_budget);
    reset_budget -= k;
    return k;
  }

  asio::awaitable<void> relay(std::shared_ptr<link> l, bool to_client) {
    auto& from = to_client ? l->server : l->client;
    auto& to = to_client ? l->client : l->server;
    std::array<char, 16 * 1024> buffer;
    asio::steady_timer timer{io};
    for (;;) {
      auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer), use_tuple);
      if (ec) break;
      auto s = read();
      if (s.f == fault::black_hole) {  // read and dropped
        l->broken = true;
        continue;
      }
      if (l->broken) {
        l->close(true);
        --open;
        co_return;
      }
      if (s.f == fault::delay && s.pace.count() > 0) {
        timer.expires_after(s.pace);
        co_await timer.async_wait(use_tuple);
      }
      if (to_client && s.f == fault::reset_reply) {
        const auto k = spend_reset(n);
        if (k > 0) {
          auto [werr, w] = co_await asio::async_write(to, asio::buffer(buffer.data(), k), use_tuple);
          if (werr) break;
        }
        if (k < n) break;  // the reset is due: the rest never goes
        continue;
      }
      if (to_client && s.f == fault::drip) {
        bool failed = false;
        for (std::size_t i = 0; i < n && !failed; ++i) {
          auto [werr, w] = co_await asio::async_write(to, asio::buffer(buffer.data() + i, 1),
                                                       use_tuple);
          failed = static_cast<bool>(werr);
          timer.expires_after(s.pace);
          co_await timer.async_wait(use_tuple);
        }
        if (failed) break;
        continue;
      }
      auto [werr, w] = co_await asio::async_write(to, asio::buffer(buffer.data(), n), use_tuple);
      if (werr) break;
    }
    const bool reset = read().f == fault::reset_reply;
    if (l->client.is_open() || l->server.is_open()) {
      l->close(reset);
      --open;
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<link> l) {
    auto [ec] = co_await l->server.async_connect({asio::ip::make_address("127.0.0.1"), target},
                                                 use_tuple);
    if (ec) {
      l->close(true);
      --open;
      co_return;
    }
    asio::co_spawn(io, relay(l, false), asio::detached);
    asio::co_spawn(io, relay(l, true), asio::detached);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto l = std::make_shared<link>(io);
      auto [ec] = co_await acceptor.async_accept(l->client, use_tuple);
      if (ec) co_return;
      ++accepted;
      ++open;
      asio::co_spawn(io, serve(l), asio::detached);
    }
  }
};

fault_proxy::fault_proxy(std::uint16_t target_port) : state_(std::make_shared<state>()) {
  auto& s = *state_;
  s.target = target_port;
  const tcp::endpoint here{asio::ip::make_address("127.0.0.1"), 0};
  s.acceptor.open(here.protocol());
  s.acceptor.set_option(asio::socket_base::reuse_address(true));
  s.acceptor.bind(here);
  s.acceptor.listen();
  asio::co_spawn(s.io, s.accept_loop(), asio::detached);
  s.thread = std::thread{[&s] { s.io.run(); }};
}

fault_proxy::~fault_proxy() {
  auto& s = *state_;
  s.io.stop();
  if (s.thread.joinable()) s.thread.join();
}

std::uint16_t fault_proxy::port() const { return state_->acceptor.local_endpoint().port(); }

void fault_proxy::set(fault f, std::chrono::milliseconds pace, std::size_t reset_after) {
  std::lock_guard lock{state_->mutex};
  state_->current = f;
  state_->pace = pace;
  state_->reset_budget = reset_after;
}

std::size_t fault_proxy::accepted() const { return state_->accepted; }
std::size_t fault_proxy::open() const { return state_->open; }

}  // namespace gw::test
