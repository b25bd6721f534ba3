// Limit checks queued per event-loop turn and sent as EVALSHA calls (see redis_store.hpp and
// scripts.hpp).
#include "store/redis/redis_store.hpp"

#include "store/redis/scripts.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <charconv>
#include <functional>
#include <optional>

namespace gw::store::redis {

namespace asio = boost::asio;

// One request's checks in flight, in the awaiting request's frame: complete when the last
// decision is in. The request's own completion handler is kept here as is (no type erasure, no
// allocation), and resumed by the store's next resume_ready().
struct redis_store::waiter {
  using handler_type =
      asio::async_result<asio::use_awaitable_t<>, void(check_result)>::handler_type;

  explicit waiter(std::size_t checks) : left(checks) { result.decisions.resize(checks); }

  check_result result;
  std::size_t left;
  std::optional<handler_type> handler;

  // Resumes the request, which frees this waiter: nothing of it may be touched after.
  void resume() {
    auto h = std::move(*handler);
    handler.reset();
    std::move(h)(std::move(result));
  }
};

void redis_store::done(waiter& w, error_kind error) {
  if (error != error_kind::none && w.result.error == error_kind::none) w.result.error = error;
  if (--w.left > 0) return;
  // Resumed from the event loop, not from inside hiredis' reply callback; all the requests a
  // reply completes, from one posted handler.
  if (ready_.empty())
    asio::post(io_, [this, alive = std::weak_ptr<char>{alive_}] {
      if (alive.lock()) resume_ready();
    });
  ready_.push_back(&w);
}

void redis_store::resume_ready() {
  ready_.swap(resuming_);
  for (auto* w : resuming_) w->resume();  // may queue checks, never touches resuming_
  resuming_.clear();
}

namespace {

void append_number(std::string& out, std::int64_t v) {
  char text[24];
  out.append(text, static_cast<std::size_t>(std::to_chars(text, text + sizeof text, v).ptr - text));
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
  for (auto& c : connections_) c->stop();  // fails what is in flight
  // What is still waiting resumes with an error, each from its own posted handler (they own
  // what they need; this store is gone by then).
  for (auto& q : queue_) {
    auto& w = *q.owner;
    if (w.result.error == error_kind::none) w.result.error = error_kind::connection;
    if (--w.left == 0) ready_.push_back(&w);
  }
  for (auto* w : ready_)
    asio::post(io_, [w] { w->resume(); });
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
  return check_at(checks, std::nullopt);  // no frame of its own
}

asio::awaitable<check_result> redis_store::check_at(std::span<const limit_check> checks,
                                                    std::optional<limit::micros> now) {
  if (checks.empty()) co_return check_result{};
  if (std::none_of(connections_.begin(), connections_.end(),
                   [](const auto& c) { return c->accepting(); })) {
    // Known down: fail now rather than wait out a timeout.
    check_result down;
    down.error = error_kind::connection;
    co_return down;
  }
  waiter w{checks.size()};
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(check_result)>(
      [&](waiter::handler_type handler) {
        w.handler.emplace(std::move(handler));
        if (queue_.empty())
          asio::post(io_, [this, alive = std::weak_ptr<char>{alive_}] {
            if (alive.lock()) flush();
          });
        for (std::size_t i = 0; i < checks.size(); ++i) queue_.push_back({&checks[i], &w, i, now});
      },
      asio::use_awaitable);
}

void redis_store::flush() {
  auto queue = std::move(queue_);
  queue_.clear();
  // Grouped by algorithm (and `now`, which only tests set), each group in arrival order.
  std::stable_sort(queue.begin(), queue.end(), [](const queued& a, const queued& b) {
    if (a.check->policy.algo != b.check->policy.algo)
      return a.check->policy.algo < b.check->policy.algo;
    return a.now < b.now;
  });
  for (std::size_t begin = 0; begin < queue.size();) {
    std::size_t end = begin + 1;
    while (end < queue.size() && end - begin < max_checks_per_call &&
           queue[end].check->policy.algo == queue[begin].check->policy.algo &&
           queue[end].now == queue[begin].now)
      ++end;
    group calls(queue.begin() + static_cast<std::ptrdiff_t>(begin),
                queue.begin() + static_cast<std::ptrdiff_t>(end));
    begin = end;
    if (auto* conn = pick()) {
      send(*conn, std::move(calls), false);
    } else {
      for (auto& q : calls) done(*q.owner, error_kind::connection);
    }
  }
  queue.clear();
  if (queue_.empty()) queue_ = std::move(queue);  // keep the capacity for the next turn
}

void redis_store::send(connection& conn, group calls, bool by_source) {
  const auto algo = calls.front().check->policy.algo;
  const auto& script = script_for(algo);
  const auto suffix = limit::to_string(algo);

  // EVALSHA sha n key_1 .. key_n now m policy_1 .. policy_m p_1 .. p_n, built in one buffer.
  arena_.clear();
  ends_.clear();
  const auto mark = [&] { ends_.push_back(arena_.size()); };
  append_number(arena_, static_cast<std::int64_t>(calls.size()));
  mark();
  for (const auto& q : calls) {
    arena_.append(q.check->key).append(":").append(suffix);
    mark();
  }
  if (calls.front().now) append_number(arena_, *calls.front().now);
  mark();
  // The distinct policies, in order of first use, and each check's number among them.
  policies_.clear();
  policy_of_.clear();
  for (const auto& q : calls) {
    const auto& p = q.check->policy;
    std::size_t i = 0;
    while (i < policies_.size() &&
           !(policies_[i]->requests == p.requests && policies_[i]->window == p.window &&
             policies_[i]->burst == p.burst && policies_[i]->cost == p.cost))
      ++i;
    if (i == policies_.size()) policies_.push_back(&p);
    policy_of_.push_back(i + 1);
  }
  append_number(arena_, static_cast<std::int64_t>(policies_.size()));
  mark();
  for (const auto* p : policies_) {
    for (const auto v : {static_cast<std::int64_t>(p->requests), p->window,
                         static_cast<std::int64_t>(p->burst), static_cast<std::int64_t>(p->cost)}) {
      append_number(arena_, v);
      mark();
    }
  }
  for (const auto i : policy_of_) {
    append_number(arena_, static_cast<std::int64_t>(i));
    mark();
  }
  args_.clear();
  args_.push_back(by_source ? "EVAL" : "EVALSHA");
  args_.push_back(by_source ? script.source : std::string_view{script.sha1});
  std::size_t start = 0;
  for (auto end : ends_) {
    args_.push_back(std::string_view{arena_}.substr(start, end - start));
    start = end;
  }

  const auto count = calls.size();
  conn.execute(args_, count,
               [this, &conn, calls = std::move(calls), by_source](error_kind error,
                                                                  const redisReply* r) mutable {
                 if (error == error_kind::none && r->type == REDIS_REPLY_ERROR &&
                     std::string_view{r->str, r->len}.starts_with("NOSCRIPT") && !by_source) {
                   // Redis lost its scripts (restart, SCRIPT FLUSH): send the source this once,
                   // which also caches it again, and the requests do not notice.
                   send(conn, std::move(calls), true);
                   return;
                 }
                 std::string_view reply;
                 if (error == error_kind::none) {
                   if (r->type == REDIS_REPLY_STRING &&
                       r->len == reply_bytes_per_check * calls.size())
                     reply = {r->str, r->len};
                   else
                     error = error_kind::reply;
                 }
                 for (std::size_t i = 0; i < calls.size(); ++i) {
                   auto& q = calls[i];
                   auto e = error;
                   if (e == error_kind::none &&
                       !read_decision(reply, i, q.owner->result.decisions[q.index]))
                     e = error_kind::reply;
                   done(*q.owner, e);
                 }
               });
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
