// Child processes for the test harness (the gateway, redis-server): started with fork + exec,
// dying with the test, and waited for against a deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace gw::test {

enum class output_mode { truncate, append };

// Starts argv[0] (a path, no PATH search) with stdin on /dev/null and stdout, stderr into the
// given files (one file when the paths are equal). The child gets default signal dispositions, an
// empty signal mask, no fds above 2, and SIGKILL when the test program dies. Throws if a file
// cannot be opened or exec fails.
pid_t spawn(const std::vector<std::string>& argv, const std::string& stdout_path,
            const std::string& stderr_path, output_mode mode = output_mode::truncate);

// Reaps without blocking: the exit code (-signal if a signal killed it) once the process is gone,
// nullopt while it runs. Throws if `pid` is not a child that can be waited for.
std::optional<int> try_reap(pid_t pid);
// try_reap, polled until `timeout`.
std::optional<int> reap_within(pid_t pid, std::chrono::milliseconds timeout);
// SIGKILL and reap (for at most 10 s). Never throws: for destructors and clean-up paths.
void kill_and_reap(pid_t pid) noexcept;

}  // namespace gw::test
