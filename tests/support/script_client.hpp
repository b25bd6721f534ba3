// A synchronous hiredis connection for tests that call the Lua scripts of store/redis/ directly,
// with an explicit now (scripts.hpp's calling convention), and decode their replies on their own.
#pragma once

#include "algorithms/algorithms.hpp"
#include "store/redis/scripts.hpp"
#include "support/algorithm_cases.hpp"

#include <hiredis/hiredis.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace gw::test {


struct reply_deleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<redisReply, reply_deleter>;

class script_client {
  using policy = algorithms::policy;
  using decision = algorithms::decision;
  using micros = algorithms::micros;


 public:
  explicit script_client(std::uint16_t port) {
    context_.reset(redisConnectWithTimeout("127.0.0.1", port, timeval{2, 0}));
    if (!context_ || context_->err)
      throw std::runtime_error("connect: " + std::string(context_ ? context_->errstr : "oom"));
    redisSetTimeout(context_.get(), timeval{5, 0});
  }

  reply_ptr command(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    reply_ptr r{static_cast<redisReply*>(redisCommandArgv(
        context_.get(), static_cast<int>(argv.size()), argv.data(), lengths.data()))};
    if (!r) throw std::runtime_error(args.front() + ": " + context_->errstr);
    return r;
  }

  std::string string_reply(const std::vector<std::string>& args) {
    auto r = command(args);
    if (r->type == REDIS_REPLY_NIL) return {};
    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
      throw std::runtime_error(args.front() + ": not a string reply: " + describe(r.get()));
    return {r->str, r->len};
  }

  long long integer_reply(const std::vector<std::string>& args) {
    auto r = command(args);
    if (r->type != REDIS_REPLY_INTEGER)
      throw std::runtime_error(args.front() + ": not an integer reply: " + describe(r.get()));
    return r->integer;
  }

  void load_scripts() {
    for (auto a : algorithm_cases::all_algorithms) {
      const auto& sc = store::redis::script_for(a);
      if (string_reply({"SCRIPT", "LOAD", std::string{sc.source}}) != sc.sha1)
        throw std::runtime_error("SCRIPT LOAD of " + std::string{sc.name} + ": another sha1");
    }
  }

  // One check per call: EVALSHA sha 1 key now 1 requests window burst cost 1 (scripts.hpp).
  static std::vector<std::string> argv_for(const std::string& sha_or_source, bool by_source,
                                           const std::string& key, const policy& p,
                                           std::optional<micros> now) {
    return {by_source ? "EVAL" : "EVALSHA",
            sha_or_source,
            "1",
            key,
            now ? std::to_string(*now) : "",
            "1",
            std::to_string(p.requests),
            std::to_string(p.window),
            std::to_string(p.burst),
            std::to_string(p.cost),
            "1"};
  }

  // Several checks of one algorithm in one call, all at `now`.
  std::vector<decision> check_all(const std::vector<std::pair<std::string, policy>>& checks,
                                  micros now) {
    std::vector<std::string> args{"EVALSHA", store::redis::script_for(checks.front().second.algo).sha1,
                                  std::to_string(checks.size())};
    for (const auto& c : checks) args.push_back(c.first);
    args.push_back(std::to_string(now));
    // A policy per check, listed backwards: the script must follow the numbers, not the order.
    args.push_back(std::to_string(checks.size()));
    for (auto c = checks.rbegin(); c != checks.rend(); ++c)
      for (auto v : {c->second.requests, static_cast<std::uint64_t>(c->second.window),
                     c->second.burst, c->second.cost})
        args.push_back(std::to_string(v));
    for (std::size_t i = 0; i < checks.size(); ++i)
      args.push_back(std::to_string(checks.size() - i));
    auto r = command(args);
    return decisions_of(r.get(), checks.size());
  }

  reply_ptr evalsha(const std::string& key, const policy& p, std::optional<micros> now) {
    return command(argv_for(store::redis::script_for(p.algo).sha1, false, key, p, now));
  }

  // The reply of scripts.hpp, decoded here on its own: 32 bytes per check, its four fields as
  // 8-byte big-endian signed integers.
  static std::vector<decision> decisions_of(const redisReply* r, std::size_t n) {
    if (r->type != REDIS_REPLY_STRING || r->len != 32 * n)
      throw std::runtime_error("not a string of " + std::to_string(32 * n) +
                               " bytes: " + describe(r));
    std::vector<decision> out;
    const auto* bytes = reinterpret_cast<const unsigned char*>(r->str);
    for (std::size_t i = 0; i < n; ++i) {
      std::int64_t f[4];
      for (auto& field : f) {
        std::uint64_t v = 0;
        for (int b = 0; b < 8; ++b) v = v << 8 | *bytes++;
        field = static_cast<std::int64_t>(v);
      }
      if (f[0] != 0 && f[0] != 1)
        throw std::runtime_error("admitted is neither 0 nor 1: " + std::to_string(f[0]));
      if (f[1] < 0) throw std::runtime_error("negative remaining: " + std::to_string(f[1]));
      decision d;
      d.admitted = f[0] == 1;
      d.remaining = static_cast<std::uint64_t>(f[1]);
      d.reset = f[2];
      d.retry_after = f[3];
      out.push_back(d);
    }
    return out;
  }

  static decision to_decision(const redisReply* r) { return decisions_of(r, 1).front(); }

  decision check(const std::string& key, const policy& p, micros now) {
    auto r = evalsha(key, p, now);
    return to_decision(r.get());
  }

  static std::string describe(const redisReply* r) {
    switch (r->type) {
      case REDIS_REPLY_INTEGER: return std::to_string(r->integer);
      case REDIS_REPLY_NIL: return "(nil)";
      case REDIS_REPLY_ARRAY: {
        std::string out = "[";
        for (std::size_t i = 0; i < r->elements; ++i)
          out += (i ? ", " : "") + describe(r->element[i]);
        return out + "]";
      }
      default: return std::string(r->str, r->len);
    }
  }

 private:
  struct context_deleter {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  std::unique_ptr<redisContext, context_deleter> context_;
};

}  // namespace gw::test
