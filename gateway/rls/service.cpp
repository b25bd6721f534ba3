// The rate limit service's gRPC side and its calls on the workers (see service.hpp).
#include "rls/service.hpp"

#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>

namespace gw::rls {

namespace asio = boost::asio;
namespace rlsv3 = envoy::service::ratelimit::v3;
using response = rlsv3::RateLimitResponse;
using clock = std::chrono::steady_clock;

namespace {

// Bounds on what one call may carry: beyond them the call is refused as INVALID_ARGUMENT, so a
// hostile or broken client cannot make a worker hash megabytes per call.
constexpr int max_descriptors = 64;
constexpr int max_entries = 64;
constexpr std::size_t max_entry_bytes = 4096;  // key + value of one entry
constexpr std::size_t max_domain_bytes = 256;
constexpr std::uint32_t unlimited_remaining = std::numeric_limits<std::uint32_t>::max();

std::optional<std::string> invalid(const rlsv3::RateLimitRequest& req) {
  if (req.domain().empty()) return "domain must not be empty";
  if (req.domain().size() > max_domain_bytes)
    return "domain is " + std::to_string(req.domain().size()) + " bytes; at most " +
           std::to_string(max_domain_bytes);
  if (req.descriptors_size() == 0) return "at least one descriptor is required";
  if (req.descriptors_size() > max_descriptors)
    return std::to_string(req.descriptors_size()) + " descriptors; at most " +
           std::to_string(max_descriptors);
  for (int i = 0; i < req.descriptors_size(); ++i) {
    const auto& d = req.descriptors(i);
    const std::string where = "descriptors[" + std::to_string(i) + "]";
    if (d.entries_size() == 0) return where + " has no entries";
    if (d.entries_size() > max_entries)
      return where + " has " + std::to_string(d.entries_size()) + " entries; at most " +
             std::to_string(max_entries);
    for (int j = 0; j < d.entries_size(); ++j) {
      const auto& e = d.entries(j);
      if (e.key().empty()) return where + ".entries[" + std::to_string(j) + "] has an empty key";
      if (e.key().size() + e.value().size() > max_entry_bytes)
        return where + ".entries[" + std::to_string(j) + "] is " +
               std::to_string(e.key().size() + e.value().size()) + " bytes; at most " +
               std::to_string(max_entry_bytes);
    }
  }
  return std::nullopt;
}

void set_duration(google::protobuf::Duration& out, algorithms::micros t) {
  t = std::max<algorithms::micros>(t, 0);
  out.set_seconds(t / 1'000'000);
  out.set_nanos(static_cast<std::int32_t>(t % 1'000'000) * 1000);
}

std::uint64_t capacity_of(const config::limit& l) {
  const bool bucket = l.algorithm == config::limit_algorithm::gcra ||
                      l.algorithm == config::limit_algorithm::token_bucket;
  return bucket ? l.burst.value_or(l.requests) : l.requests;
}

void add_header(response& resp, const std::string& name, const std::string& value) {
  auto* h = resp.add_response_headers_to_add();
  h->set_key(name);
  h->set_value(value);
}

// One call, from its arrival on a worker to its answer.
asio::awaitable<void> answer(const lane& l, std::shared_ptr<const domain_set> domains,
                             const rlsv3::RateLimitRequest& req, response& resp,
                             grpc::ServerUnaryReactor* reactor, clock::time_point arrived) {
  const domain* d = domains->find(req.domain());
  const domain& series = d ? *d : domains->unknown();
  resp.set_overall_code(response::OK);
  for (int i = 0; i < req.descriptors_size(); ++i) resp.add_statuses()->set_code(response::OK);
  grpc::Status status = grpc::Status::OK;
  rls_code code = rls_code::ok;

  if (d) {
    const auto n = static_cast<std::size_t>(req.descriptors_size());
    std::vector<std::vector<entry_view>> entries(n);
    std::vector<const matched_limit*> matched(n, nullptr);
    for (std::size_t i = 0; i < n; ++i) {
      for (const auto& e : req.descriptors(static_cast<int>(i)).entries())
        entries[i].push_back({e.key(), e.value()});
      matched[i] = d->match(entries[i]);
    }
    // A matched limit that names others in `replaces` takes their place. The names are all
    // collected first, so that the order of the descriptors does not matter.
    std::vector<std::string_view> replaced;
    for (const auto* m : matched)
      if (m)
        for (const auto& name : m->source->replaces) replaced.push_back(name);
    for (auto*& m : matched) {
      if (!m) continue;
      const bool replaces_itself = std::find(m->source->replaces.begin(),
                                             m->source->replaces.end(),
                                             m->limit.name) != m->source->replaces.end();
      if (!replaces_itself &&
          std::find(replaced.begin(), replaced.end(), m->limit.name) != replaced.end())
        m = nullptr;
    }

    limit::request_limits r;
    for (std::size_t i = 0; i < n; ++i) {
      const auto* m = matched[i];
      if (!m) continue;
      auto& st = *resp.mutable_statuses(static_cast<int>(i));
      if (m->source->unlimited) {
        st.set_limit_remaining(unlimited_remaining);
        continue;
      }
      auto& current = *st.mutable_current_limit();
      current.set_requests_per_unit(static_cast<std::uint32_t>(m->limit.requests));
      current.set_unit(static_cast<response::RateLimit::Unit>(m->source->unit));
      current.set_name(m->limit.name);

      const auto& desc = req.descriptors(static_cast<int>(i));
      std::uint64_t cost = desc.has_hits_addend() ? desc.hits_addend().value() : req.hits_addend();
      if (cost == 0) cost = 1;
      // More than the capacity never passes; capping it keeps every sum in range.
      cost = std::min(cost, capacity_of(m->limit) + 1);
      algorithms::policy p;
      p.algo = m->limit.algorithm;
      p.requests = m->limit.requests;
      p.window = std::chrono::duration_cast<std::chrono::microseconds>(m->limit.window).count();
      p.burst = m->limit.burst.value_or(m->limit.requests);
      p.cost = cost;
      r.checks.emplace_back();
      store_key(*m, entries[i], r.checks.back().key);
      r.checks.back().policy = p;
      r.applied.push_back({&m->limit, p, i, m->shadow});
    }

    if (!r.checks.empty()) {
      const auto& settings = domains->settings();
      limit::judging how;
      how.now = std::chrono::duration_cast<std::chrono::microseconds>(
                    arrived.time_since_epoch()).count();
      how.on_failure = settings.on_failure;
      how.local_cache = domains->local_cache();
      how.cache_answers_alone = false;  // every descriptor gets its status
      if (domains->lease()) how.lease = &*domains->lease();
      how.ietf_headers = settings.ietf_headers;
      how.legacy_headers = settings.legacy_headers;
      const auto result = co_await l.limiter->decide(r, how);
      if (result == limit::outcome::failed_closed) {
        status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "rate limit store unavailable");
        code = rls_code::error;
      } else if (result == limit::outcome::failed_open) {
        // Nothing is known of the limits: plain OK, as for a descriptor without one.
        code = rls_code::error;
        for (auto& st : *resp.mutable_statuses()) st.clear_current_limit();
      } else {
        for (std::size_t k = 0; k < r.applied.size(); ++k) {
          const auto& a = r.applied[k];
          const auto& dec = r.result.decisions[k];
          auto& st = *resp.mutable_statuses(static_cast<int>(a.index));
          st.set_code(dec.admitted || a.shadow ? response::OK : response::OVER_LIMIT);
          st.set_limit_remaining(static_cast<std::uint32_t>(
              std::min<std::uint64_t>(dec.remaining, unlimited_remaining)));
          set_duration(*st.mutable_duration_until_reset(),
                       dec.admitted ? dec.reset : dec.retry_after);
          if (auto* c = matched[a.index]->checks[dec.admitted ? 0 : 1]) c->inc(l.slot);
        }
        for (const auto& [name, value] : r.headers) add_header(resp, name, value);
        if (result == limit::outcome::limited) {
          resp.set_overall_code(response::OVER_LIMIT);
          add_header(resp, "Retry-After", std::to_string(r.v.retry_after_seconds));
          code = rls_code::over_limit;
        }
      }
    }
  }

  if (auto* c = series.requests(static_cast<std::size_t>(code))) c->inc(l.slot);
  if (auto* h = series.duration())
    h->observe(l.slot, std::chrono::duration<double>(clock::now() - arrived).count());
  reactor->Finish(status);
}

}  // namespace

class service::rate_limit_handler final : public rlsv3::RateLimitService::CallbackService {
 public:
  explicit rate_limit_handler(service& owner) : owner_(owner) {}

  grpc::ServerUnaryReactor* ShouldRateLimit(grpc::CallbackServerContext* context,
                                            const rlsv3::RateLimitRequest* req,
                                            response* resp) override {
    auto* reactor = context->DefaultReactor();
    const auto arrived = clock::now();
    auto domains = owner_.domains_.load();
    const auto& l =
        owner_.lanes_[owner_.next_lane_.fetch_add(1, std::memory_order_relaxed) %
                      owner_.lanes_.size()];
    if (auto problem = invalid(*req)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, *problem));
      // Counted on the worker: a metric slot has one writer.
      asio::post(*l.io, [&l, domains = std::move(domains)] {
        if (auto* c = domains->unknown().requests(static_cast<std::size_t>(rls_code::error)))
          c->inc(l.slot);
      });
      return reactor;
    }
    // The request and response live until Finish: the worker may use them until then.
    asio::post(*l.io, [&l, domains = std::move(domains), req, resp, reactor, arrived]() mutable {
      asio::co_spawn(*l.io, answer(l, std::move(domains), *req, *resp, reactor, arrived),
                     [reactor](std::exception_ptr e) {
                       if (!e) return;
                       // Only resource exhaustion gets here; the call still gets an answer.
                       reactor->Finish(grpc::Status(grpc::StatusCode::INTERNAL, "internal error"));
                     });
    });
    return reactor;
  }

 private:
  service& owner_;
};

class service::health_handler final : public grpc::health::v1::Health::CallbackService {
 public:
  explicit health_handler(service& owner) : owner_(owner) {}

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::health::v1::HealthCheckResponse* resp) override {
    using status = grpc::health::v1::HealthCheckResponse;
    auto* reactor = context->DefaultReactor();
    if (req->service().empty()) {
      resp->set_status(status::SERVING);
    } else if (req->service() == rlsv3::RateLimitService::service_full_name()) {
      resp->set_status(owner_.ready_() ? status::SERVING : status::NOT_SERVING);
    } else {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"));
      return reactor;
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  service& owner_;
};

service::service(std::vector<lane> lanes, std::shared_ptr<const domain_set> domains,
                 std::function<bool()> ready)
    : lanes_(std::move(lanes)), domains_(std::move(domains)), ready_(std::move(ready)),
      rate_limit_(std::make_unique<rate_limit_handler>(*this)),
      health_(std::make_unique<health_handler>(*this)) {}

service::~service() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

void service::start(const config::endpoint& listen) {
  grpc::ServerBuilder builder;
  int port = 0;
  // gRPC would share a port taken by another process (SO_REUSEPORT) and split its calls.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(listen.to_string(), grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(rate_limit_.get());
  builder.RegisterService(health_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) {
    server_.reset();
    throw std::runtime_error("cannot listen on " + listen.to_string() + " (rls.listen)");
  }
}

void service::set_domains(std::shared_ptr<const domain_set> next) {
  domains_.store(std::move(next));
}

void service::stop(std::chrono::milliseconds grace) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_.reset();
}

}  // namespace gw::rls
