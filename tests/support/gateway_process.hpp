// Runs the real gateway binary for end-to-end tests: config in a fresh temp dir, output captured
// to files, readiness polled on /healthz, and the process killed and reaped however the test ends.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gw::test {

#ifdef GATEWAY_BINARY
// The gateway built alongside the tests (CMake defines GATEWAY_BINARY for the e2e tests only).
inline std::string gateway_binary() { return GATEWAY_BINARY; }
#endif

class gateway_process {
 public:
  // Writes `yaml` to <tmpdir>/gateway.yaml and starts `binary --config <file> extra_args...`,
  // stdout and stderr going to <tmpdir>/stdout.log and stderr.log. Throws if it cannot start.
  gateway_process(std::string binary, std::string yaml, std::vector<std::string> extra_args = {});
  // SIGKILL if still running, reap, remove the temp dir (kept when GW_TEST_KEEP_TMP is set).
  ~gateway_process();

  gateway_process(const gateway_process&) = delete;
  gateway_process& operator=(const gateway_process&) = delete;

  // Polls GET /healthz on 127.0.0.1:admin_port until 200. Throws, with the captured stderr,
  // if the process exits or `timeout` passes first.
  void wait_ready(std::uint16_t admin_port,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Throws if the process was already reaped (its pid may belong to someone else by now).
  void send_signal(int sig);
  // The exit code, or -signal if a signal killed it; nullopt if still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  bool running();
  pid_t pid() const { return pid_; }

  std::string stdout_text() const;
  std::string stderr_text() const;
  // Polls the capture until `needle` shows up; false after `timeout`. For "reload failed" and
  // other events that have no better signal than a log line.
  bool wait_for_stdout(std::string_view needle, std::chrono::milliseconds timeout) const;
  bool wait_for_stderr(std::string_view needle, std::chrono::milliseconds timeout) const;

  // Replaces the config file atomically (write a sibling, rename over it), for reload tests.
  void write_config(std::string yaml);
  std::string config_path() const { return config_path_; }
  // The temp dir, for tests that need more files next to the config.
  std::string dir() const { return dir_; }

  // VmHWM and VmRSS from /proc/<pid>/status, in KiB; throw once the process is gone.
  long peak_rss_kib() const;
  long rss_kib() const;
  // Descriptors open now (/proc/<pid>/fd): sockets, files, pipes.
  std::size_t open_fds() const;

 private:
  std::string dir_;
  std::string config_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;  // set once reaped
};

struct run_result {
  int exit_code = 0;  // -signal if a signal killed it
  std::string out;
  std::string err;
};

// Runs `binary args...` to completion (for --check-config, --version); throws after `timeout`
// (the process is killed first).
run_result run_gateway(std::string binary, std::vector<std::string> args,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Writes `contents` to a file called `name` in a fresh temp dir and returns its path. The dir is
// removed when the test program exits.
std::string write_temp_file(std::string contents, std::string name);

// A port that was free a moment ago on 127.0.0.1 (bound to port 0, read back, closed).
std::uint16_t free_port();

}  // namespace gw::test
