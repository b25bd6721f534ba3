// The redis-server harness itself: what later tests rely on (restart on the same port, a
// password, pause, INFO counters) must hold before a store failure test can mean anything.
#include "support/redis_server.hpp"

#include <hiredis/hiredis.h>

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string_view>

namespace {

using gw::test::redis_server;
using namespace std::chrono_literals;

TEST(redis_server, answers_and_counts_commands) {
  redis_server server;
  EXPECT_GT(server.port(), 0);
  EXPECT_EQ(server.command({"SET", "k", "v"}), "OK");
  EXPECT_EQ(server.command({"GET", "k"}), "v");
  EXPECT_EQ(server.command({"GET", "missing"}), "");
  EXPECT_EQ(server.command({"INCR", "n"}), "1");
  const auto before = server.info_stat("total_commands_processed");
  server.command({"PING"});
  EXPECT_EQ(server.info_stat("total_commands_processed"), before + 2);  // PING and one INFO
  EXPECT_GT(server.info_stat("total_reads_processed"), 0);
  EXPECT_THROW(server.info_stat("no_such_field"), std::runtime_error);
  EXPECT_THROW(server.command({"NO-SUCH-COMMAND"}), std::runtime_error);
  // Nothing is persisted.
  EXPECT_EQ(server.command({"CONFIG", "GET", "save"}), "save\n");
  EXPECT_EQ(server.command({"CONFIG", "GET", "appendonly"}), "appendonly\nno");
}

TEST(redis_server, restarts_on_the_same_port_without_the_data) {
  redis_server server;
  const auto port = server.port();
  server.command({"SET", "k", "v"});
  server.stop();
  EXPECT_FALSE(server.running());
  EXPECT_THROW(server.command({"PING"}), std::runtime_error);
  server.start();
  EXPECT_TRUE(server.running());
  EXPECT_EQ(server.port(), port);
  EXPECT_EQ(server.command({"GET", "k"}), "");
}

TEST(redis_server, requires_its_password) {
  gw::test::redis_options options;
  options.password = "s3cret";
  redis_server server{options};
  EXPECT_EQ(server.command({"PING"}), "PONG");  // the harness authenticates
  // Anyone else must.
  redisContext* c = redisConnectWithTimeout("127.0.0.1", server.port(), timeval{2, 0});
  ASSERT_TRUE(c && !c->err);
  redisSetTimeout(c, timeval{2, 0});
  auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->type, REDIS_REPLY_ERROR);
  EXPECT_TRUE(std::string_view(r->str, r->len).starts_with("NOAUTH")) << r->str;
  freeReplyObject(r);
  redisFree(c);
  EXPECT_EQ(server.command({"CONFIG", "GET", "requirepass"}), "requirepass\ns3cret");
}

TEST(redis_server, pause_holds_commands_until_it_ends) {
  redis_server server;
  server.pause(300ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server.command({"SET", "k", "v"}), "OK");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
}

TEST(redis_server, flush_scripts_forgets_loaded_scripts) {
  redis_server server;
  const auto sha = server.command({"SCRIPT", "LOAD", "return 1"});
  EXPECT_EQ(server.command({"SCRIPT", "EXISTS", sha}), "1");
  server.flush_scripts();
  EXPECT_EQ(server.command({"SCRIPT", "EXISTS", sha}), "0");
}

}  // namespace
