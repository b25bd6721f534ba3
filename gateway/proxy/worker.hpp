// One worker thread's share of the proxy: its own io_context, SO_REUSEPORT acceptor, upstream
// pool, access log and current snapshot. Sessions of a worker only ever touch that worker.
#pragma once

#include "limit/limiter.hpp"
#include "proxy/access_log.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/upstream_pool.hpp"
#include "metrics/metrics.hpp"
#include "store/events.hpp"
#include "store/store.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_set>

namespace gw::proxy {

class session;

// What all workers share: plain atomics, touched once per connection, not per request.
struct shared_state {
  std::atomic<std::size_t> connections{0};
  std::atomic<bool> draining{false};
};

class worker {
 public:
  // Makes the store client that answers this worker's limit checks, on the worker's io_context:
  // the one memory store all workers share, or the worker's own Redis connections.
  using store_factory = std::function<std::shared_ptr<store::store>(
      boost::asio::io_context&, store::store_events*)>;

  // `metrics_on` false leaves every series untouched (the benchmark of what metrics cost).
  worker(unsigned index, shared_state& shared, std::shared_ptr<const snapshot> initial,
         const store_factory& make_store, metrics::registry& metrics, bool metrics_on);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  // Binds this worker's acceptor (SO_REUSEPORT, so every worker binds the same address).
  // Throws boost::system::system_error when the address cannot be bound.
  void listen(const config::endpoint& address);
  void run();   // on the worker's own thread, until stop()
  void stop();

  // Thread-safe: called from the control thread.
  void post_snapshot(std::shared_ptr<const snapshot> next);
  void post_drain();
  std::size_t session_count() const { return session_count_.load(std::memory_order_relaxed); }
  bool store_available() const { return limiter_->store_available(); }

  // For sessions, on this worker's thread.
  boost::asio::io_context& io() { return *io_; }
  const std::shared_ptr<const snapshot>& current() const { return snapshot_; }
  upstream_pool& pool() { return pool_; }
  limit::limiter& limiter() { return *limiter_; }
  bool metrics_on() const { return metrics_on_; }

  // Body relay buffers, recycled within the worker: a fresh 32 KiB allocation per request makes
  // malloc grow and trim its heap over and over.
  static constexpr std::size_t relay_buffer_size = 32 * 1024;
  struct relay_buffer_deleter {
    worker* owner;
    void operator()(char* p) const { owner->recycle(p); }
  };
  using relay_buffer = std::unique_ptr<char[], relay_buffer_deleter>;
  relay_buffer take_relay_buffer();
  std::size_t slot() const { return index_; }  // this worker's slot in every metric series
  access_log& log() { return *log_; }
  bool draining() const { return shared_.draining.load(std::memory_order_relaxed); }
  // A new X-Request-Id: 32 hex digits, written into `out`.
  void next_request_id(std::array<char, 32>& out);
  void add(session* s);
  void remove(session* s);

 private:
  boost::asio::awaitable<void> accept_loop();
  void recycle(char* buffer);

  // Redis client events -> this worker's metric slots.
  class store_observer final : public store::store_events {
   public:
    store_observer(metrics::histogram* commands, metrics::histogram* checks, std::size_t slot,
                   bool on)
        : commands_(commands), checks_(checks), slot_(slot), on_(on) {}
    void batch_written(std::size_t commands, std::size_t checks) override {
      if (!on_) return;
      commands_->observe(slot_, static_cast<double>(commands));
      checks_->observe(slot_, static_cast<double>(checks));
    }

   private:
    metrics::histogram* commands_;
    metrics::histogram* checks_;
    std::size_t slot_;
    bool on_;
  };

  unsigned index_;
  shared_state& shared_;
  bool metrics_on_;
  store_observer store_observer_;
  std::unique_ptr<boost::asio::io_context> io_;
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  std::shared_ptr<const snapshot> snapshot_;
  std::unique_ptr<limit::limiter> limiter_;  // with the store client, on this worker's io
  upstream_pool pool_;
  std::unique_ptr<access_log> log_;
  std::unordered_set<session*> sessions_;
  std::atomic<std::size_t> session_count_{0};
  std::vector<std::unique_ptr<char[]>> spare_relay_buffers_;
  std::mt19937_64 random_;
  std::uint64_t request_counter_ = 0;
};

}  // namespace gw::proxy
