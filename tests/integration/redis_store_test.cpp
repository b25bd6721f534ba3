// The Redis store client (hiredis on Asio) against a real redis-server: it must decide exactly as
// the memory store does, case for case and field for field, for single and several checks per
// call; recover from NOSCRIPT within the call; fail fast when Redis is down and use it again once
// it is back; turn a stalled Redis into timeouts; authenticate; and pipeline the checks issued in
// one turn of the event loop into one write.
#include "store/memory_store.hpp"
#include "store/redis/redis_store.hpp"
#include "support/algorithm_cases.hpp"
#include "support/redis_info.hpp"
#include "support/redis_server.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <exception>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace gw::test::algorithm_cases;
using namespace std::chrono_literals;
using gw::algorithms::decision;
using gw::store::check_result;
using gw::store::error_kind;
using gw::store::limit_check;
using gw::store::memory_store;
using gw::store::redis::redis_store;
using gw::test::redis_server;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string text(const decision& d) {
  std::ostringstream out;
  out << "{admitted=" << d.admitted << " remaining=" << d.remaining << " reset=" << d.reset
      << " retry_after=" << d.retry_after << "}";
  return out.str();
}

bool same(const decision& a, const decision& b) {
  return a.admitted == b.admitted && a.remaining == b.remaining && a.reset == b.reset &&
         a.retry_after == b.retry_after;
}

double ms_of(steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

micros real_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             steady::now().time_since_epoch())
      .count();
}

// What the store reports for the metrics (gateway_redis_batch_commands and _checks).
struct recording_events final : gw::store::store_events {
  void batch_written(std::size_t commands, std::size_t checks) override {
    ++batches;
    this->commands += commands;
    this->checks += checks;
    largest_batch = std::max(largest_batch, checks);
  }

  int batches = 0;
  std::size_t commands = 0, checks = 0;
  std::size_t largest_batch = 0;  // in checks
};

// The checks are owned by the coroutine frame, so a caller may spawn it and forget them.
asio::awaitable<check_result> redis_check(redis_store& store, std::vector<limit_check> checks,
                                          std::optional<micros> now) {
  co_return co_await store.check_at(checks, now);
}

asio::awaitable<check_result> memory_check(memory_store& store, std::vector<limit_check> checks) {
  co_return co_await store.check(checks);
}

// Runs `op` on `io` until it completes; nullopt if `guard` passes first (a hang).
std::optional<check_result> run(asio::io_context& io, asio::awaitable<check_result> op,
                                milliseconds guard) {
  auto out = std::make_shared<std::optional<check_result>>();
  io.restart();
  asio::co_spawn(io, std::move(op), [out, &io](std::exception_ptr e, check_result r) {
    if (e) std::rethrow_exception(e);
    *out = std::move(r);
    io.stop();
  });
  io.run_for(guard);
  return std::move(*out);
}

struct timed_result {
  std::optional<check_result> result;  // nullopt: the call hung past its guard
  steady::duration elapsed{};
};

// One redis_store on its own io_context, the way a gateway worker holds it.
struct redis_client {
  redis_client(const redis_server& server, milliseconds command_timeout,
               std::string password = {})
      : store(io, settings_for(server, command_timeout), std::move(password), &events) {}

  static gw::config::redis_settings settings_for(const redis_server& server,
                                                 milliseconds command_timeout) {
    gw::config::redis_settings rs;
    rs.address = {"127.0.0.1", server.port()};
    rs.connect_timeout = 1s;
    rs.command_timeout = command_timeout;
    return rs;
  }

  timed_result check(std::vector<limit_check> checks, std::optional<micros> now = std::nullopt,
                     milliseconds guard = 5s) {
    const auto start = steady::now();
    auto r = run(io, redis_check(store, std::move(checks), now), guard);
    return {std::move(r), steady::now() - start};
  }

  // Lets the connection's own work (reconnects, late replies) run for a while.
  void idle(steady::duration d) {
    io.restart();
    io.run_for(d);
  }

  asio::io_context io;
  recording_events events;
  redis_store store;
};

// ---- the same decisions as the memory store ----

class redis_store_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new redis_server(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    server_->command({"FLUSHALL"});
  }

  // The checks of one call through both stores at `now`; false (with failures recorded) when
  // they disagree or either fails.
  bool agree(redis_client& client, memory_store& memory, micros& memory_now,
             const std::vector<limit_check>& checks, micros now, const std::string& where) {
    memory_now = now;
    const auto expected = run(client.io, memory_check(memory, checks), 5s);
    const auto got = client.check(checks, now);
    if (!expected || !expected->ok()) {
      ADD_FAILURE() << where << ": the memory store failed";
      return false;
    }
    if (!got.result) {
      ADD_FAILURE() << where << ": the Redis store did not answer within 5 s";
      return false;
    }
    if (!got.result->ok()) {
      ADD_FAILURE() << where << ": the Redis store failed: "
                    << gw::store::to_string(got.result->error);
      return false;
    }
    if (got.result->decisions.size() != checks.size()) {
      ADD_FAILURE() << where << ": " << got.result->decisions.size() << " decisions for "
                    << checks.size() << " checks";
      return false;
    }
    bool all_same = true;
    for (std::size_t i = 0; i < checks.size(); ++i) {
      const auto& m = expected->decisions[i];
      const auto& r = got.result->decisions[i];
      r.admitted ? ++admitted_ : ++rejected_;
      if (!same(m, r)) {
        ADD_FAILURE() << where << ", check " << i << " (" << checks[i].key << ", "
                      << gw::algorithms::to_string(checks[i].policy.algo) << ", cost "
                      << checks[i].policy.cost << ", now = t0 + " << now - t0
                      << " us): memory " << text(m) << ", redis " << text(r);
        all_same = false;
      }
    }
    return all_same;
  }

  int admitted_ = 0, rejected_ = 0;  // over every decision compared
  static redis_server* server_;
};

redis_server* redis_store_test::server_ = nullptr;

class every_algorithm : public redis_store_test,
                        public ::testing::WithParamInterface<algorithm> {};

TEST_P(every_algorithm, each_case_decides_as_the_memory_store_field_for_field) {
  redis_client client{*server_, 1s};
  int n = 0;
  for (const auto& sc : cases_for(GetParam())) {
    SCOPED_TRACE(sc.name);
    // A fresh memory store and a fresh key per case: both start cold.
    micros memory_now = 0;
    memory_store memory{1000, [&memory_now] { return memory_now; }};
    const std::string key = "rl:{cases:" + sc.name + ":" + std::to_string(++n) + "}";
    for (std::size_t i = 0; i < sc.requests.size(); ++i) {
      const auto& r = sc.requests[i];
      policy p = sc.p;
      if (r.cost) p.cost = r.cost;
      bool ok = true;
      for (int k = 0; k < r.times && ok; ++k)
        ok = agree(client, memory, memory_now, {{key, p}}, r.at,
                   "request " + std::to_string(i) + "." + std::to_string(k));
      if (!ok) break;
    }
  }
  EXPECT_GT(admitted_, 0);
  EXPECT_GT(rejected_, 0);
}

INSTANTIATE_TEST_SUITE_P(stores, every_algorithm, ::testing::ValuesIn(all_algorithms),
                         [](const auto& info) {
                           return std::string{gw::algorithms::to_string(info.param)};
                         });

TEST_F(redis_store_test, several_checks_in_one_call_decide_as_the_memory_store) {
  // One request with a limit of every algorithm, and every key checked twice (the second check
  // must see the first's update, though the script reads and writes each key once per call):
  // decisions come back one per check, in order.
  redis_client client{*server_, 1s};
  micros memory_now = 0;
  memory_store memory{1000, [&memory_now] { return memory_now; }};
  const std::vector<limit_check> limits{
      {"rl:{multi:per_ip:gcra}", make(algorithm::gcra, 5, 2 * s)},
      {"rl:{multi:per_ip:tb}", make(algorithm::token_bucket, 10, 3 * s, 4)},
      {"rl:{multi:per_ip:sw}", make(algorithm::sliding_window, 4, 2 * s)},
      {"rl:{multi:per_ip:sl}", make(algorithm::sliding_log, 3, 1 * s)},
      {"rl:{multi:per_ip:fw}", make(algorithm::fixed_window, 6, 2 * s)},
      {"rl:{multi:per_ip:gcra}", make(algorithm::gcra, 5, 2 * s)},
      {"rl:{multi:per_ip:tb}", make(algorithm::token_bucket, 10, 3 * s, 4)},
      {"rl:{multi:per_ip:sw}", make(algorithm::sliding_window, 4, 2 * s)},
      {"rl:{multi:per_ip:sl}", make(algorithm::sliding_log, 3, 1 * s)},
      {"rl:{multi:per_ip:fw}", make(algorithm::fixed_window, 6, 2 * s)},
      {"rl:{multi:per_ip:fw}", make(algorithm::fixed_window, 6, 2 * s)},
  };
  // A walk over times that repeat, step by fractions of a window, land on window edges and
  // skip windows. The fake clock never falls behind the real one since the walk began, so a key
  // whose TTL ran out in Redis (on the real clock) is past its reset in the memory store too.
  std::mt19937_64 rng{20240611};
  auto uniform = [&](micros lo, micros hi) {
    return std::uniform_int_distribution<micros>{lo, hi}(rng);
  };
  micros now = t0;
  micros lead = now - real_micros();
  for (int step = 0; step < 150; ++step) {
    const auto r = uniform(0, 99);
    micros candidate = now;
    if (r < 25)
      candidate = now;
    else if (r < 50)
      candidate = now + uniform(1, 300 * ms);
    else if (r < 70)
      candidate = now + uniform(300 * ms, 2 * s);
    else if (r < 85)
      candidate = (now / s + 1) * s + uniform(-1, 1);  // every window here is whole seconds
    else
      candidate = now + uniform(2 * s, 8 * s);
    const micros real = real_micros();
    now = std::max(candidate, real + lead);
    lead = now - real;

    auto checks = limits;
    for (auto& c : checks)
      c.policy.cost = static_cast<std::uint64_t>(uniform(0, 99) < 70 ? 1 : uniform(1, 3));
    if (!agree(client, memory, memory_now, checks, now, "step " + std::to_string(step))) break;
  }
  // Both outcomes must have happened, or the walk proved little.
  EXPECT_GT(admitted_, 100);
  EXPECT_GT(rejected_, 100);
  const auto idle_check = client.check(limits, now + 100 * s);
  ASSERT_TRUE(idle_check.result && idle_check.result->ok());
  ASSERT_EQ(idle_check.result->decisions.size(), limits.size());
  EXPECT_TRUE(idle_check.result->decisions[0].admitted);     // long idle: cold again
  EXPECT_EQ(idle_check.result->decisions[5].remaining, 3u);  // and the same key a second time
}

TEST_F(redis_store_test, noscript_after_script_flush_is_recovered_within_the_call) {
  redis_client client{*server_, 1s};
  std::vector<limit_check> checks;
  for (auto a : all_algorithms)
    checks.push_back(
        {"rl:{noscript:" + std::string{gw::algorithms::to_string(a)} + "}", make(a, 5, 60 * s)});

  const auto first = client.check(checks, t0);
  ASSERT_TRUE(first.result && first.result->ok());
  for (const auto& d : first.result->decisions) EXPECT_EQ(d.remaining, 4u);

  server_->flush_scripts();  // as a Redis restart or failover would
  const auto evals_before = gw::test::command_calls(*server_, "eval");
  const auto second = client.check(checks, t0);
  ASSERT_TRUE(second.result);
  ASSERT_TRUE(second.result->ok()) << gw::store::to_string(second.result->error);
  for (const auto& d : second.result->decisions) {
    EXPECT_TRUE(d.admitted);
    EXPECT_EQ(d.remaining, 3u);  // the state survived the flush, and was updated once
  }
  // One EVAL fallback per script, which also caches it again: the next call is EVALSHA only.
  const auto evals_after = gw::test::command_calls(*server_, "eval");
  EXPECT_EQ(evals_after - evals_before, 5);
  const auto third = client.check(checks, t0);
  ASSERT_TRUE(third.result && third.result->ok());
  for (const auto& d : third.result->decisions) EXPECT_EQ(d.remaining, 2u);
  EXPECT_EQ(gw::test::command_calls(*server_, "eval"), evals_after);
}

TEST_F(redis_store_test, state_of_the_wrong_type_is_a_reply_error_for_its_call_only) {
  // Someone else wrote the key (a hash where gcra keeps a string): Redis answers the script with
  // WRONGTYPE. The checks of that call fail as a reply error; the store goes on.
  redis_client client{*server_, 1s};
  const limit_check spoiled{"rl:{spoiled:1}", make(algorithm::gcra, 5, 60 * s)};
  server_->command({"HSET", spoiled.key + ":gcra", "field", "value"});
  const auto bad = client.check({spoiled}, t0);
  ASSERT_TRUE(bad.result) << "hung";
  EXPECT_EQ(bad.result->error, error_kind::reply);

  const auto fine = client.check({{"rl:{spoiled:2}", make(algorithm::fixed_window, 5, 60 * s)}},
                                 t0);
  ASSERT_TRUE(fine.result) << "hung";
  EXPECT_TRUE(fine.result->ok());
  EXPECT_TRUE(client.store.available());
}

TEST_F(redis_store_test, checks_issued_in_one_turn_leave_as_one_command_in_one_write) {
  redis_client client{*server_, 1s};
  const limit_check shared_key{"rl:{pipeline:1}", make(algorithm::gcra, 32, 3600 * s)};
  const auto warm = client.check({{"rl:{pipeline:warm}", make(algorithm::gcra, 5, 60 * s)}}, t0);
  ASSERT_TRUE(warm.result && warm.result->ok());  // connected, scripts loaded

  const auto commands_before = client.store.commands_sent();
  const auto writes_before = client.store.writes();
  const auto evalsha_before = gw::test::command_calls(*server_, "evalsha");
  const auto checks_before = client.events.checks;
  constexpr int concurrent = 64;
  int done = 0, admitted = 0, failed = 0;
  client.io.restart();
  for (int i = 0; i < concurrent; ++i)
    asio::co_spawn(client.io, redis_check(client.store, {shared_key}, t0),
                   [&](std::exception_ptr e, check_result r) {
                     if (e || !r.ok() || r.decisions.size() != 1)
                       ++failed;
                     else if (r.decisions[0].admitted)
                       ++admitted;
                     if (++done == concurrent) client.io.stop();
                   });
  client.io.run_for(5s);
  ASSERT_EQ(done, concurrent) << "checks still unanswered after 5 s";
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(admitted, 32);  // exact, however they were batched

  const auto commands = client.store.commands_sent() - commands_before;
  const auto writes = client.store.writes() - writes_before;
  const auto evalsha = gw::test::command_calls(*server_, "evalsha") - evalsha_before;
  std::cout << "[ measured ] " << concurrent << " checks in " << commands << " commands, "
            << writes << " writes; largest write " << client.events.largest_batch
            << " checks\n";
  // Issued in one turn: one EVALSHA carries them all, and Redis runs one script.
  EXPECT_EQ(commands, 1u);
  EXPECT_EQ(writes, 1u);
  EXPECT_EQ(evalsha, 1);
  EXPECT_EQ(client.events.checks - checks_before, static_cast<std::size_t>(concurrent));
  EXPECT_EQ(client.events.largest_batch, static_cast<std::size_t>(concurrent));
}

TEST_F(redis_store_test, a_turn_with_more_checks_than_one_call_carries_sends_several) {
  redis_client client{*server_, 1s};
  const auto warm = client.check({{"rl:{split:warm}", make(algorithm::gcra, 5, 60 * s)}}, t0);
  ASSERT_TRUE(warm.result && warm.result->ok());

  // 600 requests of two checks each (two algorithms), over 50 keys: 1,200 checks in one turn.
  constexpr int requests = 600;
  const auto commands_before = client.store.commands_sent();
  int done = 0, failed = 0;
  std::map<std::string, int> admitted;  // per key
  client.io.restart();
  for (int i = 0; i < requests; ++i) {
    const std::string id = std::to_string(i % 50);
    std::vector<limit_check> checks{
        {"rl:{split:gcra:" + id + "}", make(algorithm::gcra, 7, 3600 * s)},
        {"rl:{split:fw:" + id + "}", make(algorithm::fixed_window, 9, 3600 * s)}};
    asio::co_spawn(client.io, redis_check(client.store, checks, t0),
                   [&, checks](std::exception_ptr e, check_result r) {
                     if (e || !r.ok() || r.decisions.size() != 2) {
                       ++failed;
                     } else {
                       for (std::size_t k = 0; k < 2; ++k)
                         if (r.decisions[k].admitted) ++admitted[checks[k].key];
                     }
                     if (++done == requests) client.io.stop();
                   });
  }
  client.io.run_for(10s);
  ASSERT_EQ(done, requests);
  EXPECT_EQ(failed, 0);
  // 12 requests per key: gcra admits its 7, fixed_window its 9, for each of the 50 keys.
  ASSERT_EQ(admitted.size(), 100u);
  for (const auto& [key, n] : admitted) EXPECT_EQ(n, key.find(":gcra:") != std::string::npos ? 7 : 9) << key;
  // Each algorithm's 600 checks need ceil(600 / max_checks_per_call) calls.
  const auto per_algorithm = (requests + redis_store::max_checks_per_call - 1) /
                             redis_store::max_checks_per_call;
  EXPECT_EQ(client.store.commands_sent() - commands_before, 2 * per_algorithm);
}

// ---- failures: each test has a redis-server of its own to stop, pause or protect ----

// GCRA with T = 36 s: within a test nothing refills, so `remaining` counts the calls Redis ran.
const limit_check roomy{"rl:{failures:1}", make(algorithm::gcra, 100, 3600 * s)};

TEST(redis_store_failures, a_stopped_redis_fails_fast_and_a_restarted_one_is_used_again) {
  redis_server server;
  constexpr auto command_timeout = 500ms;
  redis_client client{server, command_timeout};
  const auto before = client.check({roomy});
  ASSERT_TRUE(before.result && before.result->ok());
  EXPECT_TRUE(client.store.available());

  server.stop();
  const auto first = client.check({roomy});
  ASSERT_TRUE(first.result) << "hung";
  EXPECT_EQ(first.result->error, error_kind::connection);
  EXPECT_LT(first.elapsed, command_timeout / 2);
  EXPECT_FALSE(client.store.available());

  // Known down: every later call fails at once, without waiting out any timeout.
  steady::duration slowest{};
  for (int i = 0; i < 20; ++i) {
    const auto later = client.check({roomy});
    ASSERT_TRUE(later.result) << "hung";
    EXPECT_EQ(later.result->error, error_kind::connection) << i;
    slowest = std::max(slowest, later.elapsed);
    client.idle(5ms);  // reconnect attempts go on meanwhile
  }
  EXPECT_LT(slowest, 50ms);

  // Back on the same port, empty: the same client uses it again, scripts reloaded.
  server.start();
  const auto restarted = steady::now();
  std::optional<check_result> recovered;
  while (steady::now() - restarted < 3s) {
    auto r = client.check({roomy});
    ASSERT_TRUE(r.result) << "hung";
    if (r.result->ok()) {
      recovered = std::move(r.result);
      break;
    }
    client.idle(10ms);
  }
  const auto recovery = steady::now() - restarted;
  std::cout << "[ measured ] first failure " << ms_of(first.elapsed) << " ms, later failures <= "
            << ms_of(slowest) << " ms, back in use " << ms_of(recovery)
            << " ms after the restart\n";
  ASSERT_TRUE(recovered) << "not back in use 3 s after the restart";
  EXPECT_LT(recovery, 1s);
  EXPECT_TRUE(recovered->decisions[0].admitted);
  EXPECT_EQ(recovered->decisions[0].remaining, 99u);  // a fresh Redis: the count starts over
  EXPECT_TRUE(client.store.available());
}

TEST(redis_store_failures, a_paused_redis_times_out_within_command_timeout_then_recovers) {
  redis_server server;
  constexpr auto command_timeout = 200ms;
  redis_client client{server, command_timeout};
  const auto warm = client.check({roomy});
  ASSERT_TRUE(warm.result && warm.result->ok());

  constexpr auto pause = 1500ms;
  server.pause(pause);
  const auto paused_at = steady::now();
  for (int i = 0; i < 3; ++i) {
    const auto r = client.check({roomy}, std::nullopt, 3s);
    ASSERT_TRUE(r.result) << "hung during the pause";
    EXPECT_EQ(r.result->error, error_kind::timeout) << i;
    EXPECT_GE(r.elapsed, command_timeout - 5ms) << i;
    EXPECT_LT(r.elapsed, command_timeout + 150ms) << i;
    std::cout << "[ measured ] timeout " << i << " after " << ms_of(r.elapsed) << " ms\n";
  }

  // Once the pause is over, the late replies are dropped and new calls are answered.
  client.idle(paused_at + pause + 100ms - steady::now());
  const auto after = client.check({roomy});
  ASSERT_TRUE(after.result) << "hung after the pause";
  ASSERT_TRUE(after.result->ok()) << gw::store::to_string(after.result->error);
  EXPECT_TRUE(after.result->decisions[0].admitted);
  EXPECT_LT(after.elapsed, command_timeout);
  // The timed-out calls did run in Redis once the pause ended: one warm-up, three, and this one.
  EXPECT_EQ(after.result->decisions[0].remaining, 100u - 5u);
}

TEST(redis_store_failures, a_pause_past_the_stall_limit_drops_the_connection_and_reconnects) {
  // Replies missing for max(2 s, 20 x command_timeout) mean a dead connection: it is dropped and
  // made again, and no call waits more than command_timeout in the meantime.
  redis_server server;
  constexpr auto command_timeout = 50ms;
  redis_client client{server, command_timeout};
  const auto warm = client.check({roomy});
  ASSERT_TRUE(warm.result && warm.result->ok());

  constexpr auto pause = 2600ms;
  server.pause(pause);
  const auto paused_at = steady::now();
  steady::duration slowest{};
  int calls = 0, timeouts = 0, connection_errors = 0;
  while (steady::now() - paused_at < pause - 100ms) {
    const auto r = client.check({roomy}, std::nullopt, 3s);
    ASSERT_TRUE(r.result) << "hung during the pause";
    ASSERT_FALSE(r.result->ok());
    ++calls;
    r.result->error == error_kind::timeout ? ++timeouts : ++connection_errors;
    slowest = std::max(slowest, r.elapsed);
    client.idle(20ms);
  }
  std::cout << "[ measured ] " << calls << " calls during a " << pause.count() << " ms pause: "
            << timeouts << " timeouts, " << connection_errors << " connection errors, slowest "
            << ms_of(slowest) << " ms\n";
  EXPECT_LT(slowest, command_timeout + 150ms);
  EXPECT_GT(timeouts, 0);

  std::optional<check_result> recovered;
  while (steady::now() - paused_at < pause + 3s) {
    auto r = client.check({roomy});
    ASSERT_TRUE(r.result) << "hung after the pause";
    if (r.result->ok()) {
      recovered = std::move(r.result);
      break;
    }
    client.idle(20ms);
  }
  ASSERT_TRUE(recovered) << "not answered 3 s after the pause ended";
  EXPECT_TRUE(recovered->decisions[0].admitted);
}

// A connection stopped and started again (a cluster node that lost its slots and got some back)
// must enforce command_timeout afresh: the timer it had armed was cancelled with the stop.
TEST(redis_store_failures, a_connection_started_again_keeps_its_timeouts) {
  redis_server server;
  asio::io_context io;
  gw::store::redis::connection_settings settings;
  settings.port = server.port();
  settings.command_timeout = 300ms;
  auto conn = std::make_shared<gw::store::redis::connection>(io, settings, nullptr);

  // One PING through the connection; the error it ended with, or nullopt if it hung past 5 s.
  auto ping = [&]() -> std::optional<error_kind> {
    std::optional<error_kind> out;
    const std::string_view args[] = {"PING"};
    io.restart();
    asio::post(io, [&] {
      conn->execute(args, 0, [&](error_kind e, const redisReply*) {
        out = e;
        io.stop();
      });
    });
    io.run_for(5s);
    return out;
  };
  io.restart();
  asio::post(io, [&] { conn->start(); });
  io.run_for(200ms);
  ASSERT_EQ(ping(), error_kind::none);

  // Stopped while its connect-time timer was armed, then started again.
  io.restart();
  asio::post(io, [&] {
    conn->stop();
    conn->start();
  });
  io.run_for(200ms);
  ASSERT_EQ(ping(), error_kind::none);

  server.pause(2000ms);
  const auto start = steady::now();
  const auto stalled = ping();
  ASSERT_TRUE(stalled) << "hung: no command_timeout after the restart";
  EXPECT_EQ(*stalled, error_kind::timeout);
  EXPECT_LT(steady::now() - start, 300ms + 700ms);
  conn->stop();
}

TEST(redis_store_failures, the_right_password_is_accepted) {
  gw::test::redis_options options;
  options.password = "s3cret-Pa55";
  redis_server server{options};
  redis_client client{server, 1s, "s3cret-Pa55"};
  const auto r = client.check({roomy}, t0);
  ASSERT_TRUE(r.result) << "hung";
  ASSERT_TRUE(r.result->ok()) << gw::store::to_string(r.result->error);
  EXPECT_TRUE(r.result->decisions[0].admitted);
  EXPECT_EQ(r.result->decisions[0].remaining, 99u);
  EXPECT_TRUE(client.store.available());
}

TEST(redis_store_failures, a_wrong_or_missing_password_is_a_connection_error_not_a_hang) {
  gw::test::redis_options options;
  options.password = "s3cret-Pa55";
  redis_server server{options};
  for (const std::string password : {"wrong", ""}) {
    SCOPED_TRACE("password \"" + password + "\"");
    redis_client client{server, 1s, password};
    const auto first = client.check({roomy}, t0, 3s);
    ASSERT_TRUE(first.result) << "hung";
    EXPECT_EQ(first.result->error, error_kind::connection);
    EXPECT_LT(first.elapsed, 1s);
    for (int i = 0; i < 5; ++i) {
      client.idle(20ms);
      const auto later = client.check({roomy}, t0, 3s);
      ASSERT_TRUE(later.result) << "hung";
      EXPECT_EQ(later.result->error, error_kind::connection);
      EXPECT_LT(later.elapsed, 50ms);
    }
    EXPECT_FALSE(client.store.available());
  }
  EXPECT_EQ(server.command({"DBSIZE"}), "0");  // nothing was written
}

}  // namespace
