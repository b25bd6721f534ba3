// hiredis on Asio (see connection.hpp).
#include "store/redis/connection.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

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

std::vector<std::vector<std::string>> handshake_of(const connection_settings& settings) {
  std::vector<std::vector<std::string>> handshake;
  if (!settings.password.empty()) {
    if (settings.username.empty())
      handshake.push_back({"AUTH", settings.password});
    else
      handshake.push_back({"AUTH", settings.username, settings.password});
  }
  if (settings.database != 0) handshake.push_back({"SELECT", std::to_string(settings.database)});
  for (const auto& command : settings.handshake) handshake.push_back(command);
  if (handshake.empty()) handshake.push_back({"PING"});  // something must be written to connect
  return handshake;
}

}  // namespace

connection::connection(asio::io_context& io, connection_settings settings, store_events* events)
    : io_(io), settings_(std::move(settings)), events_(events), handshake_(handshake_of(settings_)),
      fsm_(settings_.host, settings_.resolve_blocking, handshake_.size()), resolver_(io),
      socket_(io), timer_(io), reconnect_(io) {}

connection::~connection() { stop(); }

void connection::start() { apply(fsm_.start(), "cannot connect"); }

void connection::stop() {
  apply(fsm_.stop(), {});
  resolver_.cancel();
  reconnect_.cancel();
  timer_.cancel();
  timer_armed_ = false;  // its handler returns on the cancel: a start() must arm it afresh
}

bool connection::accepting() const { return fsm_.accepting(); }

void connection::apply(connection_fsm::step step, std::string_view why) {
  carry_out(std::move(step), why, false);
}

void connection::apply_from_hiredis(connection_fsm::step step, std::string_view why) {
  carry_out(std::move(step), why, true);
}

void connection::carry_out(connection_fsm::step step, std::string_view why, bool in_hiredis) {
  using log_note = connection_fsm::log_note;
  switch (step.note) {
    case log_note::none: break;
    case log_note::failed:
      spdlog::warn("redis {}:{}: {}", settings_.host, settings_.port, why);
      break;
    case log_note::failed_again:
      spdlog::debug("redis {}:{}: {}", settings_.host, settings_.port, why);
      break;
    case log_note::recovered:
      spdlog::info("redis {}:{}: connected again", settings_.host, settings_.port);
      break;
  }
  if (step.close != 0 && step.close == ctx_token_ && ctx_) {
    if (in_hiredis) {
      asio::post(io_, [weak = weak_from_this(), context = step.close] {
        auto self = weak.lock();
        if (self && self->ctx_ && self->ctx_token_ == context) self->free_context();
      });
    } else {
      free_context();
    }
  }
  if (step.look_up != 0) {
    if (step.blocking)
      apply(fsm_.looked_up(step.look_up, resolve_now()), "cannot resolve the name");
    else
      look_up(step.look_up);
  }
  if (step.open != 0) open(step.open, step.address);
  if (step.retry != 0) wait_retry(step.retry, step.retry_after);
  state_.store(fsm_.current(), std::memory_order_relaxed);
}

void connection::open(connection_fsm::token context, const std::string& address) {
  // The step that opens frees first what the machine gave up: no context is left here now.
  ctx_ = redisAsyncConnect(address.c_str(), settings_.port);
  if (!ctx_ || ctx_->err) {
    const std::string why =
        std::string("cannot connect: ") + (ctx_ ? ctx_->errstr : "out of memory");
    if (ctx_) redisAsyncFree(ctx_);  // no callbacks set yet
    ctx_ = nullptr;
    apply(fsm_.open_failed(context), why);
    return;
  }
  ctx_token_ = context;
  freeing_ = nullptr;
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
  // they run, see another context's number and leave these flags alone.
  read_armed_ = write_armed_ = false;
  connect_deadline_ = clock::now() + settings_.connect_timeout;
  // The handshake goes first in the output buffer; commands issued meanwhile queue behind it.
  for (const auto& command : handshake_) {
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

void connection::free_context() {
  // Fails everything pending (their callers may issue commands: the machine no longer accepts
  // them), then the cleanup hook clears ctx_.
  redisAsyncFree(ctx_);
  ctx_ = nullptr;
}

std::string connection::resolve_now() {
  boost::system::error_code ec;
  // A name, resolved once here, blocking (hiredis would do the same in getaddrinfo on every
  // connect); later reconnects use this address while the name is looked up again in the
  // background.
  asio::ip::tcp::resolver resolver{io_};
  const auto results = resolver.resolve(settings_.host, std::to_string(settings_.port), ec);
  if (ec || results.empty()) return {};
  return preferred_address(results);
}

void connection::look_up(connection_fsm::token lookup) {
  resolver_.async_resolve(
      settings_.host, std::to_string(settings_.port),
      [weak = weak_from_this(), lookup](const boost::system::error_code& ec,
                                        const asio::ip::tcp::resolver::results_type& results) {
        auto self = weak.lock();
        if (!self) return;
        // Cancelled by stop(): the machine no longer waits for this lookup, and ignores it.
        std::string address = ec || results.empty() ? std::string{} : preferred_address(results);
        self->apply(self->fsm_.looked_up(lookup, std::move(address)), "cannot resolve the name");
      });
}

void connection::wait_retry(connection_fsm::token retry, std::chrono::milliseconds after) {
  reconnect_.expires_after(after);
  reconnect_.async_wait([weak = weak_from_this(), retry](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->apply(self->fsm_.retry_due(retry), "cannot connect");
  });
}

void connection::execute(std::span<const std::string_view> args, std::size_t checks,
                         reply_handler done, std::optional<clock::time_point> deadline) {
  if (!fsm_.accepting() || !ctx_) {
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
                     [weak = weak_from_this(), gen = ctx_token_](const boost::system::error_code& ec) {
                       auto self = weak.lock();
                       if (!self || self->ctx_token_ != gen) return;
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
                     [weak = weak_from_this(), gen = ctx_token_](const boost::system::error_code& ec) {
                       auto self = weak.lock();
                       if (!self || self->ctx_token_ != gen) return;
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
  if (fsm_.current() == state::connecting) next = connect_deadline_;
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
  if (fsm_.current() == state::connecting && now >= connect_deadline_) {
    apply(fsm_.timed_out(ctx_token_), "connect timeout");
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
    apply(fsm_.timed_out(ctx_token_), "replies stalled");
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
  c->freeing_ = c->ctx_;
  c->ctx_ = nullptr;
  c->want_read_ = c->want_write_ = false;
  c->socket_.release();
}

void connection::on_connect(const redisAsyncContext* ctx, int status) {
  auto* c = static_cast<connection*>(ctx->data);
  // On failure hiredis frees the context after this callback.
  if (status != REDIS_OK)
    c->apply_from_hiredis(c->fsm_.open_failed(c->token_of(ctx)),
                          std::string("connect failed: ") + (ctx->errstr ? ctx->errstr : ""));
}

void connection::on_disconnect(const redisAsyncContext* ctx, int status) {
  // Also called from inside redisAsyncFree for a context the machine gave up: stale then.
  auto* c = static_cast<connection*>(ctx->data);
  c->apply_from_hiredis(c->fsm_.lost(c->token_of(ctx)),
                        std::string("connection lost: ") +
                            (status != REDIS_OK && ctx->errstr ? ctx->errstr : "closed"));
}

void connection::on_reply(redisAsyncContext* ctx, void* reply, void* privdata) {
  auto* c = static_cast<connection*>(ctx->data);
  auto* p = static_cast<pending*>(privdata);
  if (!c->in_flight_.empty() && c->in_flight_.front() == p) c->in_flight_.pop_front();
  // After a refused handshake (wrong password), what Redis says to the commands queued behind
  // it ("NOAUTH ...") is about the connection, not an answer to them.
  const bool answered = reply && c->fsm_.answers_from(c->token_of(ctx));
  if (!p->finished)
    c->finish(*p, answered ? error_kind::none : error_kind::connection,
              answered ? static_cast<const redisReply*>(reply) : nullptr);
  delete p;
}

void connection::on_handshake_reply(redisAsyncContext* ctx, void* reply, void* /*privdata*/) {
  auto* c = static_cast<connection*>(ctx->data);
  const auto* r = static_cast<const redisReply*>(reply);
  if (!r) return;  // the context is going away; its disconnect or the step that freed it decides
  const auto context = c->token_of(ctx);
  const bool refused = r->type == REDIS_REPLY_ERROR;
  if (refused && c->fsm_.answers_from(context))
    spdlog::error("redis {}:{}: handshake refused: {}", c->settings_.host, c->settings_.port,
                  std::string_view{r->str, r->len});
  const bool was_ready = c->fsm_.current() == state::ready;
  c->apply_from_hiredis(c->fsm_.handshake_reply(context, refused), "handshake refused");
  if (!was_ready && c->fsm_.current() == state::ready) c->arm_timeout();
}

}  // namespace gw::store::redis
