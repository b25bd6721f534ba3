// One Redis connection on a worker's io_context: hiredis 0.14's async API driven by Asio.
//
// hiredis' five event hooks only set flags and arm descriptor waits; the waits' handlers call
// redisAsyncHandleRead/Write, so every hiredis call happens on this thread and never from inside a
// hook. Commands issued during one turn of the event loop pile up in hiredis' output buffer and
// leave in the single write the next write-readiness triggers: that is the automatic
// pipelining, with no timer window. hiredis has no timeouts; a steady_timer enforces
// connect_timeout and command_timeout, and a connection whose replies stall is dropped.
#pragma once

#include "store/events.hpp"
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
  enum class state { connecting, ready, down };
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

  void connect();
  static bool is_address(const std::string& host);
  std::string resolve_now();
  // In the background; `then_connect`: the first connect waits for it, else it only updates the
  // address the next reconnect uses.
  void look_up(bool then_connect);
  void drop(std::string_view why);  // frees the context (fails what is pending), schedules reconnect
  void schedule_reconnect();
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
  std::string address_;  // settings_.host, or what that name resolved to last
  bool resolved_once_ = false;
  bool looking_up_ = false;            // a background lookup is on its way
  bool connect_after_lookup_ = false;  // and connecting waits for it (a name met while serving)
  unsigned resolve_gen_ = 0;         // lookups from before the last stop() are ignored
  boost::asio::ip::tcp::resolver resolver_;
  redisAsyncContext* ctx_ = nullptr;
  boost::asio::posix::stream_descriptor socket_;
  boost::asio::steady_timer timer_;      // command deadlines and connect timeout
  boost::asio::steady_timer reconnect_;  // backoff
  std::atomic<state> state_{state::down};
  bool ever_failed_ = false;
  bool stopped_ = false;
  bool reconnect_pending_ = false;
  bool want_read_ = false, want_write_ = false;
  bool read_armed_ = false, write_armed_ = false;
  bool timer_armed_ = false;
  std::size_t handshake_left_ = 0;
  bool handshake_refused_ = false;  // on this context: what follows fails as a connection error
  std::chrono::steady_clock::time_point connect_deadline_{};
  std::chrono::milliseconds backoff_{100};
  std::deque<pending*> in_flight_;  // in reply order
  std::vector<pending*> expired_;   // on_timeout's, reused
  unsigned generation_ = 0;         // of the context: each connect makes a new one
  std::size_t unflushed_ = 0;       // commands issued since the last write
  std::size_t unflushed_checks_ = 0;  // and the limit checks they carry
  std::vector<const char*> argv_;   // reused to hand a command to hiredis
  std::vector<std::size_t> lengths_;
  std::uint64_t commands_ = 0, writes_ = 0;
};

}  // namespace gw::store::redis
