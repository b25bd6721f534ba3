// Process wiring: one thread per worker, the control thread runs signals, reload and the admin
// listener (see app.hpp).
#include "app/app.hpp"

#include "admin/admin_server.hpp"
#include "config/loader.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/worker.hpp"
#include "store/memory_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <csignal>
#include <functional>
#include <thread>
#include <vector>

namespace gw::app {

namespace asio = boost::asio;

void apply_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

namespace {

class application {
 public:
  application(const options& opts, std::shared_ptr<const config::gateway_config> cfg)
      : opts_(opts), config_(std::move(cfg)), signals_(control_, SIGHUP, SIGTERM, SIGINT),
        admin_(control_, [this] { return !shared_.draining.load(); }) {}

  int run() {
    std::shared_ptr<const proxy::snapshot> snap;
    try {
      snap = proxy::snapshot::build(config_);
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      return 1;
    }
    const auto& server = config_->server;
    unsigned count = server.workers;
    if (count == 0) count = std::max(1u, std::thread::hardware_concurrency());
    // One memory store for all workers: a limit is exact across the whole process.
    auto limits_store =
        std::make_shared<store::memory_store>(config_->storage.memory_max_keys);
    try {
      for (unsigned i = 0; i < count; ++i) {
        workers_.push_back(std::make_unique<proxy::worker>(i, shared_, snap, limits_store));
        workers_.back()->listen(server.listen);
      }
      admin_.listen(config_->admin.listen);
    } catch (const boost::system::system_error& e) {
      spdlog::error("cannot listen: {}", e.what());
      return 1;
    }

    wait_for_signal();
    std::vector<std::thread> threads;
    for (auto& w : workers_) threads.emplace_back([&w] { w->run(); });
    spdlog::info("gateway {} listening on {} with {} workers; admin on {}", GATEWAY_VERSION,
                 server.listen.to_string(), count, config_->admin.listen.to_string());
    control_.run();
    for (auto& w : workers_) w->stop();
    for (auto& t : threads) t.join();
    spdlog::info("stopped");
    return 0;
  }

 private:
  void wait_for_signal() {
    signals_.async_wait([this](const boost::system::error_code& ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP) {
        reload();
        wait_for_signal();
      } else {
        drain();
      }
    });
  }

  void reload() {
    auto result = config::load_file(opts_.config_path);
    for (const auto& p : result.problems) {
      const auto line = config::format_problem(opts_.config_path, p);
      if (p.warning)
        spdlog::warn("reload: {}", line);
      else
        spdlog::error("reload: {}", line);
    }
    if (!result.ok()) {
      spdlog::error("reload failed; keeping the running configuration");
      return;
    }
    std::shared_ptr<const proxy::snapshot> snap;
    try {
      snap = proxy::snapshot::build(result.config);
    } catch (const std::exception& e) {
      spdlog::error("reload failed: {}; keeping the running configuration", e.what());
      return;
    }
    const auto& old_server = config_->server;
    const auto& new_server = result.config->server;
    if (!(old_server.listen == new_server.listen) || old_server.workers != new_server.workers ||
        !(config_->admin.listen == result.config->admin.listen))
      spdlog::warn("reload: listen addresses and worker count change only on restart");
    config_ = result.config;
    if (!opts_.log_level) apply_log_level(config_->server.log_level);
    for (auto& w : workers_) w->post_snapshot(snap);
    spdlog::info("configuration reloaded from {}", opts_.config_path);
  }

  void drain() {
    if (shared_.draining.exchange(true)) return;
    spdlog::info("draining: finishing in-flight requests for up to {} ms",
                 config_->server.drain_timeout.count());
    admin_.close();
    signals_.cancel();
    for (auto& w : workers_) w->post_drain();
    drain_deadline_ = std::chrono::steady_clock::now() + config_->server.drain_timeout;
    poll_drained();
  }

  void poll_drained() {
    std::size_t sessions = 0;
    for (auto& w : workers_) sessions += w->session_count();
    if (sessions == 0 || std::chrono::steady_clock::now() >= drain_deadline_) {
      if (sessions > 0) spdlog::warn("drain timeout: closing {} connections", sessions);
      control_.stop();
      return;
    }
    drain_timer_.expires_after(std::chrono::milliseconds(20));
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) poll_drained();
    });
  }

  const options& opts_;
  std::shared_ptr<const config::gateway_config> config_;
  asio::io_context control_{1};
  asio::signal_set signals_;
  asio::steady_timer drain_timer_{control_};
  std::chrono::steady_clock::time_point drain_deadline_{};
  proxy::shared_state shared_;
  admin::admin_server admin_;
  std::vector<std::unique_ptr<proxy::worker>> workers_;
};

}  // namespace

int run(const options& opts, std::shared_ptr<const config::gateway_config> cfg) {
  application app{opts, std::move(cfg)};
  return app.run();
}

}  // namespace gw::app
