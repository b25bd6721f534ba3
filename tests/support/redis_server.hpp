// A real redis-server for integration tests: on 127.0.0.1 and a port picked at run time, no
// persistence, its own temp dir and log; stopped, restarted on the same port, or paused at will.
// Every wait is bounded; failures throw with the server's log.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct redisContext;

namespace gw::test {

struct redis_options {
  std::string password;                 // requirepass; empty = none
  std::vector<std::string> extra_args;  // more redis-server arguments, e.g. {"--maxmemory", "1mb"}
};

class redis_server {
 public:
  // Starts the server and waits until it answers PING.
  explicit redis_server(redis_options options = {});
  // SIGKILL if still running, reap, remove the temp dir (kept when GW_TEST_KEEP_TMP is set).
  ~redis_server();

  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  std::uint16_t port() const { return port_; }
  const std::string& password() const { return options_.password; }
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // SIGTERM and wait for the exit (SIGKILL after `timeout`). Nothing if already stopped.
  void stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Starts again on the same port (for restart tests): data gone as after a crash, unless
  // extra_args turned persistence on (e.g. --appendonly yes).
  void start();

  // CLIENT PAUSE <ms> (all commands): the server accepts connections but answers nothing until
  // the pause ends. command() and info_stat() block too, for at most their 5 s timeout.
  void pause(std::chrono::milliseconds duration);

  // One command over the harness' own connection (authenticated). The reply as text: strings and
  // status as they are, integers in decimal, nil as "", arrays one element per line. An error
  // reply or a connection failure throws.
  std::string command(std::initializer_list<std::string> args);
  std::string command(const std::vector<std::string>& args);
  // A field of INFO, e.g. total_commands_processed, total_reads_processed, connected_clients.
  // The harness' own commands count in these too (one INFO per call).
  std::int64_t info_stat(std::string_view field);
  // SCRIPT FLUSH: the next EVALSHA gets NOSCRIPT.
  void flush_scripts();

  std::string log_text() const;

 private:
  void spawn();
  void wait_ready(std::chrono::milliseconds timeout);
  redisContext* connection();
  void disconnect();

  redis_options options_;
  std::string binary_;
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  struct context_deleter {
    void operator()(redisContext* c) const;
  };
  std::unique_ptr<redisContext, context_deleter> context_;
};

}  // namespace gw::test
