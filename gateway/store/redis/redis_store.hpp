// The Redis store client of one worker, for one Redis (backend: redis) or a Redis Cluster
// (backend: redis_cluster), with its own connections (storage.redis.connections_per_worker per
// node) on the worker's io_context. The checks of every request that arrive during one turn of the
// event loop are queued, and at the end of the turn leave as one EVALSHA per algorithm (see
// scripts.hpp) - per algorithm and master on a cluster, keys of several slots in one call with
// the cross-slot script: one socket write per node and one round trip for the whole turn.
// On a cluster the slot map comes from CLUSTER SLOTS, asked again after a MOVED or a lost node;
// a MOVED or ASK reply sends a call of one slot on to the node named, and a call of several
// slots goes on as one call per slot, so a resharding loses no check.
#pragma once

#include "config/config.hpp"
#include "store/events.hpp"
#include "store/redis/cluster_slots.hpp"
#include "store/redis/connection.hpp"
#include "store/store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw::store::redis {

class redis_store final : public store {
 public:
  enum class mode { single, cluster };
  // `password`: already read from storage.redis.password_env (empty = none). A single Redis is
  // settings.address; a cluster is found from the seeds in settings.nodes.
  redis_store(boost::asio::io_context& io, const config::redis_settings& settings,
              std::string password, store_events* events, mode m = mode::single);
  ~redis_store() override;

  std::string_view backend() const override;
  boost::asio::awaitable<check_result> check(std::span<const limit_check> checks) override;
  bool available() const override;
  bool caches_rejections() const override { return true; }
  bool leases(algorithms::algorithm a) const override;
  bool takes_back_only_untouched(algorithms::algorithm a) const override {
    return a == algorithms::algorithm::token_bucket;  // its release: scripts.cpp
  }
  void release(std::string_view key, const algorithms::policy& p, std::uint64_t unused,
               algorithms::micros mark) override;

  // As check(), with `now` instead of Redis TIME: for tests comparing the stores case by case.
  boost::asio::awaitable<check_result> check_at(std::span<const limit_check> checks,
                                                std::optional<algorithms::micros> now);

  // Totals over this client's connections, for tests and benchmarks.
  std::uint64_t commands_sent() const;
  std::uint64_t writes() const;

  // The most checks one EVALSHA carries; a turn with more sends several.
  static constexpr std::size_t max_checks_per_call = 256;
  // A call follows at most this many MOVED/ASK/TRYAGAIN replies before it counts as a reply
  // error.
  static constexpr unsigned max_redirects = 5;

 private:
  struct waiter;
  struct queued {
    const limit_check* check;  // lives in the awaiting request, as does the waiter
    waiter* owner;
    std::size_t index;  // in the request's checks
    std::optional<algorithms::micros> now;
    std::uint16_t slot;  // cluster only; 0 otherwise
    bool leasing = false;  // goes to the algorithm's lease script
  };
  using group = std::vector<queued>;  // one call: same algorithm, `now` and node

  struct node {
    std::string host;
    std::uint16_t port = 0;
    std::vector<std::shared_ptr<connection>> connections;
    std::size_t next = 0;
    bool idle = false;  // owns no slot: connections stopped until it does again
    unsigned idle_epoch = 0;  // which idling a delayed stop belongs to

    connection* pick();  // one that accepts commands, round robin; null when none does
    bool accepting() const;  // as pick() != null, without moving the round robin
    bool ready() const;
  };

  struct call_route {
    bool by_source = false;  // EVAL with the source, after a NOSCRIPT
    bool asking = false;     // ASKING first, after an ASK
    unsigned redirects = 0;  // MOVED, ASK and TRYAGAIN followed so far
    // command_timeout from the first send: a call sent on keeps it.
    std::optional<std::chrono::steady_clock::time_point> deadline;
  };

  // Known, or connected now; `look_up_now`: a host name is resolved before returning.
  node& node_at(const std::string& host, std::uint16_t port, bool look_up_now = false);
  std::uint32_t index_of(const node& n) const;
  void done(waiter& w, error_kind error);  // one of w's checks is answered
  void resume_ready();
  void flush();
  void fail(const group& calls, error_kind error);
  static bool spans_slots(const group& calls);
  // A cluster call split into one call per slot, each to the slot's owner.
  void send_by_slot(group calls, const call_route& route);
  void send(connection& conn, group calls, call_route route);
  void on_reply(connection& conn, group calls, call_route route, error_kind error,
                const redisReply* r);

  // Cluster topology.
  void refresh_slots();       // CLUSTER SLOTS to some reachable node
  void apply_slot_map(const std::vector<slot_range>& ranges);
  void refresh_slots_soon();  // at most every refresh_interval
  void check_health();        // keeps cluster_ready_ true to fact, on a timer
  static constexpr auto refresh_interval = std::chrono::milliseconds(200);

  boost::asio::io_context& io_;
  const mode mode_;
  connection_settings base_;  // for every node's connections; host and port set per node
  unsigned connections_per_node_;
  store_events* events_;
  std::vector<std::unique_ptr<node>> nodes_;  // a single Redis: exactly one
  std::size_t seeds_ = 0;                     // nodes_[0, seeds_) are the configured seeds

  std::vector<std::uint32_t> slot_owner_;  // cluster: index in nodes_ per slot, or no_owner
  static constexpr std::uint32_t no_owner = ~0u;
  bool slots_known_ = false;
  bool cross_slot_ = true;  // cleared by a Redis that cannot run the cross-slot scripts
  bool unreachable_ = false;  // the last round of CLUSTER SLOTS found nobody to answer
  bool refreshing_ = false;
  std::size_t failed_refreshes_ = 0;  // in a row: each asks the next node at once
  std::size_t next_seed_ = 0;  // where the next CLUSTER SLOTS goes when it cannot go elsewhere
  std::chrono::steady_clock::time_point last_refresh_{};
  boost::asio::steady_timer refresh_timer_;
  bool refresh_timer_armed_ = false;
  boost::asio::steady_timer health_timer_;
  std::atomic<bool> cluster_ready_{false};  // read by the control thread (/readyz)
  std::vector<queued> parked_;  // cluster checks waiting for the first slot map

  std::vector<queued> queue_;  // this turn's checks; a flush is posted while it is not empty
  struct release_item {
    std::string key;  // the state key
    algorithms::algorithm algo;
    std::uint64_t unused;
    algorithms::micros mark;
    algorithms::micros unit;
    std::uint16_t slot;
  };
  std::vector<release_item> releases_;  // this turn's; sent with its checks
  void send_releases();
  std::vector<waiter*> ready_;  // answered; a resume_ready is posted while it is not empty
  std::vector<waiter*> resuming_;
  std::shared_ptr<char> alive_ = std::make_shared<char>();  // for posted work and timers
  // Reused for every command built: the argument text and the views into it.
  std::string arena_;
  std::vector<std::size_t> ends_;
  std::vector<std::string_view> args_;
  std::vector<const algorithms::policy*> policies_;  // of the call being built
  std::vector<std::size_t> policy_of_;
  std::string slot_key_;  // a state key, to find its slot
  std::chrono::steady_clock::time_point next_reply_log_{};  // error replies are logged sparingly
};

}  // namespace gw::store::redis
