#!/usr/bin/env bash
# Installs the npm packages of tests/browser (playwright-core for the browser tests, uPlot for the
# dashboard's plots) exactly as package-lock.json pins them (version and sha512 integrity), and
# copies uPlot into web/vendor/, which the build embeds into the binary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/tests/browser"
npm ci --no-audit --no-fund --ignore-scripts
mkdir -p "$root/web/vendor"
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css "$root/web/vendor/"
cp node_modules/uplot/LICENSE "$root/web/vendor/uPlot.LICENSE" 2>/dev/null || true
echo "web/vendor: uPlot $(node -p 'require("./node_modules/uplot/package.json").version')"
