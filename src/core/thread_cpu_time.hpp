// CPU time the calling thread has used, in seconds (CLOCK_THREAD_CPUTIME_ID). Unlike wall time it
// hardly moves when other work shares the cores: the figure to compare one thread's cost by.
#pragma once

#include <time.h>

namespace crowdgate {

inline double ThreadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace crowdgate
