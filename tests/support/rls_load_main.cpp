// rls-load: a load generator for the rate limit service (scripts/bench rls). Keeps `--streams`
// ShouldRateLimit calls in flight on one HTTP/2 channel for `--seconds`, each with one
// descriptor [key=VALUE], VALUE cycling over `--values` distinct values, and prints one line:
//   calls=N seconds=S calls_per_second=R p50_ms=A p99_ms=B ok=O over_limit=L errors=E
#include "envoy/service/ratelimit/v3/rls.grpc.pb.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace {

namespace rlsv3 = envoy::service::ratelimit::v3;
using clock_type = std::chrono::steady_clock;

struct settings {
  std::string target = "127.0.0.1:8081";
  std::string domain = "bench";
  std::string key = "k";
  int streams = 64;
  double seconds = 5;
  long values = 1;
};

class load {
 public:
  explicit load(const settings& s)
      : s_(s),
        stub_(rlsv3::RateLimitService::NewStub(
            grpc::CreateChannel(s.target, grpc::InsecureChannelCredentials()))) {}

  void run() {
    start_ = clock_type::now();
    end_ = start_ + std::chrono::duration_cast<clock_type::duration>(
                        std::chrono::duration<double>(s_.seconds));
    for (int i = 0; i < s_.streams; ++i) launch();
    std::unique_lock lock{mutex_};
    done_.wait(lock, [&] { return in_flight_ == 0; });
    const double elapsed = std::chrono::duration<double>(clock_type::now() - start_).count();
    std::sort(latencies_.begin(), latencies_.end());
    auto pct = [&](double p) {
      if (latencies_.empty()) return 0.0;
      return latencies_[std::min(latencies_.size() - 1,
                                 static_cast<std::size_t>(p * latencies_.size()))];
    };
    std::printf("calls=%zu seconds=%.2f calls_per_second=%.0f p50_ms=%.3f p99_ms=%.3f ok=%ld "
                "over_limit=%ld errors=%ld\n",
                latencies_.size(), elapsed, static_cast<double>(latencies_.size()) / elapsed,
                pct(0.50), pct(0.99), ok_, over_, errors_);
  }

 private:
  struct call {
    grpc::ClientContext context;
    rlsv3::RateLimitRequest request;
    rlsv3::RateLimitResponse response;
    clock_type::time_point sent;
  };

  void launch() {
    {
      std::lock_guard lock{mutex_};
      ++in_flight_;
    }
    auto* c = new call;
    c->request.set_domain(s_.domain);
    auto* e = c->request.add_descriptors()->add_entries();
    e->set_key(s_.key);
    e->set_value("v" + std::to_string(next_value_.fetch_add(1) % s_.values));
    c->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    c->sent = clock_type::now();
    stub_->async()->ShouldRateLimit(&c->context, &c->request, &c->response,
                                    [this, c](grpc::Status status) { finish(c, status); });
  }

  void finish(call* c, const grpc::Status& status) {
    const auto now = clock_type::now();
    bool again;
    {
      std::lock_guard lock{mutex_};
      latencies_.push_back(std::chrono::duration<double, std::milli>(now - c->sent).count());
      if (!status.ok())
        ++errors_;
      else if (c->response.overall_code() == rlsv3::RateLimitResponse::OVER_LIMIT)
        ++over_;
      else
        ++ok_;
      --in_flight_;
      again = now < end_;
      if (!again && in_flight_ == 0) done_.notify_all();
    }
    delete c;
    if (again) launch();
  }

  settings s_;
  std::unique_ptr<rlsv3::RateLimitService::Stub> stub_;
  clock_type::time_point start_, end_;
  std::atomic<long> next_value_{0};
  std::mutex mutex_;
  std::condition_variable done_;
  int in_flight_ = 0;
  std::vector<double> latencies_;
  long ok_ = 0, over_ = 0, errors_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    const std::string value = argv[i + 1];
    if (arg == "--target") s.target = value;
    else if (arg == "--domain") s.domain = value;
    else if (arg == "--key") s.key = value;
    else if (arg == "--streams") s.streams = std::max(1, std::atoi(value.c_str()));
    else if (arg == "--seconds") s.seconds = std::atof(value.c_str());
    else if (arg == "--values") s.values = std::max(1L, std::atol(value.c_str()));
    else {
      std::fprintf(stderr, "usage: rls-load [--target HOST:PORT] [--domain D] [--key K] "
                           "[--streams N] [--seconds S] [--values V]\n");
      return 2;
    }
  }
  load{s}.run();
  return 0;
}
