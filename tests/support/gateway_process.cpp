// Starting, watching and stopping the gateway process; every wait polls against a deadline.
#include "support/gateway_process.hpp"

#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace gw::test {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto poll_interval = 10ms;

std::string error_text(int error) { return std::strerror(error); }

bool keep_temp_dirs() { return std::getenv("GW_TEST_KEEP_TMP") != nullptr; }

std::string make_temp_dir() {
  char path[] = "/tmp/gateway-test-XXXXXX";
  if (::mkdtemp(path) == nullptr)
    throw std::runtime_error(std::string("mkdtemp: ") + error_text(errno));
  return path;
}

void remove_dir(const std::string& dir) {
  if (dir.empty() || keep_temp_dirs()) return;
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

// Dirs made by write_temp_file, removed when the test program ends.
class temp_dir_registry {
 public:
  void add(std::string dir) {
    std::lock_guard lock(mutex_);
    dirs_.push_back(std::move(dir));
  }
  ~temp_dir_registry() {
    for (const auto& dir : dirs_) remove_dir(dir);
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> dirs_;
};

temp_dir_registry& temp_dirs() {
  static temp_dir_registry registry;
  return registry;
}

void write_file(const std::string& path, const std::string& contents) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << contents;
  file.close();
  if (!file) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

int open_or_throw(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("open " + path + ": " + error_text(errno));
  return fd;
}

// Starts argv[0] with stdin on /dev/null and stdout, stderr into the given files. fork + exec
// rather than posix_spawn for the child-side setup below.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path) {
  int in_fd = open_or_throw("/dev/null", O_RDONLY);
  int out_fd = open_or_throw(out_path, O_WRONLY | O_CREAT | O_TRUNC);
  int err_fd = open_or_throw(err_path, O_WRONLY | O_CREAT | O_TRUNC);
  int exec_status[2];
  if (::pipe2(exec_status, O_CLOEXEC) != 0) throw std::runtime_error("pipe2: " + error_text(errno));

  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec: other threads of the test may hold locks.
    // Die with the test, so that a crashed test leaves no gateway holding its ports.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    int status_fd = exec_status[1];
    if (status_fd != 3) status_fd = ::dup3(status_fd, 3, O_CLOEXEC);
    // Asio does not mark its sockets close-on-exec: a gateway inheriting the test upstream's
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
  ::close(in_fd);
  ::close(out_fd);
  ::close(err_fd);
  ::close(exec_status[1]);
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
    int ignored;
    ::waitpid(pid, &ignored, 0);
    throw std::runtime_error("cannot run " + argv[0] + ": " + error_text(exec_error));
  }
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1;
}

// Reaps without blocking; the exit code once the process is gone.
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
  auto deadline = clock_type::now() + timeout;
  for (;;) {
    if (auto code = try_reap(pid)) return code;
    if (clock_type::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(poll_interval);
  }
}

bool wait_for_text(const std::string& path, std::string_view needle,
                   std::chrono::milliseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  for (;;) {
    if (read_file(path).find(needle) != std::string::npos) return true;
    if (clock_type::now() >= deadline) return false;
    std::this_thread::sleep_for(poll_interval);
  }
}

long proc_status_kib(pid_t pid, std::string_view key) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with(key) && line.size() > key.size() && line[key.size()] == ':')
      return std::strtol(line.c_str() + key.size() + 1, nullptr, 10);
  }
  throw std::runtime_error("no " + std::string(key) + " for process " + std::to_string(pid) +
                           " (has it exited?)");
}

}  // namespace

gateway_process::gateway_process(std::string binary, std::string yaml,
                                 std::vector<std::string> extra_args)
    : dir_(make_temp_dir()), config_path_(dir_ + "/gateway.yaml") {
  try {
    write_file(config_path_, yaml);
    std::vector<std::string> argv{std::move(binary), "--config", config_path_};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    pid_ = spawn(argv, dir_ + "/stdout.log", dir_ + "/stderr.log");
  } catch (...) {
    remove_dir(dir_);
    throw;
  }
}

gateway_process::~gateway_process() {
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    try {
      reap_within(pid_, 10s);
    } catch (const std::exception&) {
      // Nothing more to do for a child we cannot reap; never throw from a destructor.
    }
  }
  remove_dir(dir_);
}

void gateway_process::wait_ready(std::uint16_t admin_port, std::chrono::milliseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  for (;;) {
    if (!running())
      throw std::runtime_error("gateway exited with " + std::to_string(*exit_code_) +
                               " before it was ready; stderr:\n" + stderr_text());
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    try {
      if (request(admin_port, "GET", "/healthz", {}, {}, std::clamp(left, 50ms, 1000ms)).status ==
          200)
        return;
    } catch (const std::exception&) {
      // Not listening yet.
    }
    if (clock_type::now() >= deadline)
      throw std::runtime_error("gateway not ready on admin port " + std::to_string(admin_port) +
                               " after " + std::to_string(timeout.count()) + " ms; stderr:\n" +
                               stderr_text());
    std::this_thread::sleep_for(poll_interval);
  }
}

void gateway_process::send_signal(int sig) {
  if (exit_code_)
    throw std::runtime_error("send_signal: the gateway already exited with " +
                             std::to_string(*exit_code_));
  if (::kill(pid_, sig) != 0)
    throw std::runtime_error("kill " + std::to_string(pid_) + ": " + error_text(errno));
}

std::optional<int> gateway_process::wait_exit(std::chrono::milliseconds timeout) {
  if (!exit_code_) exit_code_ = reap_within(pid_, timeout);
  return exit_code_;
}

bool gateway_process::running() {
  if (!exit_code_) exit_code_ = try_reap(pid_);
  return !exit_code_;
}

std::string gateway_process::stdout_text() const { return read_file(dir_ + "/stdout.log"); }

std::string gateway_process::stderr_text() const { return read_file(dir_ + "/stderr.log"); }

bool gateway_process::wait_for_stdout(std::string_view needle,
                                      std::chrono::milliseconds timeout) const {
  return wait_for_text(dir_ + "/stdout.log", needle, timeout);
}

bool gateway_process::wait_for_stderr(std::string_view needle,
                                      std::chrono::milliseconds timeout) const {
  return wait_for_text(dir_ + "/stderr.log", needle, timeout);
}

void gateway_process::write_config(std::string yaml) {
  // A reload must never see half a file.
  std::string staged = config_path_ + ".new";
  write_file(staged, yaml);
  if (::rename(staged.c_str(), config_path_.c_str()) != 0)
    throw std::runtime_error("rename " + staged + ": " + error_text(errno));
}

long gateway_process::peak_rss_kib() const { return proc_status_kib(pid_, "VmHWM"); }

long gateway_process::rss_kib() const { return proc_status_kib(pid_, "VmRSS"); }

run_result run_gateway(std::string binary, std::vector<std::string> args,
                       std::chrono::milliseconds timeout) {
  std::string dir = make_temp_dir();
  struct dir_remover {
    std::string& dir;
    ~dir_remover() { remove_dir(dir); }
  } remover{dir};

  std::vector<std::string> argv{std::move(binary)};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = spawn(argv, dir + "/stdout.log", dir + "/stderr.log");
  auto code = reap_within(pid, timeout);
  if (!code) {
    ::kill(pid, SIGKILL);
    reap_within(pid, 10s);
    throw std::runtime_error("gateway did not exit within " + std::to_string(timeout.count()) +
                             " ms; stdout:\n" + read_file(dir + "/stdout.log") + "\nstderr:\n" +
                             read_file(dir + "/stderr.log"));
  }
  return {*code, read_file(dir + "/stdout.log"), read_file(dir + "/stderr.log")};
}

std::string write_temp_file(std::string contents, std::string name) {
  std::string dir = make_temp_dir();
  temp_dirs().add(dir);
  std::string path = dir + "/" + name;
  write_file(path, contents);
  return path;
}

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + error_text(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    int error = errno;
    ::close(fd);
    throw std::runtime_error("free_port: " + error_text(error));
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace gw::test
