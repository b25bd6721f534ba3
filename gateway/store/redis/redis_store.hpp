// The Redis store client of one worker: its own connections (storage.redis.connections_per_worker)
// on the worker's io_context. All checks of one request are issued in the same turn of the
// event loop, so they leave in one write and come back in one round trip.
#pragma once

#include "config/config.hpp"
#include "store/events.hpp"
#include "store/redis/connection.hpp"
#include "store/store.hpp"

#include <boost/asio/io_context.hpp>

#include <memory>
#include <optional>
#include <vector>

namespace gw::store::redis {

class redis_store final : public store {
 public:
  // `password`: already read from storage.redis.password_env (empty = none).
  redis_store(boost::asio::io_context& io, const config::redis_settings& settings,
              std::string password, store_events* events);
  ~redis_store() override;

  std::string_view backend() const override { return "redis"; }
  boost::asio::awaitable<check_result> check(std::span<const limit_check> checks) override;
  bool available() const override;

  // As check(), with `now` instead of Redis TIME: for tests comparing the stores case by case.
  boost::asio::awaitable<check_result> check_at(std::span<const limit_check> checks,
                                                std::optional<limit::micros> now);

  // Totals over this client's connections, for tests and benchmarks.
  std::uint64_t commands_sent() const;
  std::uint64_t writes() const;

 private:
  connection* pick();

  boost::asio::io_context& io_;
  std::vector<std::shared_ptr<connection>> connections_;
  std::size_t next_ = 0;
};

}  // namespace gw::store::redis
