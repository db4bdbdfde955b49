#!/usr/bin/env bash
# Installs every Debian package crowdgate needs to build, test and benchmark.
# Idempotent: packages already present are skipped. Needs root (or sudo) only when
# something is missing.
set -euo pipefail
PACKAGES=(
  build-essential cmake pkg-config
  dpkg-dev
  libboost-dev libboost-system-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libsqlite3-dev libssl-dev
  libpqxx-dev libpq-dev postgresql
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
  clang libclang-rt-14-dev
  curl libcurl4-openssl-dev
  pybind11-dev python3-dev python3-pytest
  chromium
)
missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js and npm (for the dashboard's vendored uPlot and the browser tests): Debian's nodejs and npm
# packages, unless a Node.js with npm is installed already (e.g. from NodeSource, whose nodejs
# package ships npm and conflicts with Debian's npm).
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
else
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q || echo "setup: apt-get update failed, trying with the cached lists"
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# npm packages, pinned by tests/browser/package-lock.json: playwright-core (browser tests) and uPlot
# (the dashboard's plots, copied into web/vendor/ and embedded by the build).
"$(dirname "$0")/fetch_web_vendor.sh"
