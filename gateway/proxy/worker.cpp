// Worker thread plumbing: accepting, snapshot updates, draining (see worker.hpp).
#include "proxy/worker.hpp"

#include "proxy/session.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <spdlog/spdlog.h>


namespace gw::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

worker::worker(unsigned index, shared_state& shared, std::shared_ptr<const snapshot> initial,
               const store_factory& make_store, metrics::registry& metrics, bool metrics_on)
    : index_(index),
      shared_(shared),
      metrics_on_(metrics_on),
      store_observer_(metrics.redis_batch_commands(), metrics.redis_batch_checks(), index,
                      metrics_on),
      io_(std::make_unique<asio::io_context>(1)),
      snapshot_(std::move(initial)),
      limiter_(std::make_unique<limit::limiter>(make_store(*io_, &store_observer_),
                                                metrics_on ? &metrics : nullptr, index,
                                                io_.get())),
      log_(std::make_unique<access_log>(*io_)),
      random_(std::random_device{}()) {}

worker::~worker() {
  // Idle upstream sockets and the sessions' coroutine frames must go while the io_context that
  // owns their registrations still exists, and before the members the sessions refer to.
  pool_.clear();
  acceptor_.reset();
  limiter_.reset();
  log_->flush();
  io_.reset();
}

void worker::listen(const config::endpoint& address) {
  const tcp::endpoint ep{asio::ip::make_address(address.host), address.port};
  acceptor_.emplace(*io_);
  acceptor_->open(ep.protocol());
  acceptor_->set_option(asio::socket_base::reuse_address(true));
  acceptor_->set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
  acceptor_->bind(ep);
  acceptor_->listen(asio::socket_base::max_listen_connections);
  asio::co_spawn(*io_, accept_loop(), asio::detached);
}

void worker::run() {
  // Keeps run() going while the worker has no socket at all (drained, between reloads).
  auto guard = asio::make_work_guard(*io_);
  io_->run();
}

void worker::stop() { io_->stop(); }

void worker::post_snapshot(std::shared_ptr<const snapshot> next) {
  asio::post(*io_, [this, next = std::move(next)]() mutable { snapshot_ = std::move(next); });
}

void worker::post_drain() {
  asio::post(*io_, [this] {
    if (acceptor_) acceptor_->close();
    // Leased units go back while the loop still runs to send them (a lease taken during the
    // drain is lost at exit, which only admits less until its window ends).
    limiter_->release_all();
    // Copy: closing a session may end it, which removes it from the set.
    const std::vector<session*> current(sessions_.begin(), sessions_.end());
    for (auto* s : current) s->close_if_idle();
  });
}

void worker::next_request_id(std::array<char, 32>& id) {
  // Random per worker and process, a counter within: unique without coordination.
  static constexpr char hex[] = "0123456789abcdef";
  const std::uint64_t parts[2] = {random_(), ++request_counter_ ^ (std::uint64_t{index_} << 56)};
  for (int p = 0; p < 2; ++p)
    for (int i = 0; i < 16; ++i) id[p * 16 + i] = hex[(parts[p] >> (60 - 4 * i)) & 0xf];
}

worker::relay_buffer worker::take_relay_buffer() {
  if (spare_relay_buffers_.empty())
    return relay_buffer{std::make_unique_for_overwrite<char[]>(relay_buffer_size).release(),
                        relay_buffer_deleter{this}};
  auto buffer = std::move(spare_relay_buffers_.back());
  spare_relay_buffers_.pop_back();
  return relay_buffer{buffer.release(), relay_buffer_deleter{this}};
}

void worker::recycle(char* buffer) {
  // Keep a few for the next requests; more than that is memory a quiet worker does not need.
  if (spare_relay_buffers_.size() < 64)
    spare_relay_buffers_.emplace_back(buffer);
  else
    delete[] buffer;
}

void worker::add(session* s) {
  sessions_.insert(s);
  session_count_.store(sessions_.size(), std::memory_order_relaxed);
}

void worker::remove(session* s) {
  sessions_.erase(s);
  session_count_.store(sessions_.size(), std::memory_order_relaxed);
}

asio::awaitable<void> worker::accept_loop() {
  asio::steady_timer backoff{*io_};
  for (;;) {
    auto [ec, socket] = co_await acceptor_->async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
      // Out of descriptors or similar: wait a little instead of spinning on the error.
      spdlog::warn("accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    const auto limit = snapshot_->config().server.max_connections;
    if (shared_.connections.fetch_add(1, std::memory_order_relaxed) >= limit) {
      shared_.connections.fetch_sub(1, std::memory_order_relaxed);
      continue;  // the socket closes as it goes out of scope: the connection is refused
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto s = std::make_shared<session>(*this, std::move(socket));
    asio::co_spawn(*io_, [s]() { return s->run(); },
                   [this](std::exception_ptr e) {
                     shared_.connections.fetch_sub(1, std::memory_order_relaxed);
                     if (!e) return;
                     try {
                       std::rethrow_exception(e);
                     } catch (const std::exception& ex) {
                       spdlog::error("session ended by exception: {}", ex.what());
                     }
                   });
  }
}

}  // namespace gw::proxy
