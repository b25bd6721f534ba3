// hiredis on Asio (see connection.hpp).
#include "store/redis/connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace gw::store::redis {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

// The address to connect to among a name's: IPv4 first, as hiredis itself tries (a Redis bound
// to 127.0.0.1 refuses ::1, which "localhost" often gives first); else the first IPv6 one; empty
// when the name has none (the "cannot resolve" path).
std::string preferred_address(const asio::ip::tcp::resolver::results_type& results) {
  for (const auto& entry : results)
    if (entry.endpoint().address().is_v4()) return entry.endpoint().address().to_string();
  for (const auto& entry : results) return entry.endpoint().address().to_string();
  return {};
}

// Replies that have not come for this long mean the connection is dead, not slow.
std::chrono::milliseconds stall_limit(std::chrono::milliseconds command_timeout) {
  return std::max<std::chrono::milliseconds>(std::chrono::seconds(2), command_timeout * 20);
}

}  // namespace

connection::connection(asio::io_context& io, connection_settings settings, store_events* events)
    : io_(io), settings_(std::move(settings)), events_(events), resolver_(io), socket_(io),
      timer_(io), reconnect_(io) {}

connection::~connection() { stop(); }

void connection::start() {
  stopped_ = false;
  connect();
}

void connection::stop() {
  stopped_ = true;
  reconnect_pending_ = false;
  // A lookup cancelled here may still have its handler queued: it must not touch what a
  // start() right after sets up.
  ++resolve_gen_;
  looking_up_ = connect_after_lookup_ = false;
  resolver_.cancel();
  reconnect_.cancel();
  timer_.cancel();
  timer_armed_ = false;  // its handler returns on the cancel: a start() must arm it afresh
  if (ctx_) redisAsyncFree(ctx_);  // pending commands fail with a connection error
  state_ = state::down;
}

bool connection::accepting() const {
  return state_ == state::ready || (state_ == state::connecting && !ever_failed_);
}

void connection::connect() {
  if (stopped_ || ctx_ || connect_after_lookup_) return;
  if (!resolved_once_ && !settings_.resolve_blocking && !is_address(settings_.host)) {
    // A name met while serving (a cluster node): looked up in the background, and commands
    // fail at once meanwhile rather than stall the worker.
    look_up(true);
    return;
  }
  if (!resolved_once_) {
    resolved_once_ = true;
    address_ = resolve_now();
  } else if (!is_address(settings_.host)) {
    look_up(false);  // for the next reconnect; this one uses the last known address
  }
  if (address_.empty()) {
    spdlog::log(ever_failed_ ? spdlog::level::debug : spdlog::level::warn,
                "redis {}:{}: cannot resolve the name", settings_.host, settings_.port);
    state_ = state::down;
    ever_failed_ = true;
    schedule_reconnect();
    return;
  }
  ctx_ = redisAsyncConnect(address_.c_str(), settings_.port);
  if (!ctx_ || ctx_->err) {
    spdlog::log(ever_failed_ ? spdlog::level::debug : spdlog::level::warn,
                "redis {}:{}: cannot connect: {}", settings_.host, settings_.port,
                ctx_ ? ctx_->errstr : "out of memory");
    if (ctx_) redisAsyncFree(ctx_);
    ctx_ = nullptr;
    state_ = state::down;
    ever_failed_ = true;
    schedule_reconnect();
    return;
  }
  ctx_->data = this;
  ctx_->ev.data = this;
  ctx_->ev.addRead = hook_add_read;
  ctx_->ev.delRead = hook_del_read;
  ctx_->ev.addWrite = hook_add_write;
  ctx_->ev.delWrite = hook_del_write;
  ctx_->ev.cleanup = hook_cleanup;
  redisAsyncSetConnectCallback(ctx_, on_connect);
  redisAsyncSetDisconnectCallback(ctx_, on_disconnect);
  boost::system::error_code ec;
  socket_.assign(ctx_->c.fd, ec);
  // Waits on an earlier context's descriptor were cancelled with it; their handlers, whenever
  // they run, see another generation and leave these flags alone.
  ++generation_;
  read_armed_ = write_armed_ = false;
  state_ = state::connecting;
  handshake_refused_ = false;
  connect_deadline_ = clock::now() + settings_.connect_timeout;

  // The handshake goes first in the output buffer; commands issued meanwhile queue behind it.
  std::vector<std::vector<std::string>> handshake;
  if (!settings_.password.empty()) {
    if (settings_.username.empty())
      handshake.push_back({"AUTH", settings_.password});
    else
      handshake.push_back({"AUTH", settings_.username, settings_.password});
  }
  if (settings_.database != 0) handshake.push_back({"SELECT", std::to_string(settings_.database)});
  for (const auto& command : settings_.handshake) handshake.push_back(command);
  if (handshake.empty()) handshake.push_back({"PING"});  // something must be written to connect
  handshake_left_ = handshake.size();
  for (const auto& command : handshake) {
    argv_.clear();
    lengths_.clear();
    for (const auto& arg : command) {
      argv_.push_back(arg.data());
      lengths_.push_back(arg.size());
    }
    redisAsyncCommandArgv(ctx_, on_handshake_reply, this, static_cast<int>(argv_.size()),
                          argv_.data(), lengths_.data());
  }
  arm_timeout();
}

bool connection::is_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string connection::resolve_now() {
  if (is_address(settings_.host)) return settings_.host;
  boost::system::error_code ec;
  // A name, resolved once here, blocking (hiredis would do the same in getaddrinfo on every
  // connect); later reconnects use this address while look_up() looks the name up again in the
  // background.
  asio::ip::tcp::resolver resolver{io_};
  const auto results = resolver.resolve(settings_.host, std::to_string(settings_.port), ec);
  if (ec || results.empty()) return {};
  return preferred_address(results);
}

void connection::look_up(bool then_connect) {
  connect_after_lookup_ = connect_after_lookup_ || then_connect;
  // One lookup at a time: during a DNS outage each may take seconds, reconnects come faster.
  if (looking_up_) return;
  looking_up_ = true;
  resolver_.async_resolve(
      settings_.host, std::to_string(settings_.port),
      [weak = weak_from_this(), gen = resolve_gen_](
          const boost::system::error_code& ec,
          const asio::ip::tcp::resolver::results_type& results) {
        auto self = weak.lock();
        if (!self || self->resolve_gen_ != gen) return;
        self->looking_up_ = false;
        if (!ec && !results.empty()) self->address_ = preferred_address(results);
        if (!std::exchange(self->connect_after_lookup_, false) || self->stopped_) return;
        self->resolved_once_ = true;
        self->connect();  // without an address: the "cannot resolve" path, and retries
      });
}

void connection::drop(std::string_view why) {
  if (ctx_) {
    spdlog::log(ever_failed_ ? spdlog::level::debug : spdlog::level::warn,
                "redis {}:{}: dropping the connection: {}", settings_.host, settings_.port, why);
    redisAsyncFree(ctx_);  // fails everything pending, then the cleanup hook clears ctx_
  }
  ctx_ = nullptr;
  state_ = state::down;
  ever_failed_ = true;
  schedule_reconnect();
}

void connection::schedule_reconnect() {
  // drop() and the disconnect callback both ask; one wait, one backoff step.
  if (stopped_ || reconnect_pending_) return;
  reconnect_pending_ = true;
  reconnect_.expires_after(backoff_);
  // Capped low: a Redis that comes back is in use again within half a second.
  backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, std::chrono::milliseconds(500));
  reconnect_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) {
      self->reconnect_pending_ = false;
      self->connect();
    }
  });
}

void connection::execute(std::span<const std::string_view> args, std::size_t checks,
                         reply_handler done, std::optional<clock::time_point> deadline) {
  if (!accepting() || !ctx_) {
    done(error_kind::connection, nullptr);
    return;
  }
  if (deadline && *deadline <= clock::now()) {
    done(error_kind::timeout, nullptr);
    return;
  }
  auto* p = new pending{std::move(done), deadline.value_or(clock::now() + settings_.command_timeout)};
  send(args, checks, p);
}

void connection::send(std::span<const std::string_view> args, std::size_t checks, pending* p) {
  argv_.clear();
  lengths_.clear();
  for (const auto& arg : args) {
    argv_.push_back(arg.data());
    lengths_.push_back(arg.size());
  }
  if (redisAsyncCommandArgv(ctx_, on_reply, p, static_cast<int>(argv_.size()), argv_.data(),
                            lengths_.data()) != REDIS_OK) {
    finish(*p, error_kind::connection, nullptr);
    delete p;
    return;
  }
  in_flight_.push_back(p);
  ++unflushed_;
  unflushed_checks_ += checks;
  ++commands_;
  // Only the new deadline can be earlier than the timer's; on_timeout looks at them all.
  if (!timer_armed_ || p->deadline < timer_.expiry()) arm_timeout();
}

void connection::finish(pending& p, error_kind error, const redisReply* reply) {
  p.finished = true;
  auto done = std::move(p.done);
  done(error, reply);
}

void connection::arm_read() {
  if (read_armed_ || !ctx_) return;
  read_armed_ = true;
  socket_.async_wait(asio::posix::stream_descriptor::wait_read,
                     [weak = weak_from_this(), gen = generation_](const boost::system::error_code& ec) {
                       auto self = weak.lock();
                       if (!self || self->generation_ != gen) return;
                       self->read_armed_ = false;
                       // Any other error (a refused connect, a reset) is for hiredis to find
                       // out by trying: it then reports it through its own callbacks.
                       if (ec == asio::error::operation_aborted || !self->ctx_ ||
                           !self->want_read_)
                         return;
                       redisAsyncHandleRead(self->ctx_);
                       if (self->ctx_ && self->want_read_) self->arm_read();
                     });
}

void connection::arm_write() {
  if (write_armed_ || !ctx_) return;
  write_armed_ = true;
  socket_.async_wait(asio::posix::stream_descriptor::wait_write,
                     [weak = weak_from_this(), gen = generation_](const boost::system::error_code& ec) {
                       auto self = weak.lock();
                       if (!self || self->generation_ != gen) return;
                       self->write_armed_ = false;
                       if (ec == asio::error::operation_aborted || !self->ctx_ ||
                           !self->want_write_)
                         return;
                       // Everything issued since the last write leaves now, in one write.
                       if (self->unflushed_ > 0) {
                         ++self->writes_;
                         if (self->events_)
                           self->events_->batch_written(self->unflushed_,
                                                        self->unflushed_checks_);
                         self->unflushed_ = 0;
                         self->unflushed_checks_ = 0;
                       }
                       redisAsyncHandleWrite(self->ctx_);
                       if (self->ctx_ && self->want_write_) self->arm_write();
                     });
}

void connection::arm_timeout() {
  // The earliest of: the connect deadline, the earliest unanswered command's deadline (not
  // always the oldest's: a call sent on after a redirect keeps its first deadline), and the
  // moment the oldest reply counts as stalled.
  auto next = clock::time_point::max();
  if (state_ == state::connecting) next = connect_deadline_;
  for (const auto* p : in_flight_)
    if (!p->finished) next = std::min(next, p->deadline);
  if (!in_flight_.empty())
    next = std::min(next, in_flight_.front()->deadline + stall_limit(settings_.command_timeout));
  if (next == clock::time_point::max()) return;
  if (timer_armed_ && timer_.expiry() <= next) return;
  timer_armed_ = true;
  timer_.expires_at(next);
  timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;  // re-armed earlier, or stopped
    if (auto self = weak.lock()) {
      self->timer_armed_ = false;
      self->on_timeout();
    }
  });
}

void connection::on_timeout() {
  const auto now = clock::now();
  if (state_ == state::connecting && now >= connect_deadline_) {
    drop("connect timeout");
    return;
  }
  // Collected first: finishing runs the callers' callbacks, which may issue commands here.
  expired_.clear();
  for (auto* p : in_flight_)
    if (!p->finished && p->deadline <= now) expired_.push_back(p);
  for (auto* p : expired_) {
    if (!ctx_) break;  // dropped meanwhile: everything pending has been failed and freed
    finish(*p, error_kind::timeout, nullptr);  // a late reply is ignored
  }
  expired_.clear();
  if (!in_flight_.empty() &&
      in_flight_.front()->deadline + stall_limit(settings_.command_timeout) <= now) {
    drop("replies stalled");
    return;
  }
  arm_timeout();
}

void connection::hook_add_read(void* self) {
  auto* c = static_cast<connection*>(self);
  c->want_read_ = true;
  c->arm_read();
}

void connection::hook_del_read(void* self) { static_cast<connection*>(self)->want_read_ = false; }

void connection::hook_add_write(void* self) {
  auto* c = static_cast<connection*>(self);
  c->want_write_ = true;
  c->arm_write();
}

void connection::hook_del_write(void* self) { static_cast<connection*>(self)->want_write_ = false; }

void connection::hook_cleanup(void* self) {
  // The context is gone: hiredis closes the descriptor itself, so Asio must only let go of it.
  auto* c = static_cast<connection*>(self);
  c->ctx_ = nullptr;
  c->want_read_ = c->want_write_ = false;
  c->socket_.release();
}

void connection::on_connect(const redisAsyncContext* ctx, int status) {
  auto* c = static_cast<connection*>(ctx->data);
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback; reconnect later, from the event loop.
    // The first failure of an outage is worth a warning; the retries that follow are not.
    spdlog::log(c->ever_failed_ ? spdlog::level::debug : spdlog::level::warn,
                "redis {}:{}: connect failed: {}", c->settings_.host, c->settings_.port,
                ctx->errstr ? ctx->errstr : "");
    c->state_ = state::down;
    c->ever_failed_ = true;
    c->schedule_reconnect();
  }
}

void connection::on_disconnect(const redisAsyncContext* ctx, int status) {
  auto* c = static_cast<connection*>(ctx->data);
  if (c->stopped_) return;
  if (status != REDIS_OK && !c->ever_failed_)
    spdlog::warn("redis {}:{}: connection lost: {}", c->settings_.host, c->settings_.port,
                 ctx->errstr ? ctx->errstr : "");
  c->state_ = state::down;
  c->ever_failed_ = true;
  c->schedule_reconnect();
}

void connection::on_reply(redisAsyncContext* ctx, void* reply, void* privdata) {
  auto* c = static_cast<connection*>(ctx->data);
  auto* p = static_cast<pending*>(privdata);
  if (!c->in_flight_.empty() && c->in_flight_.front() == p) c->in_flight_.pop_front();
  // After a refused handshake (wrong password), what Redis says to the commands queued behind
  // it ("NOAUTH ...") is about the connection, not an answer to them.
  const bool answered = reply && !c->handshake_refused_;
  if (!p->finished)
    c->finish(*p, answered ? error_kind::none : error_kind::connection,
              answered ? static_cast<const redisReply*>(reply) : nullptr);
  delete p;
}

void connection::on_handshake_reply(redisAsyncContext* ctx, void* reply, void* /*privdata*/) {
  auto* c = static_cast<connection*>(ctx->data);
  const auto* r = static_cast<const redisReply*>(reply);
  if (!r) return;  // the context is going away; on_disconnect or drop() handles the state
  // Refused once, the connection is dropped: what the rest of the handshake gets changes nothing.
  if (c->handshake_refused_) return;
  if (r->type == REDIS_REPLY_ERROR) {
    c->handshake_refused_ = true;
    spdlog::error("redis {}:{}: handshake refused: {}", c->settings_.host, c->settings_.port,
                  std::string_view{r->str, r->len});
    // Not from inside hiredis: drop the connection from the event loop.
    asio::post(c->io_, [weak = c->weak_from_this()] {
      if (auto self = weak.lock()) self->drop("handshake refused");
    });
    return;
  }
  if (c->handshake_left_ > 0 && --c->handshake_left_ == 0 && c->state_ == state::connecting) {
    if (c->ever_failed_)
      spdlog::info("redis {}:{}: connected again", c->settings_.host, c->settings_.port);
    c->state_ = state::ready;
    c->ever_failed_ = false;
    c->backoff_ = std::chrono::milliseconds(100);
    c->arm_timeout();
  }
}

}  // namespace gw::store::redis
