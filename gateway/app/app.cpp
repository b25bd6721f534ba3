// Process wiring: one thread per worker, the control thread runs signals, reload and the admin
// listener (see app.hpp).
#include "app/app.hpp"

#include "admin/admin_server.hpp"
#include "app/config_watcher.hpp"
#include "app/systemd_notify.hpp"
#include "config/loader.hpp"
#include "metrics/metrics.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/worker.hpp"
#include "rls/service.hpp"
#include "store/memory_store.hpp"
#include "store/redis/redis_store.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
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
        worker_count_(config_->server.workers ? config_->server.workers
                                              : std::max(1u, std::thread::hardware_concurrency())),
        metrics_(worker_count_ + 1),
        admin_(control_, [this] { return ready(); }, [this] { return metrics_.render(); }) {}

  int run() {
    std::shared_ptr<const proxy::snapshot> snap;
    try {
      snap = proxy::snapshot::build(config_, metrics_);
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      return 1;
    }
    const auto& server = config_->server;
    const unsigned count = worker_count_;
    metrics_.set_connections_active(
        [this] { return static_cast<double>(shared_.connections.load()); });
    proxy::worker::store_factory make_store;
    if (!store_factory_for(*config_, make_store)) return 1;
    try {
      for (unsigned i = 0; i < count; ++i) {
        workers_.push_back(std::make_unique<proxy::worker>(i, shared_, snap, make_store, metrics_,
                                                           opts_.metrics));
        workers_.back()->listen(server.listen);
      }
      admin_.listen(config_->admin.listen);
    } catch (const boost::system::system_error& e) {
      spdlog::error("cannot listen: {}", e.what());
      return 1;
    }
    if (config_->rls) {
      std::vector<rls::lane> lanes;
      for (auto& w : workers_) lanes.push_back({&w->io(), &w->limiter(), w->slot()});
      rls_ = std::make_unique<rls::service>(std::move(lanes), rls_domains(*config_),
                                            [this] { return ready(); });
      try {
        rls_->start(config_->rls->listen);
      } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
      }
    }

    try {
      if (server.watch_config) watcher_.watch(watched_files());
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      return 1;
    }
    wait_for_signal();
    std::vector<std::thread> threads;
    for (auto& w : workers_) threads.emplace_back([&w] { w->run(); });
    spdlog::info("gateway {} listening on {} with {} workers; admin on {}", GATEWAY_VERSION,
                 server.listen.to_string(), count, config_->admin.listen.to_string());
    if (rls_) spdlog::info("rate limit service (gRPC) on {}", config_->rls->listen.to_string());
    notify_systemd("READY=1\nSTATUS=serving");
    control_.run();
    // Calls in flight complete on the workers: the service stops while they still run.
    if (rls_) rls_->stop(std::chrono::seconds(1));
    for (auto& w : workers_) w->stop();
    for (auto& t : threads) t.join();
    spdlog::info("stopped");
    return 0;
  }

 private:
  // The memory store is one for the whole process, so a limit is exact across workers; Redis
  // clients are one per worker, on the worker's thread.
  bool store_factory_for(const config::gateway_config& cfg, proxy::worker::store_factory& out) {
    switch (cfg.storage.backend) {
      case config::store_backend::memory: {
        auto shared = std::make_shared<store::memory_store>(cfg.storage.memory_max_keys);
        metrics_.set_memory_store_evictions(
            [shared] { return static_cast<double>(shared->evictions()); });
        out = [shared](asio::io_context&, store::store_events*) { return shared; };
        return true;
      }
      case config::store_backend::redis:
      case config::store_backend::redis_cluster: {
        std::string password;
        if (const auto& name = cfg.storage.redis.password_env; !name.empty()) {
          const char* value = std::getenv(name.c_str());
          if (!value) {
            spdlog::error("storage.redis.password_env: environment variable {} is not set", name);
            return false;
          }
          password = value;
        }
        const auto mode = cfg.storage.backend == config::store_backend::redis_cluster
                              ? store::redis::redis_store::mode::cluster
                              : store::redis::redis_store::mode::single;
        out = [settings = cfg.storage.redis, password, mode](asio::io_context& io,
                                                              store::store_events* events) {
          return std::make_shared<store::redis::redis_store>(io, settings, password, events,
                                                             mode);
        };
        return true;
      }
    }
    return false;
  }

  std::shared_ptr<const rls::domain_set> rls_domains(const config::gateway_config& cfg) {
    return std::make_shared<const rls::domain_set>(*cfg.rls, cfg.storage.redis.key_prefix,
                                                   cfg.storage.local_cache, cfg.storage.lease,
                                                   opts_.metrics ? &metrics_ : nullptr);
  }

  // /readyz: not while draining, nor while a store that fail-closed routes (or a fail-closed
  // rate limit service) depend on is down.
  bool ready() const {
    if (shared_.draining.load()) return false;
    const auto cfg_holder = std::atomic_load(&config_);
    const auto& cfg = *cfg_holder;
    bool needs_store = cfg.rls && cfg.rls->on_failure == config::failure_mode::closed;
    for (const auto& route : cfg.routes)
      if (!route.limits.empty() &&
          route.on_failure.value_or(cfg.storage.on_failure) == config::failure_mode::closed)
        needs_store = true;
    if (!needs_store) return true;
    for (const auto& w : workers_)
      if (!w->store_available()) return false;
    return true;
  }

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

  // Told to systemd as RELOADING=1 ... READY=1 whatever the outcome (sd_notify(3)), so that
  // `systemctl reload` under Type=notify-reload waits for it.
  void reload() {
    using std::chrono::microseconds;
    const auto now = std::chrono::steady_clock::now().time_since_epoch();  // CLOCK_MONOTONIC
    notify_systemd("RELOADING=1\nMONOTONIC_USEC=" +
                   std::to_string(std::chrono::duration_cast<microseconds>(now).count()));
    const bool ok = load_and_apply();
    notify_systemd(ok ? "READY=1\nSTATUS=serving"
                      : "READY=1\nSTATUS=serving; the last reload failed");
  }

  bool load_and_apply() {
    auto result = config::load_file(opts_.config_path);
    for (const auto& p : result.problems) {
      const auto line = config::format_problem(opts_.config_path, p);
      if (p.warning)
        spdlog::warn("reload: {}", line);
      else
        spdlog::error("reload: {}", line);
    }
    if (!result.ok()) {
      metrics_.config_reloads(false)->inc(metrics_.control_slot());
      spdlog::error("reload failed; keeping the running configuration");
      return false;
    }
    const auto& running = config_->storage;
    const auto& next = result.config->storage;
    const bool on_redis = running.backend != config::store_backend::memory;
    const bool store_changed =
        running.backend != next.backend ||
        (on_redis && (!(running.redis.address == next.redis.address) ||
                      running.redis.nodes != next.redis.nodes));
    // Everything else the store was built with also waits for a restart; said, not applied.
    const bool store_settings_changed =
        on_redis ? (running.redis.username != next.redis.username ||
                    running.redis.password_env != next.redis.password_env ||
                    running.redis.database != next.redis.database ||
                    running.redis.connect_timeout != next.redis.connect_timeout ||
                    running.redis.command_timeout != next.redis.command_timeout ||
                    running.redis.connections_per_worker != next.redis.connections_per_worker)
                 : running.memory_max_keys != next.memory_max_keys;
    if (store_changed) {
      // The store keeps running as started: the configuration says so too (the metrics' backend
      // label, what sessions know of it). Its per-route parts - failure_mode, local_cache,
      // key_prefix - apply.
      auto kept = std::make_shared<config::gateway_config>(*result.config);
      kept->storage.backend = config_->storage.backend;
      kept->storage.redis.address = config_->storage.redis.address;
      kept->storage.redis.nodes = config_->storage.redis.nodes;
      result.config = std::move(kept);
    }
    std::shared_ptr<const proxy::snapshot> snap;
    try {
      snap = proxy::snapshot::build(result.config, metrics_);
    } catch (const std::exception& e) {
      metrics_.config_reloads(false)->inc(metrics_.control_slot());
      spdlog::error("reload failed: {}; keeping the running configuration", e.what());
      return false;
    }
    metrics_.config_reloads(true)->inc(metrics_.control_slot());
    const auto& old_server = config_->server;
    const auto& new_server = result.config->server;
    if (!(old_server.listen == new_server.listen) || old_server.workers != new_server.workers ||
        !(config_->admin.listen == result.config->admin.listen))
      spdlog::warn("reload: listen addresses and worker count change only on restart");
    if (old_server.tls.has_value() != new_server.tls.has_value())
      spdlog::warn("reload: server.tls {}: new connections on {} now speak {}, open ones go on",
                   new_server.tls ? "added" : "removed", new_server.listen.to_string(),
                   new_server.tls ? "TLS" : "plain HTTP");
    if (store_changed)
      spdlog::warn("reload: the storage backend and its addresses change only on restart");
    else if (store_settings_changed)
      spdlog::warn("reload: the store's connection settings and size change only on restart");
    const bool rls_listen_changed =
        config_->rls.has_value() != result.config->rls.has_value() ||
        (config_->rls && !(config_->rls->listen == result.config->rls->listen));
    if (rls_listen_changed)
      spdlog::warn("reload: the rate limit service starts, stops and moves only on restart");
    if (rls_ && result.config->rls) rls_->set_domains(rls_domains(*result.config));
    std::atomic_store(&config_, result.config);
    if (!opts_.log_level) apply_log_level(config_->server.log_level);
    for (auto& w : workers_) w->post_snapshot(snap);
    spdlog::info("configuration reloaded from {}", opts_.config_path);
    follow_watch_config();
    return true;
  }

  // What watch_config watches: the file, the TLS files it names (a renewed certificate in a
  // mounted Secret is a change as much as an edited ConfigMap) and the rate limit service's
  // domain files.
  std::vector<std::string> watched_files() const {
    std::vector<std::string> out{opts_.config_path};
    auto add = [&](const std::string& path) {
      if (!path.empty() && std::find(out.begin(), out.end(), path) == out.end())
        out.push_back(path);
    };
    if (const auto& tls = config_->server.tls) {
      for (const auto& c : tls->certificates) {
        add(c.cert);
        add(c.key);
      }
      add(tls->client_ca);
    }
    for (const auto& up : config_->upstreams)
      if (up.tls) {
        add(up.tls->ca);
        add(up.tls->cert);
        add(up.tls->key);
      }
    if (config_->rls)
      for (const auto& domain : config_->rls->domains) add(domain.file);
    return out;
  }

  // server.watch_config turned on or off by a reload.
  void follow_watch_config() {
    if (!config_->server.watch_config) {
      if (watcher_.watching()) spdlog::info("watch_config off: reload on SIGHUP only");
      watcher_.stop();
      return;
    }
    try {
      watcher_.watch(watched_files());
    } catch (const std::exception& e) {
      spdlog::error("{}; reload on SIGHUP only", e.what());
    }
  }

  void drain() {
    if (shared_.draining.exchange(true)) return;
    notify_systemd("STOPPING=1\nSTATUS=draining");
    watcher_.stop();
    spdlog::info("draining: finishing in-flight requests for up to {} ms",
                 config_->server.drain_timeout.count());
    // The admin listener stays up: load balancers should read 503 on /readyz, not a refusal.
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
  config_watcher watcher_{control_, [this] { reload(); }};
  std::chrono::steady_clock::time_point drain_deadline_{};
  proxy::shared_state shared_;
  unsigned worker_count_;
  metrics::registry metrics_;
  admin::admin_server admin_;
  std::vector<std::unique_ptr<proxy::worker>> workers_;
  std::unique_ptr<rls::service> rls_;  // with rls: in the configuration
};

}  // namespace

int run(const options& opts, std::shared_ptr<const config::gateway_config> cfg) {
  application app{opts, std::move(cfg)};
  return app.run();
}

}  // namespace gw::app
