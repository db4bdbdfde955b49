// The dashboard's files (web/), compiled into the binary by scripts/embed_web.cmake.
#pragma once

#include <cstddef>
#include <vector>

namespace crowdgate {

struct WebAsset {
  const char* path;            // relative to web/: "index.html", "vendor/uPlot.iife.min.js"
  const unsigned char* data;
  size_t size;
};

const std::vector<WebAsset>& WebAssets();

}  // namespace crowdgate
