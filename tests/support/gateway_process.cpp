// Starting, watching and stopping the gateway process; every wait polls against a deadline.
#include "support/gateway_process.hpp"

#include "support/child_process.hpp"
#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/file.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

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
  if (pid_ > 0 && !exit_code_) kill_and_reap(pid_);
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

std::size_t gateway_process::open_fds() const {
  const auto dir = "/proc/" + std::to_string(pid_) + "/fd";
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator{dir, ec};
       !ec && it != std::filesystem::directory_iterator{}; it.increment(ec))
    ++n;
  if (ec && n == 0) throw std::runtime_error("cannot list " + dir + ": " + ec.message());
  return n;
}

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
    kill_and_reap(pid);
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

namespace {

// Claims `port` for the rest of this test process: an exclusive flock on
// /tmp/gateway-test-ports/PORT, held by a descriptor left open until the process exits, so that
// no other test process (ctest -j runs several) and no later call here hands out the same port
// while its first owner has not bound it yet. The kernel drops the lock when the process ends,
// however it ends.
bool claim(std::uint16_t port) {
  static std::mutex mutex;
  static std::vector<std::uint16_t> claimed;
  std::lock_guard lock{mutex};
  if (std::find(claimed.begin(), claimed.end(), port) != claimed.end()) return false;
  const std::filesystem::path dir = "/tmp/gateway-test-ports";
  std::error_code ignored;
  std::filesystem::create_directories(dir, ignored);
  const auto file = dir / std::to_string(port);
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return true;  // no lock to be had: the bind check below still applies
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return false;
  }
  claimed.push_back(port);  // fd stays open on purpose: it is the claim
  return true;
}

}  // namespace

std::uint16_t free_port() {
  // Below the kernel's ephemeral range (ip_local_port_range), so that no outgoing connection of
  // this or another test (to Redis, an upstream, the gateway) takes the port between this check
  // and the bind of whoever uses it; random within it, and claimed (above), so that parallel
  // tests never get the same one.
  std::uint16_t low = 32768;
  if (std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) {
    unsigned first = 0, last = 0;
    if (std::fscanf(f, "%u %u", &first, &last) == 2 && first > 12000 && first <= 65535)
      low = static_cast<std::uint16_t>(first);
    std::fclose(f);
  }
  const std::uint16_t base = 10000;
  thread_local std::mt19937 random{std::random_device{}()};
  for (int attempt = 0; attempt < 200; ++attempt) {
    const auto port = static_cast<std::uint16_t>(base + random() % (low - base));
    if (!claim(port)) continue;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket: " + error_text(errno));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    if (bound) return port;
  }
  throw std::runtime_error("free_port: no free port below the ephemeral range");
}

}  // namespace gw::test
