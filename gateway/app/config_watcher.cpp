// server.watch_config (see config_watcher.hpp).
#include "app/config_watcher.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/system/system_error.hpp>

#include <spdlog/spdlog.h>

#include <sys/inotify.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <system_error>
#include <vector>

namespace gw::app {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// What changes a folder's view of a file: written in place, renamed over, linked anew, removed.
// Not IN_MODIFY: a close follows every write that matters, and other files in the folder (a
// log, say) would wake the watcher on every line.
constexpr std::uint32_t folder_events = IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                        IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF |
                                        IN_ONLYDIR;

// The folders whose entries decide what `path` reads: its own, the folder holding every symlink
// met on the way (at any component: /srv/gw/current -> releases/v2 is swapped in /srv/gw) and
// the final target's. For a ConfigMap: the mount, where ..data is renamed, and the timestamped
// folder.
std::set<std::string> folders_of(const std::string& path) {
  std::set<std::string> out;
  std::error_code ec;
  const fs::path start = fs::absolute(path, ec);
  if (ec) return out;
  out.insert(start.parent_path().lexically_normal().string());
  // Walk the components, following each symlink (bounded, as the kernel bounds it).
  std::vector<fs::path> pending{start.lexically_normal()};
  for (int followed = 0; !pending.empty() && followed < 40;) {
    const fs::path whole = pending.back();
    pending.pop_back();
    const fs::path relative = whole.relative_path();  // one object: its iterators compare
    fs::path at = whole.root_path();
    for (auto it = relative.begin(); it != relative.end(); ++it) {
      at /= *it;
      if (!fs::is_symlink(at, ec)) continue;
      out.insert(at.parent_path().string());
      const fs::path target = fs::read_symlink(at, ec);
      if (ec) break;
      fs::path rest;
      for (auto more = std::next(it); more != relative.end(); ++more) rest /= *more;
      pending.push_back(((target.is_absolute() ? target : at.parent_path() / target) / rest)
                            .lexically_normal());
      ++followed;
      break;
    }
  }
  const fs::path resolved = fs::weakly_canonical(path, ec);
  if (!ec) out.insert(resolved.parent_path().string());
  return out;
}

}  // namespace

config_watcher::config_watcher(asio::io_context& io, std::function<void()> on_change)
    : on_change_(std::move(on_change)), inotify_(io), timer_(io) {}

config_watcher::~config_watcher() { stop(); }

void config_watcher::watch(std::vector<std::string> paths) {
  const bool started = !watching();
  if (started) {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
      throw boost::system::system_error(errno, boost::system::system_category(),
                                        "watch_config: inotify_init1");
    inotify_.assign(fd);
  }
  const bool same = paths == paths_;
  paths_ = std::move(paths);
  seen_ = content();
  watch_folders();
  if (started) read_events();
  if (started || !same)
    spdlog::info("watching {} (and {} files it names) for changes", paths_.front(),
                 paths_.size() - 1);
}

void config_watcher::stop() {
  timer_.cancel();
  first_event_.reset();
  watches_.clear();  // closing the descriptor drops every watch
  boost::system::error_code ignored;
  inotify_.close(ignored);
}

void config_watcher::watch_folders() {
  std::set<std::string> wanted;
  for (const auto& path : paths_) wanted.merge(folders_of(path));
  for (auto it = watches_.begin(); it != watches_.end();) {
    if (wanted.contains(it->first)) {
      ++it;
    } else {
      ::inotify_rm_watch(inotify_.native_handle(), it->second);  // may be gone already
      it = watches_.erase(it);
    }
  }
  for (const auto& folder : wanted) {
    // Adding a folder watched already returns its descriptor, or a new one if the folder was
    // made anew under the same name.
    const int wd = ::inotify_add_watch(inotify_.native_handle(), folder.c_str(), folder_events);
    if (wd < 0) {
      spdlog::warn("watch_config: cannot watch {}: {}", folder,
                   std::error_code(errno, std::system_category()).message());
      watches_.erase(folder);
      continue;
    }
    auto [it, added] = watches_.emplace(folder, wd);
    if (!added && it->second != wd) {
      ::inotify_rm_watch(inotify_.native_handle(), it->second);
      it->second = wd;
    }
  }
}

void config_watcher::read_events() {
  // Which event it was does not matter: any of them means "look again after a quiet moment".
  inotify_.async_read_some(asio::buffer(buffer_),
                           [this](const boost::system::error_code& ec, std::size_t) {
                             if (ec) return;  // stopped
                             changed();
                             read_events();
                           });
}

void config_watcher::changed() {
  const auto now = std::chrono::steady_clock::now();
  if (!first_event_) first_event_ = now;
  timer_.expires_at(std::min(now + settle, *first_event_ + longest_wait));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) settled();
  });
}

void config_watcher::settled() {
  first_event_.reset();
  watch_folders();  // a swapped symlink points into a new folder
  auto now = content();
  if (!now) {
    spdlog::warn("watch_config: {} cannot be read; keeping the running configuration",
                 paths_.front());
    return;
  }
  if (now == seen_) return;
  seen_ = std::move(now);
  spdlog::info("watch_config: {} or a file it names changed; reloading", paths_.front());
  on_change_();  // may stop() this watcher: nothing of it is touched after
}

std::optional<std::string> config_watcher::content() const {
  std::string all;
  for (std::size_t i = 0; i < paths_.size(); ++i) {
    std::ifstream file(paths_[i], std::ios::binary);
    std::string text;
    if (file) text.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    if (!file || file.bad()) {
      if (i == 0) return std::nullopt;
      text = "(unreadable)";  // a named file gone: a change too (the reload will say what)
    }
    all += std::to_string(text.size()) + ':' + text;  // sized: no two sets read the same
  }
  return all;
}

}  // namespace gw::app
