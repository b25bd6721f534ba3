// The Envoy rate limit service on rls.listen (SPEC 11): envoy.service.ratelimit.v3's
// ShouldRateLimit and grpc.health.v1's Check. gRPC's threads receive each call, check it, and hand
// it to a worker's event loop, where the limiter the proxy uses decides it and the call is
// completed; so gRPC never waits on a worker and a worker never blocks on gRPC.
#pragma once

#include "config/config.hpp"
#include "limit/limiter.hpp"
#include "rls/domains.hpp"

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace grpc {
class Server;
}

namespace gw::rls {

// One worker as the service sees it: where its calls run, and its limiter.
struct lane {
  boost::asio::io_context* io;
  limit::limiter* limiter;
  std::size_t slot;  // the worker's slot in every metric series
};

class service {
 public:
  // `ready` answers health checks for the rate limit service as /readyz does; any thread.
  service(std::vector<lane> lanes, std::shared_ptr<const domain_set> domains,
          std::function<bool()> ready);
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  // Throws std::runtime_error when the address cannot be bound.
  void start(const config::endpoint& listen);
  // Any thread: calls that arrive after it use the new domains; those in flight keep theirs.
  void set_domains(std::shared_ptr<const domain_set> next);
  // Stops taking calls and waits for those in flight, cancelling what is left after `grace`.
  // The workers must still be running.
  void stop(std::chrono::milliseconds grace);

 private:
  class rate_limit_handler;
  class health_handler;

  std::vector<lane> lanes_;
  std::atomic<std::size_t> next_lane_{0};
  std::atomic<std::shared_ptr<const domain_set>> domains_;
  std::function<bool()> ready_;
  std::unique_ptr<rate_limit_handler> rate_limit_;
  std::unique_ptr<health_handler> health_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace gw::rls
