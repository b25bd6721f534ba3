// The Redis store client of one worker: its own connections (storage.redis.connections_per_worker)
// on the worker's io_context. The checks of every request that arrive during one turn of the
// event loop are queued, and at the end of the turn leave as one EVALSHA per algorithm (see
// scripts.hpp): one command, one socket write and one round trip for the whole turn, and Redis
// runs one script instead of one per request.
#pragma once

#include "config/config.hpp"
#include "store/events.hpp"
#include "store/redis/connection.hpp"
#include "store/store.hpp"

#include <boost/asio/io_context.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

  // The most checks one EVALSHA carries; a turn with more sends several.
  static constexpr std::size_t max_checks_per_call = 256;

 private:
  struct waiter;
  struct queued {
    const limit_check* check;  // lives in the awaiting request, as does the waiter
    waiter* owner;
    std::size_t index;  // in the request's checks
    std::optional<limit::micros> now;
  };
  using group = std::vector<queued>;  // one call: same algorithm, same `now`

  connection* pick();
  void done(waiter& w, error_kind error);  // one of w's checks is answered
  void resume_ready();
  void flush();
  void send(connection& conn, group calls, bool by_source);

  boost::asio::io_context& io_;
  std::vector<std::shared_ptr<connection>> connections_;
  std::size_t next_ = 0;
  std::vector<queued> queue_;  // this turn's checks; a flush is posted while it is not empty
  std::vector<waiter*> ready_;  // answered; a resume_ready is posted while it is not empty
  std::vector<waiter*> resuming_;
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // for the posted flush and resume
  // Reused for every command built: the argument text and the views into it.
  std::string arena_;
  std::vector<std::size_t> ends_;
  std::vector<std::string_view> args_;
  std::vector<const limit::policy*> policies_;  // of the call being built
  std::vector<std::size_t> policy_of_;
};

}  // namespace gw::store::redis
