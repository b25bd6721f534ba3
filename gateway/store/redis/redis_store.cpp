// Limit checks queued per event-loop turn and sent as EVALSHA calls (see redis_store.hpp and
// scripts.hpp).
#include "store/redis/redis_store.hpp"

#include "store/redis/cluster_slots.hpp"
#include "store/redis/scripts.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

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
                         std::string password, store_events* events, mode m)
    : io_(io),
      mode_(m),
      connections_per_node_(std::max(1u, settings.connections_per_worker)),
      events_(events),
      refresh_timer_(io),
      health_timer_(io) {
  base_.username = settings.username;
  base_.password = std::move(password);
  base_.database = settings.database;
  base_.connect_timeout = settings.connect_timeout;
  base_.command_timeout = settings.command_timeout;
  for (auto a : {algorithms::algorithm::gcra, algorithms::algorithm::token_bucket,
                 algorithms::algorithm::sliding_window, algorithms::algorithm::sliding_log,
                 algorithms::algorithm::fixed_window})
    base_.handshake.push_back({"SCRIPT", "LOAD", std::string{script_for(a).source}});
  // (The cross-slot scripts are not loaded here: Redis before 7.0 cannot compile them, and must
  // still be served. Their first call on a connection brings them, by NOSCRIPT and EVAL.)
  if (mode_ == mode::single) {
    node_at(settings.address.host, settings.address.port);
  } else {
    for (const auto& seed : settings.nodes) node_at(seed.host, seed.port);
    slot_owner_.assign(cluster_slots, no_owner);
  }
  seeds_ = nodes_.size();
  // Connect from the worker's own thread, like every later hiredis call.
  asio::post(io, [this, alive = std::weak_ptr<char>{alive_}] {
    if (!alive.lock()) return;
    for (auto& n : nodes_)
      for (auto& c : n->connections) c->start();
    if (mode_ == mode::cluster) {
      refresh_slots();
      check_health();
    }
  });
}

redis_store::~redis_store() {
  for (auto& n : nodes_)
    for (auto& c : n->connections) c->stop();  // fails what is in flight
  // What is still waiting counts as failed.
  for (auto* queue : {&queue_, &parked_}) {
    for (auto& q : *queue) {
      auto& w = *q.owner;
      if (w.result.error == error_kind::none) w.result.error = error_kind::connection;
      if (--w.left == 0) ready_.push_back(&w);
    }
  }
  // The worker's loop has stopped by now: resuming would run requests against a store that is
  // gone. Their handlers are let go instead, and Asio destroys their coroutines with the loop.
  for (auto* w : ready_) w->handler.reset();
}

std::string_view redis_store::backend() const {
  return mode_ == mode::cluster ? "redis_cluster" : "redis";
}

redis_store::node& redis_store::node_at(const std::string& host, std::uint16_t port,
                                        bool look_up_now) {
  for (auto& n : nodes_) {
    if (n->port != port || n->host != host) continue;
    if (n->idle) {
      // Back in the slot map (or named by a redirect) after a time out of it.
      n->idle = false;
      for (auto& c : n->connections) c->start();
    }
    return *n;
  }
  auto n = std::make_unique<node>();
  n->host = host;
  n->port = port;
  const bool on_loop = !nodes_.empty() && seeds_ > 0;  // past the constructor: on the worker
  auto settings = base_;
  settings.host = host;
  settings.port = port;
  // A name met while serving (a slot map or a redirection that gives host names) must not stall
  // the worker: it is looked up in the background. The configured ones are looked up at start,
  // and so are those of the first slot map (the requests waiting for it would fail otherwise).
  settings.resolve_blocking = !on_loop || look_up_now;
  for (unsigned i = 0; i < connections_per_node_; ++i) {
    auto conn = std::make_shared<connection>(io_, settings, events_);
    if (on_loop) conn->start();
    n->connections.push_back(std::move(conn));
  }
  nodes_.push_back(std::move(n));
  return *nodes_.back();
}

std::uint32_t redis_store::index_of(const node& n) const {
  std::uint32_t i = 0;
  while (nodes_[i].get() != &n) ++i;
  return i;
}

connection* redis_store::node::pick() {
  for (std::size_t tried = 0; tried < connections.size(); ++tried) {
    auto* c = connections[next++ % connections.size()].get();
    if (c->accepting()) return c;
  }
  return nullptr;
}

bool redis_store::node::accepting() const {
  for (const auto& c : connections)
    if (c->accepting()) return true;
  return false;
}

bool redis_store::node::ready() const {
  for (const auto& c : connections)
    if (c->current_state() == connection::state::ready) return true;
  return false;
}

bool redis_store::available() const {
  if (mode_ == mode::cluster) return cluster_ready_.load(std::memory_order_relaxed);
  return nodes_.front()->ready();
}

asio::awaitable<check_result> redis_store::check(std::span<const limit_check> checks) {
  return check_at(checks, std::nullopt);  // no frame of its own
}

asio::awaitable<check_result> redis_store::check_at(std::span<const limit_check> checks,
                                                    std::optional<algorithms::micros> now) {
  if (checks.empty()) co_return check_result{};
  if (mode_ == mode::single && !nodes_.front()->accepting()) {
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
        for (std::size_t i = 0; i < checks.size(); ++i) {
          std::uint16_t slot = 0;
          if (mode_ == mode::cluster) {
            // The slot of the key the script will use (the hash tag makes it the base key's).
            slot_key_.assign(checks[i].key).append(":").append(
                algorithms::to_string(checks[i].policy.algo));
            slot = key_slot(slot_key_);
          }
          const bool leasing =
              checks[i].lease_want > checks[i].policy.cost && lease_script_for(checks[i].policy.algo);
          if (leasing) w.result.leases.resize(checks.size());
          queue_.push_back({&checks[i], &w, i, now, slot, leasing});
        }
      },
      asio::use_awaitable);
}

bool redis_store::leases(algorithms::algorithm a) const { return lease_script_for(a) != nullptr; }

void redis_store::release(std::string_view key, const algorithms::policy& p,
                          std::uint64_t unused, algorithms::micros mark) {
  const auto a = p.algo;
  if (unused == 0 || !lease_script_for(a)) return;
  auto state = state_key(key, a);
  const std::uint16_t slot = mode_ == mode::cluster ? key_slot(state) : 0;
  if (queue_.empty() && releases_.empty())
    asio::post(io_, [this, alive = std::weak_ptr<char>{alive_}] {
      if (alive.lock()) flush();
    });
  releases_.push_back({std::move(state), a, unused, mark, release_unit(p), slot});
}

// Fire and forget, one EVAL per algorithm and slot: a release lost (a timeout, a failover)
// only leaves units counted that nobody uses, which admits less until the window ends.
void redis_store::send_releases() {
  if (releases_.empty()) return;
  auto items = std::move(releases_);
  releases_.clear();
  if (mode_ == mode::cluster && !slots_known_) return;
  std::stable_sort(items.begin(), items.end(), [](const release_item& a, const release_item& b) {
    return std::pair{a.algo, a.slot} < std::pair{b.algo, b.slot};
  });
  for (std::size_t begin = 0; begin < items.size();) {
    std::size_t end = begin + 1;
    while (end < items.size() && end - begin < max_checks_per_call &&
           items[end].algo == items[begin].algo && items[end].slot == items[begin].slot)
      ++end;
    node* target = nodes_.front().get();
    if (mode_ == mode::cluster) {
      const auto owner = slot_owner_[items[begin].slot];
      target = owner == no_owner ? nullptr : nodes_[owner].get();
    }
    auto* conn = target ? target->pick() : nullptr;
    if (conn) {
      std::vector<std::string> text;
      text.push_back(std::to_string(end - begin));
      for (std::size_t i = begin; i < end; ++i) text.push_back(items[i].key);
      text.emplace_back();  // the clock: Redis's own
      for (std::size_t i = begin; i < end; ++i) {
        text.push_back(std::to_string(items[i].unused));
        text.push_back(std::to_string(items[i].mark));
        text.push_back(std::to_string(items[i].unit));
      }
      std::vector<std::string_view> args{"EVAL", release_script_for(items[begin].algo)->source};
      for (const auto& t : text) args.push_back(t);
      conn->execute(args, 0, [](error_kind, const redisReply*) {},
                    std::chrono::steady_clock::now() + base_.command_timeout);
    }
    begin = end;
  }
}

void redis_store::flush() {
  send_releases();
  auto queue = std::move(queue_);
  queue_.clear();
  if (mode_ == mode::cluster && !slots_known_) {
    if (unreachable_) {
      // No node has answered yet: fail now, as for a Redis known to be down.
      fail(queue, error_kind::connection);
      queue.clear();
      if (queue_.empty()) queue_ = std::move(queue);
      refresh_slots_soon();
      return;
    }
    // Nowhere to send them yet: they wait for the slot map (or its failure).
    parked_.insert(parked_.end(), queue.begin(), queue.end());
    queue.clear();
    if (queue_.empty()) queue_ = std::move(queue);
    refresh_slots_soon();
    return;
  }
  // Grouped by algorithm, `now` (which only tests set) and node (a cluster's master that owns
  // the key's slot; its keys of several slots go in one call), each group in arrival order.
  // (Without cross-slot scripts, a Redis before 7: by slot, as a script's keys must share one.)
  const auto owner = [this](const queued& q) -> std::uint32_t {
    if (mode_ != mode::cluster) return 0;
    return cross_slot_ ? slot_owner_[q.slot] : q.slot;
  };
  std::stable_sort(queue.begin(), queue.end(), [&](const queued& a, const queued& b) {
    if (a.check->policy.algo != b.check->policy.algo)
      return a.check->policy.algo < b.check->policy.algo;
    if (a.leasing != b.leasing) return a.leasing < b.leasing;
    if (a.now != b.now) return a.now < b.now;
    return owner(a) < owner(b);
  });
  for (std::size_t begin = 0; begin < queue.size();) {
    std::size_t end = begin + 1;
    while (end < queue.size() && end - begin < max_checks_per_call &&
           queue[end].check->policy.algo == queue[begin].check->policy.algo &&
           queue[end].leasing == queue[begin].leasing &&
           queue[end].now == queue[begin].now && owner(queue[end]) == owner(queue[begin]))
      ++end;
    group calls(queue.begin() + static_cast<std::ptrdiff_t>(begin),
                queue.begin() + static_cast<std::ptrdiff_t>(end));
    begin = end;
    node* target = nodes_.front().get();
    if (mode_ == mode::cluster) {
      const auto owner = slot_owner_[calls.front().slot];
      target = owner == no_owner ? nullptr : nodes_[owner].get();
    }
    if (auto* conn = target ? target->pick() : nullptr) {
      call_route route;
      route.deadline = std::chrono::steady_clock::now() + base_.command_timeout;
      send(*conn, std::move(calls), route);
    } else {
      fail(calls, error_kind::connection);
      if (mode_ == mode::cluster) refresh_slots_soon();  // a failover may have moved the slot
    }
  }
  queue.clear();
  if (queue_.empty()) queue_ = std::move(queue);  // keep the capacity for the next turn
}

bool redis_store::spans_slots(const group& calls) {
  return std::any_of(calls.begin(), calls.end(),
                     [&](const queued& q) { return q.slot != calls.front().slot; });
}

void redis_store::send_by_slot(group calls, const call_route& route) {
  std::stable_sort(calls.begin(), calls.end(),
                   [](const queued& a, const queued& b) { return a.slot < b.slot; });
  for (auto begin = calls.begin(); begin != calls.end();) {
    auto end = std::find_if(begin, calls.end(),
                            [&](const queued& q) { return q.slot != begin->slot; });
    group one(begin, end);
    begin = end;
    const auto owner = slot_owner_[one.front().slot];
    if (auto* conn = owner == no_owner ? nullptr : nodes_[owner]->pick())
      send(*conn, std::move(one), {route.by_source, false, route.redirects + 1, route.deadline});
    else
      fail(one, error_kind::connection);
  }
}

void redis_store::fail(const group& calls, error_kind error) {
  for (const auto& q : calls) done(*q.owner, error);
}

void redis_store::send(connection& conn, group calls, call_route route) {
  const auto algo = calls.front().check->policy.algo;
  const bool leasing = calls.front().leasing;
  // Keys of several slots of one node go in one call with the cross-slot script. A call of one
  // slot declares all its keys: a slot half-way through a migration is then answered with ASK
  // or TRYAGAIN, never read as empty (a script reading a key it did not declare, sent with
  // ASKING to the importing node, would find it missing there and start it afresh).
  const bool node = mode_ == mode::cluster && cross_slot_ && spans_slots(calls);
  const auto& script = node ? (leasing ? *node_lease_script_for(algo) : node_script_for(algo))
                            : (leasing ? *lease_script_for(algo) : script_for(algo));
  const auto suffix = algorithms::to_string(algo);

  // EVALSHA sha n key_1 .. key_n now m policy_1 .. policy_m p_1 .. p_n, built in one buffer; to
  // a cluster node for several slots 1 key_1 <n - 1> key_2 .. key_n now .. (node_script_for).
  arena_.clear();
  ends_.clear();
  const auto mark = [&] { ends_.push_back(arena_.size()); };
  append_number(arena_, static_cast<std::int64_t>(node ? 1 : calls.size()));
  mark();
  for (std::size_t i = 0; i < calls.size(); ++i) {
    arena_.append(calls[i].check->key).append(":").append(suffix);
    mark();
    if (node && i == 0) {
      append_number(arena_, static_cast<std::int64_t>(calls.size() - 1));
      mark();
    }
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
  if (leasing) {
    for (const auto& q : calls) {
      append_number(arena_, static_cast<std::int64_t>(q.check->lease_want));
      mark();
      append_number(arena_, q.check->lease_max);
      mark();
    }
  }
  args_.clear();
  args_.push_back(route.by_source ? "EVAL" : "EVALSHA");
  args_.push_back(route.by_source ? script.source : std::string_view{script.sha1});
  std::size_t start = 0;
  for (auto end : ends_) {
    args_.push_back(std::string_view{arena_}.substr(start, end - start));
    start = end;
  }

  if (route.deadline && *route.deadline <= std::chrono::steady_clock::now()) {
    // Out of time before it leaves (after redirections): and an ASKING must never go alone.
    fail(calls, error_kind::timeout);
    return;
  }
  if (route.asking) {
    // Valid for the next command on this connection only: it goes out right before the call,
    // in the same write. What it answers changes nothing (the call's own reply says it all).
    const std::string_view asking[] = {"ASKING"};
    conn.execute(asking, 0, [](error_kind, const redisReply*) {}, route.deadline);
  }
  const auto count = calls.size();
  conn.execute(
      args_, count,
      [this, &conn, calls = std::move(calls), route](error_kind error,
                                                     const redisReply* r) mutable {
        on_reply(conn, std::move(calls), route, error, r);
      },
      route.deadline);
}

void redis_store::on_reply(connection& conn, group calls, call_route route, error_kind error,
                           const redisReply* r) {
  if (error == error_kind::none && r->type == REDIS_REPLY_ERROR) {
    const std::string_view message{r->str, r->len};
    if (message.starts_with("NOSCRIPT") && !route.by_source) {
      // Redis lost its scripts (restart, SCRIPT FLUSH): send the source this once, which also
      // caches it again, and the requests do not notice.
      route.by_source = true;
      send(conn, std::move(calls), route);
      return;
    }
    const auto redirect = mode_ == mode::cluster ? parse_redirect(message) : std::nullopt;
    // Keys of several slots: the node has stopped serving one of them (a redirection for the
    // first, "non local key" for the others), is half-way through moving it, or the script
    // failed (one key's state unreadable; a Redis that cannot compile it). Each slot's keys go
    // on in a call of their own, where the redirections below follow them and an error fails
    // that slot's checks only. (A node that cannot serve at all, OOM or LOADING, fails the call.)
    const bool slot_trouble = redirect || message.starts_with("TRYAGAIN") ||
                              message.starts_with("CROSSSLOT") ||
                              message.find("user_script") != std::string_view::npos ||
                              message.find("Error compiling script") != std::string_view::npos ||
                              message.find("non local key") != std::string_view::npos;
    if (mode_ == mode::cluster && spans_slots(calls) && slot_trouble &&
        !(redirect && redirect->host == "?") && route.redirects < max_redirects) {
      if (redirect && redirect->moved)
        slot_owner_[redirect->slot] = index_of(node_at(
            redirect->host.empty() ? conn.host() : redirect->host, redirect->port));
      if (message.find("Error compiling script") != std::string_view::npos ||
          message.find("shebang") != std::string_view::npos) {
        // A Redis before 7.0: no cross-slot script; a call per slot from now on.
        cross_slot_ = false;
        spdlog::warn("redis cluster {}:{}: no cross-slot scripts (Redis 7 has them), one call "
                     "per slot: {}", conn.host(), conn.port(), message);
      }
      if (redirect || message.find("non local key") != std::string_view::npos ||
          message.starts_with("TRYAGAIN"))
        refresh_slots_soon();
      send_by_slot(std::move(calls), route);
      return;
    }
    if (mode_ == mode::cluster) {
      if (redirect && redirect->host == "?") {
        // A node nobody can name: nowhere to go, and no owner to learn. The slot map may know.
        error = error_kind::connection;
      } else if (redirect && route.redirects < max_redirects) {
        // The slot lives elsewhere now (MOVED), or this slot's keys are being moved and these
        // are already there (ASK): the same call goes there, the requests do not notice.
        auto& target = node_at(redirect->host.empty() ? conn.host() : redirect->host,
                               redirect->port);
        if (redirect->moved) {
          slot_owner_[redirect->slot] = index_of(target);
          refresh_slots_soon();  // one slot moving is rarely alone
        }
        if (auto* next = target.pick()) {
          send(*next, std::move(calls),
               {route.by_source, !redirect->moved, route.redirects + 1, route.deadline});
          return;
        }
        error = error_kind::connection;
      } else if (message.starts_with("TRYAGAIN") && route.redirects < max_redirects) {
        // A slot half-way through a migration, and this call's keys partly moved: each key on
        // its own is served where it is, or redirected by ASK.
        std::vector<group> by_key;
        for (auto& q : calls) {
          auto same = std::find_if(by_key.begin(), by_key.end(), [&](const group& g) {
            return g.front().check->key == q.check->key;
          });
          if (same == by_key.end())
            by_key.push_back({q});
          else
            same->push_back(q);
        }
        if (by_key.size() > 1) {
          for (auto& g : by_key)
            send(conn, std::move(g),
                 {route.by_source, route.asking, route.redirects + 1, route.deadline});
          return;
        }
      }
    }
  }
  if (mode_ == mode::cluster && error == error_kind::connection) refresh_slots_soon();
  std::string_view reply;
  if (error == error_kind::none) {
    const auto per_check = calls.front().leasing ? lease_reply_bytes_per_check
                                                 : reply_bytes_per_check;
    if (r->type == REDIS_REPLY_STRING && r->len == per_check * calls.size()) {
      reply = {r->str, r->len};
    } else {
      error = error_kind::reply;
      // Counted in gateway_store_errors_total{kind="reply"}; what Redis said is worth a log
      // line too (a script error, OOM, READONLY...), at most one every 10 s per worker.
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_reply_log_) {
        next_reply_log_ = now + std::chrono::seconds(10);
        spdlog::warn("redis {}:{}: a limit check call failed ({} checks): {}", conn.host(),
                     conn.port(),
                     calls.size(),
                     r->type == REDIS_REPLY_ERROR ? std::string_view{r->str, r->len}
                                                  : std::string_view{"not the expected reply"});
      }
    }
  }
  for (std::size_t i = 0; i < calls.size(); ++i) {
    auto& q = calls[i];
    auto e = error;
    if (e == error_kind::none) {
      auto& d = q.owner->result.decisions[q.index];
      if (q.leasing) {
        if (!read_lease(reply, i, d, q.owner->result.leases[q.index])) e = error_kind::reply;
      } else if (!read_decision(reply, i, d)) {
        e = error_kind::reply;
      }
    }
    done(*q.owner, e);
  }
}

void redis_store::refresh_slots() {
  if (refreshing_) return;
  // Any node that answers will do, each refresh the next one in turn (a node with a stale or
  // partial view is not asked twice running): one that is up first, else a seed still trying.
  connection* conn = nullptr;
  std::size_t asked = 0;
  for (std::size_t i = 0; i < nodes_.size() && !conn; ++i) {
    asked = (next_seed_ + i) % nodes_.size();
    if (!nodes_[asked]->idle && nodes_[asked]->ready()) conn = nodes_[asked]->pick();
  }
  for (std::size_t i = 0; i < seeds_ && !conn; ++i) {
    asked = (next_seed_ + i) % seeds_;
    conn = nodes_[asked]->pick();
  }
  next_seed_ = asked + 1;
  last_refresh_ = std::chrono::steady_clock::now();
  if (!conn) {
    // Nobody to ask: what waits for a first slot map fails now, and so will what comes before
    // a node answers; try again later.
    failed_refreshes_ = 0;
    unreachable_ = true;
    fail(parked_, error_kind::connection);
    parked_.clear();
    refresh_slots_soon();
    return;
  }
  refreshing_ = true;
  const std::string_view args[] = {"CLUSTER", "SLOTS"};
  conn->execute(args, 0, [this, host = nodes_[asked]->host](error_kind error,
                                                             const redisReply* r) {
    refreshing_ = false;
    std::optional<std::vector<slot_range>> ranges;
    if (error == error_kind::none) ranges = parse_cluster_slots(r, host);
    if (!ranges || ranges->empty()) {
      if (error == error_kind::none)
        spdlog::warn("redis cluster: {} answered CLUSTER SLOTS with no slot map", host);
      if (++failed_refreshes_ < nodes_.size()) {
        // The next node, from the event loop (not from inside this callback, nor on a
        // connection whose timeout handling is running): a dead seed must not fail the first
        // requests.
        asio::post(io_, [this, alive = std::weak_ptr<char>{alive_}] {
          if (alive.lock()) refresh_slots();
        });
        return;
      }
      // Nobody answered: what waits for a first slot map fails; try again later.
      failed_refreshes_ = 0;
      unreachable_ = true;
      fail(parked_, error == error_kind::none ? error_kind::reply : error);
      parked_.clear();
      refresh_slots_soon();
      return;
    }
    failed_refreshes_ = 0;
    unreachable_ = false;
    apply_slot_map(*ranges);
    if (!parked_.empty()) {
      // The checks that waited go out with this turn's.
      if (queue_.empty())
        asio::post(io_, [this, alive = std::weak_ptr<char>{alive_}] {
          if (alive.lock()) flush();
        });
      queue_.insert(queue_.end(), parked_.begin(), parked_.end());
      parked_.clear();
    }
  });
}

void redis_store::apply_slot_map(const std::vector<slot_range>& ranges) {
  // A slot the answer leaves out (a node that knows little yet) keeps the owner it had.
  std::vector<bool> covered(cluster_slots, false);
  for (const auto& range : ranges) {
    if (range.host == "?") continue;  // a node nobody can name: keep what was known
    const auto owner = index_of(node_at(range.host, range.port, !slots_known_));
    std::fill(slot_owner_.begin() + range.first, slot_owner_.begin() + range.last + 1, owner);
    std::fill(covered.begin() + range.first, covered.begin() + range.last + 1, true);
  }
  const bool complete = std::all_of(covered.begin(), covered.end(), [](bool c) { return c; });
  if (!slots_known_) spdlog::info("redis cluster: slot map of {} ranges", ranges.size());
  slots_known_ = true;
  if (complete) {
    // Nodes that own nothing now (removed, or replicas since a failover) are not kept
    // connected; the seeds are, to ask them again. Only on a map that covers every slot, and
    // only once what was sent to them has had its time to answer (or redirect).
    std::vector<bool> owns(nodes_.size(), false);
    for (const auto owner : slot_owner_)
      if (owner != no_owner) owns[owner] = true;
    for (std::size_t i = seeds_; i < nodes_.size(); ++i) {
      if (owns[i] || nodes_[i]->idle) continue;
      nodes_[i]->idle = true;
      const auto epoch = ++nodes_[i]->idle_epoch;
      auto later = std::make_shared<asio::steady_timer>(io_, 2 * base_.command_timeout);
      later->async_wait([later, n = nodes_[i].get(), epoch, alive = std::weak_ptr<char>{alive_}](
                            const boost::system::error_code& ec) {
        // Wanted again meanwhile (and maybe idle again since: that idling has its own wait).
        if (ec || !alive.lock() || !n->idle || n->idle_epoch != epoch) return;
        for (auto& c : n->connections) c->stop();
      });
    }
  }
  check_health();
}

void redis_store::refresh_slots_soon() {
  if (refreshing_ || refresh_timer_armed_) return;
  const auto due = last_refresh_ + refresh_interval;
  if (std::chrono::steady_clock::now() >= due) {
    refresh_slots();
    return;
  }
  refresh_timer_armed_ = true;
  refresh_timer_.expires_at(due);
  refresh_timer_.async_wait(
      [this, alive = std::weak_ptr<char>{alive_}](const boost::system::error_code& ec) {
        if (ec || !alive.lock()) return;
        refresh_timer_armed_ = false;
        refresh_slots();
      });
}

void redis_store::check_health() {
  // Ready: every slot has an owner with a connection up.
  bool ready = slots_known_;
  std::vector<bool> seen(nodes_.size(), false);
  for (std::size_t slot = 0; ready && slot < slot_owner_.size(); ++slot) {
    const auto owner = slot_owner_[slot];
    if (owner == no_owner) {
      ready = false;
    } else if (!seen[owner]) {
      seen[owner] = true;
      ready = nodes_[owner]->ready();
    }
  }
  cluster_ready_.store(ready, std::memory_order_relaxed);
  if (!ready && slots_known_) refresh_slots_soon();  // a node down: maybe a failover
  health_timer_.expires_after(std::chrono::milliseconds(100));
  health_timer_.async_wait(
      [this, alive = std::weak_ptr<char>{alive_}](const boost::system::error_code& ec) {
        if (!ec && alive.lock()) check_health();
      });
}

std::uint64_t redis_store::commands_sent() const {
  std::uint64_t n = 0;
  for (const auto& node : nodes_)
    for (const auto& c : node->connections) n += c->commands_sent();
  return n;
}

std::uint64_t redis_store::writes() const {
  std::uint64_t n = 0;
  for (const auto& node : nodes_)
    for (const auto& c : node->connections) n += c->writes();
  return n;
}

}  // namespace gw::store::redis
