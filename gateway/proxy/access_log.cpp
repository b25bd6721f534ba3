// Access log lines (see access_log.hpp).
#include "proxy/access_log.hpp"

#include "proxy/forwarding.hpp"

#include <boost/asio/post.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace gw::proxy {

void access_log::write(const access_entry& e) {
  using namespace std::chrono;
  const auto now = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  const std::int64_t second = now / 1000;
  if (second != cached_second_) {
    const std::time_t t = static_cast<std::time_t>(second);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(cached_time_, sizeof cached_time_, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_second_ = second;
  }
  char number[64];
  auto& out = pending_;
  std::snprintf(number, sizeof number, ".%03dZ", static_cast<int>(now % 1000));
  out += R"({"time":")";
  out += cached_time_;
  out += number;
  out += R"(","request_id":")";
  append_json_escaped(out, e.request_id);
  out += R"(","client_ip":")";
  append_json_escaped(out, e.client_ip);
  out += R"(","method":")";
  append_json_escaped(out, e.method);
  out += R"(","path":")";
  append_json_escaped(out, e.path);
  out += R"(","route":")";
  append_json_escaped(out, e.route);
  std::snprintf(number, sizeof number, R"(","status":%u,"decision":")", e.status);
  out += number;
  out += e.decision;
  out += R"(","upstream":")";
  append_json_escaped(out, e.upstream);
  std::snprintf(number, sizeof number, R"(","duration_ms":%.3f,"bytes_in":%llu,"bytes_out":%llu})",
                e.duration_ms, static_cast<unsigned long long>(e.bytes_in),
                static_cast<unsigned long long>(e.bytes_out));
  out += number;
  out += '\n';

  if (!flush_posted_) {
    flush_posted_ = true;
    boost::asio::post(io_, [this] { flush(); });
  }
  if (pending_.size() > 64 * 1024) flush();
}

void access_log::flush() {
  flush_posted_ = false;
  std::size_t done = 0;
  while (done < pending_.size()) {
    const auto n = ::write(STDOUT_FILENO, pending_.data() + done, pending_.size() - done);
    if (n <= 0) break;  // stdout gone: drop the lines rather than stall the worker
    done += static_cast<std::size_t>(n);
  }
  pending_.clear();
}

}  // namespace gw::proxy
