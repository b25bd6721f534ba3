// fork + exec rather than posix_spawn for the child-side setup in spawn().
#include "support/child_process.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace gw::test {

using namespace std::chrono_literals;

namespace {

std::string error_text(int error) { return std::strerror(error); }

// The parent's ends of what the child inherits: closed however spawn() leaves.
struct fds_to_close {
  std::vector<int> fds;
  ~fds_to_close() { close_all(); }
  void close_all() {
    for (int fd : fds) ::close(fd);
    fds.clear();
  }
  int open(const std::string& path, int flags) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("open " + path + ": " + error_text(errno));
    fds.push_back(fd);
    return fd;
  }
};

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

}  // namespace

pid_t spawn(const std::vector<std::string>& argv, const std::string& stdout_path,
            const std::string& stderr_path, output_mode mode) {
  const int out_flags = O_WRONLY | O_CREAT | (mode == output_mode::append ? O_APPEND : O_TRUNC);
  fds_to_close parent_ends;
  const int in_fd = parent_ends.open("/dev/null", O_RDONLY);
  const int out_fd = parent_ends.open(stdout_path, out_flags);
  const int err_fd = stderr_path == stdout_path ? out_fd : parent_ends.open(stderr_path, out_flags);
  int exec_status[2];
  if (::pipe2(exec_status, O_CLOEXEC) != 0) throw std::runtime_error("pipe2: " + error_text(errno));
  parent_ends.fds.push_back(exec_status[1]);

  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec: other threads of the test may hold locks.
    // Die with the test, so that a crashed test leaves no child holding its ports.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    int status_fd = exec_status[1];
    if (status_fd != 3) status_fd = ::dup3(status_fd, 3, O_CLOEXEC);
    // Asio does not mark its sockets close-on-exec: a child inheriting the test upstream's
    // sockets would keep connections open that the test closed.
    if (::syscall(SYS_close_range, 4u, ~0u, 0u) != 0) {
      for (int fd = 4; fd < 65536; ++fd) ::close(fd);
    }
    // A signal the test blocked or ignored would stay so across exec and break SIGHUP/SIGTERM.
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &default_action, nullptr);
    ::execv(args[0], args.data());
    int error = errno;
    if (::write(status_fd, &error, sizeof error) < 0) ::_exit(126);
    ::_exit(127);
  }
  int fork_error = errno;
  parent_ends.close_all();
  if (pid < 0) {
    ::close(exec_status[0]);
    throw std::runtime_error("fork: " + error_text(fork_error));
  }
  // The pipe closes on a successful exec; an errno arrives if exec failed.
  int exec_error = 0;
  ssize_t got;
  do {
    got = ::read(exec_status[0], &exec_error, sizeof exec_error);
  } while (got < 0 && errno == EINTR);
  ::close(exec_status[0]);
  if (got == static_cast<ssize_t>(sizeof exec_error)) {
    reap_within(pid, 10s);
    throw std::runtime_error("cannot run " + argv[0] + ": " + error_text(exec_error));
  }
  return pid;
}

std::optional<int> try_reap(pid_t pid) {
  int status = 0;
  pid_t reaped;
  do {
    reaped = ::waitpid(pid, &status, WNOHANG);
  } while (reaped < 0 && errno == EINTR);
  if (reaped == pid) return decode_status(status);
  if (reaped < 0)
    throw std::runtime_error("waitpid " + std::to_string(pid) + ": " + error_text(errno));
  return std::nullopt;
}

std::optional<int> reap_within(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (auto code = try_reap(pid)) return code;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

void kill_and_reap(pid_t pid) noexcept {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  try {
    reap_within(pid, 10s);
  } catch (const std::exception&) {
    // Nothing more to do for a child we cannot reap.
  }
}

}  // namespace gw::test
