// demo-upstream: the test upstream as a standalone server for scripts/demo and the benchmarks;
// runs until SIGINT or SIGTERM.
#include "support/test_upstream.hpp"

#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

int usage() {
  std::fprintf(stderr, "usage: demo-upstream [--port N] [--address A] [--threads N]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  gw::test::test_upstream_options options;
  options.record_requests = false;  // benchmarks send millions of requests
  try {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg = argv[i];
      if (i + 1 >= argc) return usage();
      std::string value = argv[++i];
      if (arg == "--port")
        options.port = static_cast<std::uint16_t>(std::stoul(value));
      else if (arg == "--address")
        options.address = value;
      else if (arg == "--threads")
        options.threads = static_cast<unsigned>(std::stoul(value));
      else
        return usage();
    }
  } catch (const std::logic_error&) {  // stoul: not a number, out of range
    return usage();
  }

  // Blocked before the server's threads start so that they inherit the mask and only
  // sigwait below sees the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    gw::test::test_upstream upstream(options);
    std::printf("listening on %s:%u\n", options.address.c_str(),
                static_cast<unsigned>(upstream.port()));
    std::fflush(stdout);
    int received = 0;
    sigwait(&stop_signals, &received);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo-upstream: %s\n", e.what());
    return 1;
  }
  return 0;
}
