#!/usr/bin/env bash
# Quick start: install everything, build, and run the demo job on a local grid.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
pnpm demo
