// What config_fuzz and rls_domain_fuzz both check of the loader's answer: a result is valid
// exactly when no problem is an error, and every problem has a place and a message that formats.
#pragma once

#include "config/loader.hpp"

#include "fuzz_check.hpp"

#include <algorithm>

inline void check_load_result(const gw::config::load_result& result) {
  const bool any_error = std::any_of(result.problems.begin(), result.problems.end(),
                                     [](const auto& p) { return !p.warning; });
  FUZZ_CHECK(result.ok() != any_error);
  for (const auto& p : result.problems) {
    FUZZ_CHECK(p.line >= 0 && p.column >= 0);
    FUZZ_CHECK(!p.message.empty());
    FUZZ_CHECK(!gw::config::format_problem("gateway.yaml", p).empty());
  }
}
