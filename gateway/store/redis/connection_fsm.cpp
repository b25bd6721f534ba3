// The Redis connection's states and events (see connection_fsm.hpp).
#include "store/redis/connection_fsm.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <utility>

namespace gw::store::redis {

namespace {

bool is_address(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

connection_fsm::connection_fsm(std::string host, bool resolve_blocking,
                               std::size_t handshake_commands)
    : host_(std::move(host)), is_name_(!is_address(host_)), resolve_blocking_(resolve_blocking),
      handshake_commands_(handshake_commands) {
  if (!is_name_) address_ = host_;
}

connection_fsm::step connection_fsm::start() {
  if (state_ != state::stopped) return {};
  return attempt(resolve_blocking_);
}

connection_fsm::step connection_fsm::stop() {
  step s;
  s.close = context_ != 0 ? context_ : retired_;
  // Whatever is on its way (a lookup, a retry wait, a context's callbacks) now names the past.
  retired_ = s.close;
  context_ = lookup_ = retry_ = 0;
  state_ = state::stopped;
  return s;
}

connection_fsm::step connection_fsm::attempt(bool may_block) {
  if (!is_name_ || (looked_up_once_ && !address_.empty())) {
    step s;
    // A name is looked up again for the next reconnect; this one uses the last known address.
    // One lookup at a time: during a DNS outage each may take seconds, reconnects come faster.
    if (is_name_ && lookup_ == 0) s.look_up = lookup_ = next();
    return open_now(std::move(s));
  }
  // No address yet: connecting waits for the lookup (the one on its way, if there is one).
  state_ = state::resolving;
  step s;
  if (lookup_ == 0) {
    s.look_up = lookup_ = next();
    s.blocking = may_block && !looked_up_once_;
  }
  return s;
}

connection_fsm::step connection_fsm::open_now(step s) {
  s.close = retired_;  // freed already, unless its freeing is still on its way
  state_ = state::connecting;
  context_ = s.open = next();
  s.address = address_;
  handshake_left_ = std::max<std::size_t>(handshake_commands_, 1);
  return s;
}

connection_fsm::step connection_fsm::fail(step s) {
  s.note = failed_ ? log_note::failed_again : log_note::failed;
  failed_ = true;
  if (context_ != 0) retired_ = context_;
  context_ = 0;
  state_ = state::retrying;
  s.retry = retry_ = next();
  s.retry_after = backoff_;
  // Capped low: a Redis that comes back is in use again within half a second.
  backoff_ = std::min(backoff_ * 2, max_backoff);
  return s;
}

connection_fsm::step connection_fsm::looked_up(token lookup, std::string address) {
  if (lookup == 0 || lookup != lookup_) return {};
  lookup_ = 0;
  looked_up_once_ = true;
  if (!address.empty()) address_ = std::move(address);
  if (state_ != state::resolving) return {};  // a refresh for the next reconnect
  if (address_.empty()) return fail({});      // the name has no address (yet)
  return open_now({});
}

connection_fsm::step connection_fsm::open_failed(token context) {
  if (!answers_from(context)) return {};
  return fail({});
}

connection_fsm::step connection_fsm::handshake_reply(token context, bool refused) {
  if (!answers_from(context) || state_ != state::connecting) return {};
  if (refused) {
    step s;
    s.close = context_;
    return fail(std::move(s));
  }
  if (--handshake_left_ > 0) return {};
  step s;
  if (failed_) s.note = log_note::recovered;
  state_ = state::ready;
  failed_ = false;
  backoff_ = first_backoff;
  return s;
}

connection_fsm::step connection_fsm::lost(token context) {
  if (!answers_from(context)) return {};
  return fail({});
}

connection_fsm::step connection_fsm::timed_out(token context) {
  if (!answers_from(context)) return {};
  step s;
  s.close = context_;
  return fail(std::move(s));
}

connection_fsm::step connection_fsm::retry_due(token retry) {
  if (retry == 0 || retry != retry_ || state_ != state::retrying) return {};
  retry_ = 0;
  return attempt(false);
}

}  // namespace gw::store::redis
