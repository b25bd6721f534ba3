// The Redis connection's machine (store/redis/connection_fsm.hpp) over the event orders that
// earlier review fixes were about: lookups answered late or after a stop, a connect that fails
// at once or in hiredis' callback, a refused handshake followed by its context's other
// callbacks, timeouts, restarts with waits still on their way. No socket, no clock.
#include "store/redis/connection_fsm.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace {

using gw::store::redis::connection_fsm;
using state = connection_fsm::state;
using note = connection_fsm::log_note;
using namespace std::chrono_literals;

bool nothing(const connection_fsm::step& s) {
  return s.close == 0 && s.look_up == 0 && s.open == 0 && s.retry == 0 && s.note == note::none;
}

// Connects `fsm` (an address, `handshake` commands) and returns the context's number.
connection_fsm::token ready(connection_fsm& fsm, std::size_t handshake) {
  auto s = fsm.start();
  EXPECT_NE(s.open, 0u);
  for (std::size_t i = 0; i < handshake; ++i) fsm.handshake_reply(s.open, false);
  EXPECT_EQ(fsm.current(), state::ready);
  return s.open;
}

TEST(connection_fsm, an_address_connects_at_once_and_is_ready_after_the_whole_handshake) {
  connection_fsm fsm{"127.0.0.1", true, 2};
  EXPECT_EQ(fsm.current(), state::stopped);
  EXPECT_FALSE(fsm.accepting());
  const auto s = fsm.start();
  EXPECT_EQ(s.look_up, 0u);
  ASSERT_NE(s.open, 0u);
  EXPECT_EQ(s.address, "127.0.0.1");
  // Commands issued during the first connect queue behind the handshake.
  EXPECT_EQ(fsm.current(), state::connecting);
  EXPECT_TRUE(fsm.accepting());
  EXPECT_TRUE(nothing(fsm.handshake_reply(s.open, false)));
  EXPECT_EQ(fsm.current(), state::connecting);
  EXPECT_TRUE(nothing(fsm.handshake_reply(s.open, false)));
  EXPECT_EQ(fsm.current(), state::ready);
  EXPECT_TRUE(fsm.answers_from(s.open));
  // A second start changes nothing.
  EXPECT_TRUE(nothing(fsm.start()));
}

TEST(connection_fsm, an_ipv6_literal_is_an_address_not_a_name) {
  connection_fsm fsm{"::1", true, 1};
  const auto s = fsm.start();
  EXPECT_EQ(s.look_up, 0u);
  EXPECT_EQ(s.address, "::1");
  EXPECT_NE(s.open, 0u);
}

TEST(connection_fsm, a_name_at_start_up_is_looked_up_blocking_then_connected) {
  connection_fsm fsm{"redis.internal", true, 1};
  const auto s = fsm.start();
  ASSERT_NE(s.look_up, 0u);
  EXPECT_TRUE(s.blocking);
  EXPECT_EQ(s.open, 0u);
  EXPECT_EQ(fsm.current(), state::resolving);
  // What the driver chose among the name's addresses (here, a name with only IPv6 ones).
  const auto opened = fsm.looked_up(s.look_up, "fd00::7");
  ASSERT_NE(opened.open, 0u);
  EXPECT_EQ(opened.address, "fd00::7");
  EXPECT_EQ(fsm.current(), state::connecting);
}

TEST(connection_fsm, a_name_met_while_serving_is_looked_up_in_the_background_and_refused_meanwhile) {
  connection_fsm fsm{"node-3.cluster", false, 1};
  const auto s = fsm.start();
  ASSERT_NE(s.look_up, 0u);
  EXPECT_FALSE(s.blocking);
  EXPECT_EQ(fsm.current(), state::resolving);
  EXPECT_FALSE(fsm.accepting());  // callers fail at once rather than stall the worker
  EXPECT_NE(fsm.looked_up(s.look_up, "10.0.0.3").open, 0u);
  EXPECT_TRUE(fsm.accepting());
}

TEST(connection_fsm, a_name_without_address_retries_with_a_growing_capped_backoff) {
  connection_fsm fsm{"nowhere.invalid", true, 1};
  auto s = fsm.start();
  auto failed = fsm.looked_up(s.look_up, "");
  EXPECT_EQ(failed.note, note::failed);
  ASSERT_NE(failed.retry, 0u);
  EXPECT_EQ(failed.retry_after, 100ms);
  EXPECT_EQ(fsm.current(), state::retrying);
  EXPECT_FALSE(fsm.accepting());
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 5; ++i) {
    const auto again = fsm.retry_due(failed.retry);
    // Each retry looks the name up again, in the background now.
    ASSERT_NE(again.look_up, 0u);
    EXPECT_FALSE(again.blocking);
    EXPECT_EQ(again.open, 0u);
    failed = fsm.looked_up(again.look_up, "");
    EXPECT_EQ(failed.note, note::failed_again);  // a warning once per outage, not per retry
    waits.push_back(failed.retry_after);
  }
  EXPECT_EQ(waits, (std::vector<std::chrono::milliseconds>{200ms, 400ms, 500ms, 500ms, 500ms}));
  // The name resolves at last: connected, and the backoff starts over once ready.
  const auto again = fsm.retry_due(failed.retry);
  const auto opened = fsm.looked_up(again.look_up, "10.1.1.1");
  ASSERT_NE(opened.open, 0u);
  EXPECT_FALSE(fsm.accepting());  // still failed since last ready: callers fail at once
  EXPECT_EQ(fsm.handshake_reply(opened.open, false).note, note::recovered);
  EXPECT_TRUE(fsm.accepting());
  EXPECT_EQ(fsm.next_backoff(), 100ms);
}

TEST(connection_fsm, a_reconnect_uses_the_last_address_and_refreshes_the_name_one_lookup_at_a_time) {
  connection_fsm fsm{"redis.internal", true, 1};
  auto s = fsm.start();
  auto opened = fsm.looked_up(s.look_up, "10.0.0.1");
  fsm.handshake_reply(opened.open, false);
  auto failed = fsm.lost(opened.open);
  ASSERT_NE(failed.retry, 0u);
  const auto again = fsm.retry_due(failed.retry);
  EXPECT_EQ(again.address, "10.0.0.1");
  ASSERT_NE(again.open, 0u);
  ASSERT_NE(again.look_up, 0u);  // for the next reconnect
  EXPECT_FALSE(again.blocking);
  // That connect fails too before the (slow) lookup answers: no second lookup is asked for.
  failed = fsm.open_failed(again.open);
  const auto third = fsm.retry_due(failed.retry);
  EXPECT_EQ(third.look_up, 0u);
  EXPECT_EQ(third.address, "10.0.0.1");
  // The lookup answers with a new address: only the next reconnect uses it.
  EXPECT_TRUE(nothing(fsm.looked_up(again.look_up, "10.0.0.2")));
  EXPECT_EQ(fsm.current(), state::connecting);
  failed = fsm.timed_out(third.open);
  EXPECT_EQ(failed.close, third.open);
  EXPECT_EQ(fsm.retry_due(failed.retry).address, "10.0.0.2");
}

TEST(connection_fsm, a_failed_lookup_keeps_the_address_known_before) {
  connection_fsm fsm{"redis.internal", true, 1};
  auto s = fsm.start();
  auto opened = fsm.looked_up(s.look_up, "10.0.0.1");
  auto failed = fsm.lost(opened.open);
  const auto again = fsm.retry_due(failed.retry);
  fsm.looked_up(again.look_up, "");  // DNS down
  failed = fsm.lost(again.open);
  EXPECT_EQ(fsm.retry_due(failed.retry).address, "10.0.0.1");
}

TEST(connection_fsm, a_connect_that_fails_at_once_or_in_the_callback_waits_then_retries) {
  connection_fsm fsm{"127.0.0.1", true, 1};
  const auto s = fsm.start();
  const auto failed = fsm.open_failed(s.open);
  EXPECT_EQ(failed.close, 0u);  // hiredis frees a context whose connect failed
  EXPECT_EQ(failed.note, note::failed);
  EXPECT_FALSE(fsm.accepting());
  EXPECT_FALSE(fsm.answers_from(s.open));
  // Anything more from that context (a duplicate report) is ignored.
  EXPECT_TRUE(nothing(fsm.lost(s.open)));
  EXPECT_TRUE(nothing(fsm.open_failed(s.open)));
  const auto again = fsm.retry_due(failed.retry);
  ASSERT_NE(again.open, 0u);
  EXPECT_NE(again.open, s.open);
  // A retry wait fires once: a duplicate (or one from before) opens nothing.
  EXPECT_TRUE(nothing(fsm.retry_due(failed.retry)));
}

TEST(connection_fsm, a_refused_handshake_gives_the_context_up_and_its_later_callbacks_change_nothing) {
  connection_fsm fsm{"127.0.0.1", true, 3};  // AUTH, SELECT, SCRIPT LOAD
  const auto s = fsm.start();
  const auto refused = fsm.handshake_reply(s.open, true);
  EXPECT_EQ(refused.close, s.open);
  EXPECT_NE(refused.retry, 0u);
  EXPECT_EQ(fsm.current(), state::retrying);
  // What the commands queued behind it are told ("NOAUTH") is not an answer.
  EXPECT_FALSE(fsm.answers_from(s.open));
  // The rest of its handshake, then its disconnect when freed: no ready, no second retry.
  EXPECT_TRUE(nothing(fsm.handshake_reply(s.open, false)));
  EXPECT_TRUE(nothing(fsm.handshake_reply(s.open, false)));
  EXPECT_TRUE(nothing(fsm.lost(s.open)));
  EXPECT_EQ(fsm.current(), state::retrying);
  EXPECT_NE(fsm.retry_due(refused.retry).open, 0u);
}

TEST(connection_fsm, a_connect_timeout_closes_the_context_and_its_late_replies_are_ignored) {
  connection_fsm fsm{"127.0.0.1", true, 1};
  const auto s = fsm.start();
  const auto timed_out = fsm.timed_out(s.open);
  EXPECT_EQ(timed_out.close, s.open);
  ASSERT_NE(timed_out.retry, 0u);
  // Freeing it calls its disconnect callback: ignored, as a reply that raced the timer would be.
  EXPECT_TRUE(nothing(fsm.lost(s.open)));
  EXPECT_TRUE(nothing(fsm.handshake_reply(s.open, false)));
  EXPECT_EQ(fsm.current(), state::retrying);
}

TEST(connection_fsm, stalled_replies_on_a_ready_connection_close_it) {
  connection_fsm fsm{"127.0.0.1", true, 1};
  const auto context = ready(fsm, 1);
  const auto stalled = fsm.timed_out(context);
  EXPECT_EQ(stalled.close, context);
  EXPECT_EQ(stalled.note, note::failed);
  EXPECT_FALSE(fsm.accepting());
  // A timeout of the old context after the new one is connecting closes nothing new.
  const auto again = fsm.retry_due(stalled.retry);
  EXPECT_TRUE(nothing(fsm.timed_out(context)));
  EXPECT_EQ(fsm.context(), again.open);
}

TEST(connection_fsm, stop_gives_up_what_is_on_its_way_and_a_restart_is_not_confused_by_it) {
  connection_fsm fsm{"redis.internal", false, 1};
  const auto s = fsm.start();
  const auto stopped = fsm.stop();
  EXPECT_EQ(stopped.close, 0u);  // nothing was open yet
  EXPECT_EQ(fsm.current(), state::stopped);
  // The cancelled lookup's handler still runs: it must not connect a stopped connection.
  EXPECT_TRUE(nothing(fsm.looked_up(s.look_up, "10.0.0.1")));
  EXPECT_EQ(fsm.current(), state::stopped);
  // Restarted: a new lookup; the old one answering late changes nothing, the new one connects.
  const auto restarted = fsm.start();
  ASSERT_NE(restarted.look_up, 0u);
  EXPECT_NE(restarted.look_up, s.look_up);
  EXPECT_TRUE(nothing(fsm.looked_up(s.look_up, "10.0.0.9")));
  EXPECT_EQ(fsm.current(), state::resolving);
  const auto opened = fsm.looked_up(restarted.look_up, "10.0.0.1");
  EXPECT_EQ(opened.address, "10.0.0.1");
}

TEST(connection_fsm, stop_closes_a_ready_connection) {
  connection_fsm fsm{"127.0.0.1", true, 1};
  const auto context = ready(fsm, 1);
  const auto stopped = fsm.stop();
  EXPECT_EQ(stopped.close, context);
  EXPECT_FALSE(fsm.accepting());
  EXPECT_TRUE(nothing(fsm.lost(context)));  // its disconnect, called while it is freed
}

TEST(connection_fsm, a_refused_context_whose_freeing_is_still_posted_is_freed_by_what_comes_next) {
  // After a refused handshake the driver posts the free (not inside hiredis' callback); a stop
  // or the next open that runs first names that context to free as well.
  connection_fsm fsm{"127.0.0.1", true, 1};
  auto s = fsm.start();
  auto refused = fsm.handshake_reply(s.open, true);
  EXPECT_EQ(fsm.stop().close, s.open);

  s = fsm.start();
  refused = fsm.handshake_reply(s.open, true);
  const auto again = fsm.retry_due(refused.retry);
  EXPECT_EQ(again.close, s.open);
  EXPECT_NE(again.open, 0u);
}

TEST(connection_fsm, a_stop_and_restart_after_a_loss_are_not_confused_by_old_callbacks_and_waits) {
  connection_fsm fsm{"127.0.0.1", true, 1};
  const auto context = ready(fsm, 1);
  const auto failed = fsm.lost(context);
  const auto stopped = fsm.stop();
  // Lost: hiredis freed it already; the driver finds no such context and frees nothing.
  EXPECT_EQ(stopped.close, context);
  // The retry wait from before the stop fires anyway (a cancel can race its handler).
  EXPECT_TRUE(nothing(fsm.retry_due(failed.retry)));
  EXPECT_EQ(fsm.current(), state::stopped);

  const auto again = fsm.start();
  ASSERT_NE(again.open, 0u);
  EXPECT_TRUE(nothing(fsm.retry_due(failed.retry)));  // still stale after the restart
  EXPECT_TRUE(nothing(fsm.lost(context)));
  EXPECT_EQ(fsm.current(), state::connecting);
  const auto closing = fsm.stop();
  EXPECT_EQ(closing.close, again.open);
  EXPECT_FALSE(fsm.answers_from(again.open));
  EXPECT_TRUE(nothing(fsm.handshake_reply(again.open, false)));
  EXPECT_EQ(fsm.current(), state::stopped);
}

TEST(connection_fsm, a_connection_lost_twice_in_one_outage_warns_once_and_waits_once) {
  connection_fsm fsm{"127.0.0.1", true, 1};
  const auto context = ready(fsm, 1);
  const auto first = fsm.lost(context);
  EXPECT_EQ(first.note, note::failed);
  // The stall timer fires for the same context after the disconnect: no second wait.
  EXPECT_TRUE(nothing(fsm.timed_out(context)));
  const auto again = fsm.retry_due(first.retry);
  const auto second = fsm.open_failed(again.open);
  EXPECT_EQ(second.note, note::failed_again);
  EXPECT_EQ(second.retry_after, 200ms);
}

TEST(connection_fsm, token_zero_names_nothing) {
  connection_fsm fsm{"127.0.0.1", true, 1};
  fsm.start();
  EXPECT_TRUE(nothing(fsm.lost(0)));
  EXPECT_TRUE(nothing(fsm.timed_out(0)));
  EXPECT_TRUE(nothing(fsm.handshake_reply(0, true)));
  EXPECT_TRUE(nothing(fsm.retry_due(0)));
  EXPECT_TRUE(nothing(fsm.looked_up(0, "10.0.0.1")));
  EXPECT_FALSE(fsm.answers_from(0));
  EXPECT_EQ(fsm.current(), state::connecting);
}

// Every order, as far as a seeded random walk of 20,000 events reaches: each event with the
// token on its way, an older one, or none. After each step the machine's state and what it has
// on its way agree, and the step asks for nothing it should not.
void walk(connection_fsm fsm, unsigned seed) {
  std::mt19937 random{seed};
  std::vector<connection_fsm::token> seen{0};
  auto pick = [&](connection_fsm::token current) {
    const auto roll = random() % 4;
    if (roll < 2 && current != 0) return current;
    return seen[random() % seen.size()];
  };
  for (int i = 0; i < 20'000; ++i) {
    connection_fsm::step s;
    const auto event = random() % 9;
    switch (event) {
      case 0: s = fsm.start(); break;
      case 1: s = fsm.stop(); break;
      case 2:
        s = fsm.looked_up(pick(fsm.lookup_pending()),
                          random() % 3 == 0 ? "" : "10.0.0." + std::to_string(random() % 4));
        break;
      case 3: s = fsm.open_failed(pick(fsm.context())); break;
      case 4:
      case 5: s = fsm.handshake_reply(pick(fsm.context()), random() % 8 == 0); break;
      case 6: s = fsm.lost(pick(fsm.context())); break;
      case 7: s = fsm.timed_out(pick(fsm.context())); break;
      default: s = fsm.retry_due(pick(fsm.retry_pending())); break;
    }
    SCOPED_TRACE("seed " + std::to_string(seed) + ", event " + std::to_string(i) + " (" +
                 std::to_string(event) + ")");
    for (auto t : {s.look_up, s.open, s.retry})
      if (t != 0) seen.push_back(t);
    const auto now = fsm.current();
    switch (now) {
      case state::stopped:
        ASSERT_EQ(fsm.context(), 0u);
        ASSERT_EQ(fsm.lookup_pending(), 0u);
        ASSERT_EQ(fsm.retry_pending(), 0u);
        break;
      case state::resolving:  // never stuck: a lookup is always on its way
        ASSERT_NE(fsm.lookup_pending(), 0u);
        ASSERT_EQ(fsm.context(), 0u);
        ASSERT_EQ(fsm.retry_pending(), 0u);
        break;
      case state::connecting:
      case state::ready:
        ASSERT_NE(fsm.context(), 0u);
        ASSERT_EQ(fsm.retry_pending(), 0u);
        break;
      case state::retrying:  // exactly one wait, nothing open
        ASSERT_NE(fsm.retry_pending(), 0u);
        ASSERT_EQ(fsm.context(), 0u);
        break;
    }
    ASSERT_FALSE(s.open != 0 && s.retry != 0);
    if (s.open != 0) {
      ASSERT_EQ(now, state::connecting);
      ASSERT_EQ(fsm.context(), s.open);
      ASSERT_FALSE(s.address.empty());
    }
    if (s.retry != 0) {
      ASSERT_EQ(now, state::retrying);
      ASSERT_EQ(fsm.retry_pending(), s.retry);
      ASSERT_GE(s.retry_after, connection_fsm::first_backoff);
      ASSERT_LE(s.retry_after, connection_fsm::max_backoff);
    }
    if (s.close != 0) {
      ASSERT_NE(s.close, fsm.context());  // never the one it keeps
    }
    if (s.blocking) {
      ASSERT_NE(s.look_up, 0u);
    }
    if (fsm.accepting()) {
      ASSERT_TRUE(now == state::connecting || now == state::ready);
    }
  }
}

TEST(connection_fsm, every_event_order_keeps_the_state_and_what_is_on_its_way_in_agreement) {
  for (unsigned seed = 1; seed <= 3; ++seed) {
    walk(connection_fsm{"127.0.0.1", true, 2}, seed);
    walk(connection_fsm{"redis.internal", true, 1}, seed);
    walk(connection_fsm{"node-3.cluster", false, 3}, seed);
  }
}

}  // namespace
