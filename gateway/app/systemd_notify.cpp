// sd_notify(3) without libsystemd (see systemd_notify.hpp).
#include "app/systemd_notify.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

namespace gw::app {

void notify_systemd(std::string_view state) {
  const char* name = std::getenv("NOTIFY_SOCKET");
  if (!name || !*name) return;
  static std::atomic<bool> complained{false};
  auto complain = [&](const std::string& what) {
    if (!complained.exchange(true))
      spdlog::warn("cannot tell systemd \"{}\": {}", state.substr(0, state.find('\n')), what);
  };
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::size_t length = std::strlen(name);
  // A path, or '@' for an abstract socket name (its first byte NUL on the wire).
  if ((name[0] != '/' && name[0] != '@') || length >= sizeof address.sun_path) {
    complain("NOTIFY_SOCKET is neither a path nor an abstract name");
    return;
  }
  std::memcpy(address.sun_path, name, length);
  if (name[0] == '@') address.sun_path[0] = '\0';
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    complain(std::error_code(errno, std::system_category()).message());
    return;
  }
  const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + length);
  if (::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&address), size) < 0)
    complain(std::error_code(errno, std::system_category()).message());
  ::close(fd);
}

}  // namespace gw::app
