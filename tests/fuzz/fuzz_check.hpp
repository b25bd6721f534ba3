// What a fuzz target asserts beyond "no crash, no sanitizer report": a broken invariant aborts
// with its text, and libFuzzer keeps the input as a crash (assert is compiled out in Release).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(condition)                                                                  \
  do {                                                                                         \
    if (!(condition)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #condition);    \
      std::abort();                                                                            \
    }                                                                                          \
  } while (false)
