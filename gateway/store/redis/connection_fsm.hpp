// What one Redis connection is doing, written down as a machine without sockets or clocks (as
// Boost.Redis writes its connection down): the driver (connection.cpp) tells it what happened,
// and it answers with the step to take. Every lookup, context and retry wait it asks for has a
// number; an event that names an older one (a lookup answered after stop(), a hiredis callback
// of a context already given up, a retry wait from before a restart) changes nothing.
//
//            start ─┬─ address known ──────────────────────────► connecting ── handshake done ─► ready
//                   └─ name to look up ─► resolving ─ address ─►     │                              │
//   stopped ◄─ stop (from anywhere)           │ none              refused, failed, timed out,    lost, timed out
//                                             ▼                    lost                           │
//                                          retrying ◄─────────────────┴──────────────────────────────┘
//                                             └─ retry due ─► (as start, without a blocking lookup)
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace gw::store::redis {

class connection_fsm {
 public:
  enum class state { stopped, resolving, connecting, ready, retrying };
  using token = std::uint64_t;  // 0 names nothing
  enum class log_note { none, failed, failed_again, recovered };

  // What to do, in this order; any part may be absent.
  struct step {
    token close = 0;        // free this context if it still exists (what is pending on it fails)
    token look_up = 0;      // look the name up, answering looked_up(look_up, ...)
    bool blocking = false;  // right now, before anything else (start-up)
    token open = 0;         // connect a new context to `address`, sending the handshake
    std::string address;
    token retry = 0;  // wait `retry_after`, then retry_due(retry)
    std::chrono::milliseconds retry_after{0};
    // For the log: the first failure of an outage is worth a warning, the retries that follow
    // are not, and the end of an outage is log_note.
    log_note note = log_note::none;
  };

  // `host`: an address or a name. `resolve_blocking`: the first lookup of a name happens at
  // once (at start-up) rather than in the background. `handshake_commands`: how many replies
  // make the connection ready.
  connection_fsm(std::string host, bool resolve_blocking, std::size_t handshake_commands);

  step start();
  step stop();
  // `address` empty: the name has none (or the lookup failed); the last known one is kept.
  step looked_up(token lookup, std::string address);
  // The connect was refused or failed: at once (the driver frees that context) or in hiredis'
  // connect callback (hiredis frees it).
  step open_failed(token context);
  step handshake_reply(token context, bool refused);
  // hiredis reports the connection gone (it frees the context itself).
  step lost(token context);
  // The connect deadline passed, or replies stalled.
  step timed_out(token context);
  step retry_due(token retry);

  state current() const { return state_; }
  // Whether a command issued now can be answered: ready, or still on the first connect. After a
  // failure, false until the connection is back, so that callers fail at once.
  bool accepting() const {
    return state_ == state::ready || (state_ == state::connecting && !failed_);
  }
  // Whether what a context says is an answer: not once it was given up (after a refused
  // handshake, the "NOAUTH" that the commands queued behind it get is about the connection).
  bool answers_from(token context) const {
    return context != 0 && context == context_ &&
           (state_ == state::connecting || state_ == state::ready);
  }
  token context() const { return context_; }
  // What is on its way, for the driver's checks and the tests' invariants.
  token lookup_pending() const { return lookup_; }
  token retry_pending() const { return retry_; }
  const std::string& address() const { return address_; }
  std::chrono::milliseconds next_backoff() const { return backoff_; }

  static constexpr std::chrono::milliseconds first_backoff{100};
  static constexpr std::chrono::milliseconds max_backoff{500};

 private:
  step attempt(bool may_block);
  step open_now(step s);
  step fail(step s);
  token next() { return ++last_token_; }

  std::string host_;
  bool is_name_;
  bool resolve_blocking_;
  std::size_t handshake_commands_;
  state state_ = state::stopped;
  std::string address_;        // host_, or what that name resolved to last
  bool looked_up_once_ = false;
  bool failed_ = false;        // since the last time it was ready
  token last_token_ = 0;
  token context_ = 0;          // the live context, connecting or ready
  // The last context given up. Its freeing may still be on its way (after a refused handshake
  // the driver must not free it inside hiredis' callback), so stop() and the next open name it
  // to be freed too: no context outlives the machine's interest in it.
  token retired_ = 0;
  token lookup_ = 0;           // the lookup on its way
  token retry_ = 0;            // the retry wait on its way
  std::size_t handshake_left_ = 0;
  std::chrono::milliseconds backoff_ = first_backoff;
};

}  // namespace gw::store::redis
