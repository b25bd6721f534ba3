// Limit checks as EVALSHA calls (see redis_store.hpp and scripts.hpp).
#include "store/redis/redis_store.hpp"

#include "store/redis/scripts.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <chrono>
#include <functional>

namespace gw::store::redis {

namespace asio = boost::asio;

namespace {

// One request's checks in flight: completes when the last reply is in.
struct batch {
  explicit batch(asio::io_context& io_context) : io(io_context) {}

  asio::io_context& io;
  check_result result;
  std::size_t left = 0;
  std::function<void(check_result)> resume;  // the awaiting request

  void fail(error_kind kind) {
    if (result.error == error_kind::none) result.error = kind;
  }
  void one_done() {
    if (--left > 0) return;
    // Resume the request from the event loop, not from inside hiredis' reply callback.
    asio::post(io, [resume = std::move(resume), r = std::move(result)]() mutable {
      resume(std::move(r));
    });
  }
};

struct number_text {
  char data[24];
  std::size_t size;
  explicit number_text(std::int64_t v) {
    size = static_cast<std::size_t>(std::to_chars(data, data + sizeof data, v).ptr - data);
  }
  std::string_view view() const { return {data, size}; }
};

bool parse_decision(const redisReply* r, limit::decision& d) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) return false;
  for (std::size_t i = 0; i < 4; ++i)
    if (r->element[i]->type != REDIS_REPLY_INTEGER) return false;
  d.admitted = r->element[0]->integer == 1;
  d.remaining = static_cast<std::uint64_t>(std::max<long long>(0, r->element[1]->integer));
  d.reset = r->element[2]->integer;
  d.retry_after = r->element[3]->integer;
  return true;
}

void issue(connection& conn, const std::shared_ptr<batch>& b, std::size_t index,
           const limit_check& check, std::optional<limit::micros> now, bool by_source) {
  const auto& script = script_for(check.policy.algo);
  const auto key = state_key(check.key, check.policy.algo);
  const number_text requests{static_cast<std::int64_t>(check.policy.requests)};
  const number_text window{check.policy.window};
  const number_text burst{static_cast<std::int64_t>(check.policy.burst)};
  const number_text cost{static_cast<std::int64_t>(check.policy.cost)};
  const number_text at{now.value_or(0)};
  std::string_view args[] = {by_source ? "EVAL" : "EVALSHA",
                             by_source ? script.source : std::string_view{script.sha1},
                             "1", key, requests.view(), window.view(), burst.view(), cost.view(),
                             at.view()};
  const std::size_t argc = now ? 9 : 8;

  conn.execute(std::span{args, argc},
               [b, index, &conn, check, now, by_source](error_kind error, const redisReply* r) {
                 if (error != error_kind::none) {
                   b->fail(error);
                 } else if (r->type == REDIS_REPLY_ERROR &&
                            std::string_view{r->str, r->len}.starts_with("NOSCRIPT") &&
                            !by_source) {
                   // Redis lost its scripts (restart, SCRIPT FLUSH): send the source this once,
                   // which also caches it again, and the request does not notice.
                   issue(conn, b, index, check, now, true);
                   return;
                 } else if (!parse_decision(r, b->result.decisions[index])) {
                   b->fail(error_kind::reply);
                 }
                 b->one_done();
               });
}

}  // namespace

redis_store::redis_store(asio::io_context& io, const config::redis_settings& settings,
                         std::string password, store_events* events)
    : io_(io) {
  connection_settings cs;
  cs.host = settings.address.host;
  cs.port = settings.address.port;
  cs.username = settings.username;
  cs.password = std::move(password);
  cs.database = settings.database;
  cs.connect_timeout = settings.connect_timeout;
  cs.command_timeout = settings.command_timeout;
  for (auto a : {limit::algorithm::gcra, limit::algorithm::token_bucket,
                 limit::algorithm::sliding_window, limit::algorithm::sliding_log,
                 limit::algorithm::fixed_window})
    cs.handshake.push_back({"SCRIPT", "LOAD", std::string{script_for(a).source}});
  for (unsigned i = 0; i < std::max(1u, settings.connections_per_worker); ++i) {
    auto conn = std::make_shared<connection>(io, cs, events);
    // Connect from the worker's own thread, like every later hiredis call.
    asio::post(io, [conn] { conn->start(); });
    connections_.push_back(std::move(conn));
  }
}

redis_store::~redis_store() {
  for (auto& c : connections_) c->stop();
}

connection* redis_store::pick() {
  for (std::size_t tried = 0; tried < connections_.size(); ++tried) {
    auto* c = connections_[next_++ % connections_.size()].get();
    if (c->accepting()) return c;
  }
  return nullptr;
}

bool redis_store::available() const {
  for (const auto& c : connections_)
    if (c->current_state() == connection::state::ready) return true;
  return false;
}

asio::awaitable<check_result> redis_store::check(std::span<const limit_check> checks) {
  co_return co_await check_at(checks, std::nullopt);
}

asio::awaitable<check_result> redis_store::check_at(std::span<const limit_check> checks,
                                                    std::optional<limit::micros> now) {
  auto* conn = pick();
  if (!conn || checks.empty()) {
    // Known down: fail now rather than wait out a timeout.
    check_result down;
    if (!checks.empty()) down.error = error_kind::connection;
    co_return down;
  }
  auto b = std::make_shared<batch>(io_);
  b->result.decisions.resize(checks.size());
  b->left = checks.size();
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(check_result)>(
      [&](auto handler) {
        // Boost 1.81's any_completion_handler recurses when copied; a shared handler in a
        // std::function does the same job.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        b->resume = [shared](check_result r) { (*shared)(std::move(r)); };
        for (std::size_t i = 0; i < checks.size(); ++i) issue(*conn, b, i, checks[i], now, false);
      },
      asio::use_awaitable);
}

std::uint64_t redis_store::commands_sent() const {
  std::uint64_t n = 0;
  for (const auto& c : connections_) n += c->commands_sent();
  return n;
}

std::uint64_t redis_store::writes() const {
  std::uint64_t n = 0;
  for (const auto& c : connections_) n += c->writes();
  return n;
}

}  // namespace gw::store::redis
