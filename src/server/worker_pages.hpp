// The HTML pages a worker sees: a task unit (static_html template), onboarding, and a
// message page for refusals. Values are always HTML-escaped; answers are never given.
#pragma once

#include <string>

#include "core/run_config.hpp"
#include "engine/run_dispatcher.hpp"

namespace crowdgate {

// The page for a work response with outcome unit or onboarding.
std::string RenderWorkPage(const RunView& run, const WorkResponse& work);
std::string RenderMessagePage(const std::string& title, const std::string& message);

}  // namespace crowdgate
