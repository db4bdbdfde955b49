// Shared helpers of the libFuzzer harnesses (see fuzz/CMakeLists.txt and README "Fuzzing").
// FUZZ_CHECK aborts on a broken invariant so libFuzzer records the input as a crash;
// bad input itself must never abort.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, what)                                                        \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, what); \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)
