// Route selection: the first route whose match holds (SPEC 3, routes).
#pragma once

#include "config/config.hpp"

#include <optional>
#include <string>
#include <regex>
#include <string_view>
#include <vector>

namespace gw::proxy {

class router {
 public:
  // Compiles the routes' regexes once; the config must outlive the router.
  explicit router(const std::vector<config::route>& routes);

  // `host` is already lower-cased and without port; `path` is normalised, without query.
  // Returns the index of the matching route, or nullopt.
  std::optional<std::size_t> match(std::string_view method, std::string_view host,
                                   std::string_view path) const;

  // The path sent upstream: the matched prefix removed when the route asks for it.
  static std::string rewrite_path(const config::route& route, std::string_view path);

 private:
  struct entry {
    const config::route* route;
    std::optional<std::regex> path_regex;
  };
  std::vector<entry> entries_;
};

}  // namespace gw::proxy
