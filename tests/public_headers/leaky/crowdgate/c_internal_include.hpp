// A leak check_public_headers must find: an internal header included (it does not compile
// alone either, without src/ on the include path).
#pragma once

#include "core/run_config.hpp"
