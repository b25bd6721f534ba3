// server.watch_config: reload when the configuration file, or a TLS file it names, changes:
// files nobody sends SIGHUP about, such as a Kubernetes ConfigMap or a Secret that cert-manager
// renews. The kubelet updates a mounted volume by writing a new folder and renaming a symlink
// (..data) over the old one, so watching a file's inode sees nothing: inotify watches the folder
// that holds each path and the folders of what the path resolves to, and after a quiet moment
// the files' content is compared with what was last seen. Only a change of content calls back;
// the reload itself is the SIGHUP one (all or nothing, counted in gateway_config_reloads_total).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gw::app {

class config_watcher {
 public:
  // Events closer together than `settle` are one change; a file written without pause is still
  // looked at every `longest_wait`.
  static constexpr std::chrono::milliseconds settle{200};
  static constexpr std::chrono::milliseconds longest_wait{2000};

  // `on_change` runs on `io`'s thread.
  config_watcher(boost::asio::io_context& io, std::function<void()> on_change);
  ~config_watcher();
  config_watcher(const config_watcher&) = delete;
  config_watcher& operator=(const config_watcher&) = delete;

  // Watches `paths` (the configuration file first, then the files it names) from now on; the
  // content seen now is the baseline. Starts watching if stopped: throws
  // boost::system::system_error when inotify cannot be had.
  void watch(std::vector<std::string> paths);
  void stop();
  bool watching() const { return inotify_.is_open(); }

 private:
  void watch_folders();
  void read_events();
  void changed();  // an event: (re)start the settle timer
  void settled();
  // Every file's bytes, in order; nullopt when the configuration file is missing or unreadable.
  std::optional<std::string> content() const;

  std::vector<std::string> paths_;
  std::function<void()> on_change_;
  boost::asio::posix::stream_descriptor inotify_;
  boost::asio::steady_timer timer_;
  std::map<std::string, int> watches_;  // folder -> watch descriptor
  std::optional<std::chrono::steady_clock::time_point> first_event_;
  std::optional<std::string> seen_;  // the content last seen (config files are small)
  alignas(8) std::array<char, 4096> buffer_{};
};

}  // namespace gw::app
