// A leak check_public_headers must find: an internal type named by an elaborated type
// specifier, with no declaration of its own (it compiles too).
#pragma once

#include "crowdgate/a_forward_declared.hpp"

namespace crowdgate {

// Launcher is defined in a public header: naming it is fine.
void Use(const class Launcher& launcher, const struct EngineCore* core);

}  // namespace crowdgate
