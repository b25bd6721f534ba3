// Starting, probing and stopping redis-server for the integration tests (see redis_server.hpp).
#include "support/redis_server.hpp"

#include "support/child_process.hpp"
#include "support/gateway_process.hpp"

#include <hiredis/hiredis.h>

#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace gw::test {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto poll_interval = 10ms;
constexpr auto ready_timeout = 10s;
constexpr auto command_timeout = 5s;

std::string error_text(int error) { return std::strerror(error); }

timeval to_timeval(std::chrono::milliseconds ms) {
  return {static_cast<time_t>(ms.count() / 1000),
          static_cast<suseconds_t>(ms.count() % 1000 * 1000)};
}

std::string find_redis_server() {
  if (const char* path = std::getenv("PATH")) {
    std::istringstream dirs{path};
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      if (dir.empty()) continue;
      std::string candidate = dir + "/redis-server";
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  if (::access("/usr/bin/redis-server", X_OK) == 0) return "/usr/bin/redis-server";
  throw std::runtime_error("redis-server not found on PATH or in /usr/bin (scripts/install-deps)");
}

std::string make_temp_dir() {
  char path[] = "/tmp/gateway-redis-XXXXXX";
  if (::mkdtemp(path) == nullptr)
    throw std::runtime_error(std::string("mkdtemp: ") + error_text(errno));
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

std::string reply_text(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS: return std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
    case REDIS_REPLY_NIL: return {};
    case REDIS_REPLY_ARRAY: {
      std::string text;
      for (std::size_t i = 0; i < r->elements; ++i) {
        if (i > 0) text += '\n';
        text += reply_text(r->element[i]);
      }
      return text;
    }
    default: return std::string(r->str ? r->str : "", r->str ? r->len : 0);
  }
}

struct reply_deleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

reply_ptr run(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  return reply_ptr{static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data()))};
}

}  // namespace

void redis_server::context_deleter::operator()(redisContext* c) const { redisFree(c); }

redis_server::redis_server(redis_options options)
    : options_(std::move(options)), binary_(find_redis_server()), dir_(make_temp_dir()) {
  // A write to a connection the server closed must fail with EPIPE, not end the test program.
  std::signal(SIGPIPE, SIG_IGN);
  // free_port() leaves a moment in which someone else may take the port: try another one then.
  for (int attempt = 1;; ++attempt) {
    port_ = free_port();
    try {
      spawn();
      wait_ready(ready_timeout);
      return;
    } catch (const std::exception&) {
      bool port_taken = log_text().find("Address already in use") != std::string::npos;
      kill_and_reap(std::exchange(pid_, -1));
      if (!port_taken || attempt == 3) {
        if (!std::getenv("GW_TEST_KEEP_TMP")) {
          std::error_code ignored;
          std::filesystem::remove_all(dir_, ignored);
        }
        throw;
      }
    }
  }
}

redis_server::~redis_server() {
  context_.reset();
  kill_and_reap(pid_);
  if (!std::getenv("GW_TEST_KEEP_TMP")) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

void redis_server::spawn() {
  std::vector<std::string> argv{binary_,     "--port",       std::to_string(port_),
                                "--bind",    "127.0.0.1",    "--save",
                                "",          "--appendonly", "no",
                                "--dir",     dir_,           "--daemonize",
                                "no"};
  if (!options_.password.empty()) {
    argv.push_back("--requirepass");
    argv.push_back(options_.password);
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  // stdout and stderr appended to one log, so that a restart keeps the earlier one.
  const std::string log = dir_ + "/redis.log";
  pid_ = gw::test::spawn(argv, log, log, output_mode::append);
}

void redis_server::wait_ready(std::chrono::milliseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  std::string last_error = "no attempt";
  for (;;) {
    if (auto code = try_reap(pid_)) {
      pid_ = -1;
      throw std::runtime_error("redis-server exited with " + std::to_string(*code) +
                               " before it answered PING; log:\n" + log_text());
    }
    try {
      if (command({"PING"}) == "PONG") return;
      last_error = "PING answered otherwise";
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    if (clock_type::now() >= deadline)
      throw std::runtime_error("redis-server on port " + std::to_string(port_) +
                               " did not answer PING within " + std::to_string(timeout.count()) +
                               " ms (" + last_error + "); log:\n" + log_text());
    std::this_thread::sleep_for(poll_interval);
  }
}

redisContext* redis_server::connection() {
  if (context_) return context_.get();
  std::unique_ptr<redisContext, context_deleter> c{
      redisConnectWithTimeout("127.0.0.1", port_, to_timeval(1000ms))};
  if (!c) throw std::runtime_error("redisConnectWithTimeout: out of memory");
  if (c->err) throw std::runtime_error("connect to redis-server: " + std::string(c->errstr));
  if (redisSetTimeout(c.get(), to_timeval(command_timeout)) != REDIS_OK)
    throw std::runtime_error("redisSetTimeout: " + std::string(c->errstr));
  if (!options_.password.empty()) {
    auto r = run(c.get(), {"AUTH", options_.password});
    if (!r) throw std::runtime_error("AUTH: " + std::string(c->errstr));
    if (r->type == REDIS_REPLY_ERROR) throw std::runtime_error("AUTH: " + reply_text(r.get()));
  }
  context_ = std::move(c);
  return context_.get();
}

void redis_server::disconnect() { context_.reset(); }

std::string redis_server::command(std::initializer_list<std::string> args) {
  return command(std::vector<std::string>(args));
}

std::string redis_server::command(const std::vector<std::string>& args) {
  redisContext* c = connection();
  auto r = run(c, args);
  if (!r) {
    std::string error = c->errstr;
    disconnect();  // hiredis contexts are unusable after an I/O error
    throw std::runtime_error((args.empty() ? std::string{} : args.front()) + ": " + error);
  }
  if (r->type == REDIS_REPLY_ERROR)
    throw std::runtime_error(args.front() + ": " + reply_text(r.get()));
  return reply_text(r.get());
}

std::int64_t redis_server::info_stat(std::string_view field) {
  std::istringstream info{command({"INFO", "everything"})};
  std::string line;
  while (std::getline(info, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > field.size() && line.starts_with(field) && line[field.size()] == ':')
      return std::stoll(line.substr(field.size() + 1));
  }
  throw std::runtime_error("INFO has no field " + std::string(field));
}

void redis_server::flush_scripts() { command({"SCRIPT", "FLUSH"}); }

void redis_server::pause(std::chrono::milliseconds duration) {
  command({"CLIENT", "PAUSE", std::to_string(duration.count())});
}

void redis_server::stop(std::chrono::milliseconds timeout) {
  disconnect();
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const pid_t pid = std::exchange(pid_, -1);
  if (!reap_within(pid, timeout)) kill_and_reap(pid);
}

void redis_server::start() {
  if (pid_ > 0) return;
  spawn();
  try {
    wait_ready(ready_timeout);
  } catch (...) {
    kill_and_reap(std::exchange(pid_, -1));
    throw;
  }
}

std::string redis_server::log_text() const { return read_file(dir_ + "/redis.log"); }

}  // namespace gw::test
