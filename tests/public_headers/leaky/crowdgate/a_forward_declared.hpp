// A leak check_public_headers must find: a forward declaration of an internal type (it compiles).
#pragma once

namespace crowdgate {

struct RunConfig;

class Launcher {
 public:
  virtual ~Launcher() = default;
  virtual void Launch(const RunConfig& config) = 0;
};

}  // namespace crowdgate
