// The dashboard at /dashboard/: its embedded files, login (requester token -> session cookie,
// HttpOnly and SameSite=Strict, plus a CSRF token the page sends with every change) and logout.
#pragma once

#include "server/requester_api.hpp"

namespace crowdgate {

void AddDashboardRoutes(Router& router, const RequesterContext& ctx);

// The Content-Security-Policy of every dashboard page: nothing but the dashboard's own files.
extern const char* const kDashboardCsp;

}  // namespace crowdgate
