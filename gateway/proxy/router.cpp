// Route matching (see router.hpp).
#include "proxy/router.hpp"

#include <algorithm>

namespace gw::proxy {

router::router(const std::vector<config::route>& routes) {
  entries_.reserve(routes.size());
  for (const auto& route : routes) {
    entry e{&route, std::nullopt};
    if (route.match.path_regex)
      e.path_regex.emplace(*route.match.path_regex, std::regex::ECMAScript | std::regex::optimize);
    entries_.push_back(std::move(e));
  }
}

std::optional<std::size_t> router::match(std::string_view method, std::string_view host,
                                         std::string_view path) const {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const auto& m = entries_[i].route->match;
    if (m.path && *m.path != path) continue;
    if (m.path_prefix && !path.starts_with(*m.path_prefix)) continue;
    if (entries_[i].path_regex &&
        !std::regex_search(path.begin(), path.end(), *entries_[i].path_regex))
      continue;
    if (!m.methods.empty() &&
        std::find(m.methods.begin(), m.methods.end(), method) == m.methods.end())
      continue;
    if (m.host && *m.host != host) continue;
    return i;
  }
  return std::nullopt;
}

std::string router::rewrite_path(const config::route& route, std::string_view path) {
  if (!route.strip_prefix || !route.match.path_prefix) return std::string{path};
  // Prefixes match as plain strings (as in nginx and Envoy); what is left becomes absolute.
  auto rest = path.substr(route.match.path_prefix->size());
  if (rest.starts_with('/')) return std::string{rest};
  return "/" + std::string{rest};
}

}  // namespace gw::proxy
