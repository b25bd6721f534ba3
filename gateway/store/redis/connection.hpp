// One Redis connection on a worker's io_context: hiredis 0.14's async API driven by Asio.
//
// hiredis' five event hooks only set flags and arm descriptor waits; the waits' handlers call
// redisAsyncHandleRead/Write, so every hiredis call happens on this thread and never from inside a
// hook. Commands issued during one turn of the event loop pile up in hiredis' output buffer and
// leave in the single write the next write-readiness triggers: that is the automatic
// pipelining, with no timer window. hiredis has no timeouts; a steady_timer enforces
// connect_timeout and command_timeout, and a connection whose replies stall is dropped.
//
// What the connection is doing (looking its name up, connecting, ready, waiting to retry) is
// connection_fsm's to decide: this class turns sockets, timers and hiredis callbacks into its
// events and carries out the steps it answers with.
#pragma once

#include "store/events.hpp"
#include "store/redis/connection_fsm.hpp"
#include "store/store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct redisAsyncContext;
struct redisReply;

namespace gw::store::redis {

struct connection_settings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username;
  std::string password;  // empty = no AUTH
  unsigned database = 0;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{50};
  // A host name is resolved before the first connect, blocking (at start-up), or in the
  // background (for a node met while serving: commands fail until it is resolved).
  bool resolve_blocking = true;
  // Sent first on every (re)connection, after AUTH and SELECT: e.g. SCRIPT LOAD.
  std::vector<std::vector<std::string>> handshake;
};

class connection : public std::enable_shared_from_this<connection> {
 public:
  using state = connection_fsm::state;
  // Called exactly once per command, on this thread; `reply` is valid only during the call and
  // non-null only when error is none (a Redis error reply is a reply: check its type).
  using reply_handler = std::function<void(error_kind error, const redisReply* reply)>;

  connection(boost::asio::io_context& io, connection_settings settings, store_events* events);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Never from inside one of this connection's own hiredis callbacks (hiredis would delay the
  // free, and a later start() or cleanup would see the wrong context): post it.
  void start();
  void stop();

  // Whether a command issued now can be answered: ready, or still on the first connect. A
  // connection that failed reports false until it is back, so that callers fail at once.
  bool accepting() const;
  // Also read from the control thread (readiness), hence atomic.
  state current_state() const { return state_.load(std::memory_order_relaxed); }

  // `checks`: how many limit checks the command carries, for store_events::batch_written.
  // `deadline`: when it counts as timed out; by default command_timeout from now (a command
  // sent on after a redirect keeps the first one's).
  void execute(std::span<const std::string_view> args, std::size_t checks, reply_handler done,
               std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);

  const std::string& host() const { return settings_.host; }
  std::uint16_t port() const { return settings_.port; }
  std::uint64_t commands_sent() const { return commands_; }
  std::uint64_t writes() const { return writes_; }

 private:
  struct pending {
    reply_handler done;
    std::chrono::steady_clock::time_point deadline;
    bool finished = false;
  };

  // Carries out what the machine answered; `why` is for the log when it notes a failure.
  void apply(connection_fsm::step step, std::string_view why);
  // The same from inside one of hiredis' callbacks, where a context must not be freed (hiredis
  // would delay it, and a later start() or cleanup would see the wrong one): that is posted.
  void apply_from_hiredis(connection_fsm::step step, std::string_view why);
  void carry_out(connection_fsm::step step, std::string_view why, bool in_hiredis);
  void open(connection_fsm::token context, const std::string& address);
  void free_context();
  void look_up(connection_fsm::token lookup);
  std::string resolve_now();
  void wait_retry(connection_fsm::token retry, std::chrono::milliseconds after);
  // hiredis calls back only for the live context or the one it is freeing (it runs the cleanup
  // hook, which clears ctx_, before that one's disconnect callback): both are ctx_token_'s.
  connection_fsm::token token_of(const redisAsyncContext* ctx) const {
    return ctx == ctx_ || ctx == freeing_ ? ctx_token_ : 0;
  }
  void arm_read();
  void arm_write();
  void arm_timeout();
  void on_timeout();
  void finish(pending& p, error_kind error, const redisReply* reply);
  void send(std::span<const std::string_view> args, std::size_t checks, pending* p);

  static void hook_add_read(void* self);
  static void hook_del_read(void* self);
  static void hook_add_write(void* self);
  static void hook_del_write(void* self);
  static void hook_cleanup(void* self);
  static void on_connect(const redisAsyncContext* ctx, int status);
  static void on_disconnect(const redisAsyncContext* ctx, int status);
  static void on_reply(redisAsyncContext* ctx, void* reply, void* privdata);
  static void on_handshake_reply(redisAsyncContext* ctx, void* reply, void* privdata);

  boost::asio::io_context& io_;
  connection_settings settings_;
  store_events* events_;
  std::vector<std::vector<std::string>> handshake_;  // AUTH, SELECT, then the settings' own
  connection_fsm fsm_;
  std::atomic<state> state_{state::stopped};  // fsm_'s, for the control thread
  boost::asio::ip::tcp::resolver resolver_;
  redisAsyncContext* ctx_ = nullptr;
  connection_fsm::token ctx_token_ = 0;  // ctx_'s number: descriptor waits of another are stale
  const redisAsyncContext* freeing_ = nullptr;  // what ctx_ was when hiredis began freeing it
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer timer_;      // command deadlines and connect timeout
  boost::asio::steady_timer reconnect_;  // backoff
  bool want_read_ = false, want_write_ = false;
  bool read_armed_ = false, write_armed_ = false;
  bool timer_armed_ = false;
  std::chrono::steady_clock::time_point connect_deadline_{};
  std::deque<pending*> in_flight_;  // in reply order
  std::vector<pending*> expired_;   // on_timeout's, reused
  std::size_t unflushed_ = 0;       // commands issued since the last write
  std::size_t unflushed_checks_ = 0;  // and the limit checks they carry
  std::vector<const char*> argv_;   // reused to hand a command to hiredis
  std::vector<std::size_t> lengths_;
  std::uint64_t commands_ = 0, writes_ = 0;
};

}  // namespace gw::store::redis
