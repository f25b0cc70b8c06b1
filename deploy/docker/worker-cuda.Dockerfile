# mmgrid worker image for NVIDIA GPUs: the CPU worker's programs on an nvidia/cuda runtime base
# (CUDA 12 and cuDNN 9), with ONNX Runtime's CUDA provider, so `device: auto|cuda` in an
# `onnx` backend runs on the GPU. Build from the repository root (amd64 only: ONNX Runtime's
# CUDA provider exists for linux/x64 only):
#
#   docker build -f deploy/docker/worker-cuda.Dockerfile -t mmgrid/worker-cuda .
#   docker run --gpus all mmgrid/worker-cuda --coordinator grid.example.org:7070
#
# The NVIDIA Container Toolkit puts the driver and nvidia-smi in the container (the base image
# asks for NVIDIA_DRIVER_CAPABILITIES=compute,utility); the worker finds the GPUs with it.
#
# Node.js: the `node` binary of the official node:20-bookworm-slim image (the build stage),
# copied in. That image installs Node's own Linux binary tarball (checksums verified against
# the release keys), which needs glibc 2.28 or newer: Ubuntu 22.04 has 2.35. So the worker
# runs on exactly the Node it was built and tested with, and the image needs no NodeSource
# apt repository and no download of its own.
#
# Python and PyTorch are the GPU owner's own layer (an exec backend runs your scripts, see
# docs/worker.md), for example:
#
#   FROM mmgrid/worker-cuda
#   USER root
#   RUN apt-get update && apt-get install -y --no-install-recommends python3-pip \
#    && pip3 install --no-cache-dir torch --index-url https://download.pytorch.org/whl/cu124
#   USER 1000:1000
#
# The build stage is the same in coordinator.Dockerfile, worker.Dockerfile and
# worker-cuda.Dockerfile (keep it so): it builds both programs and `pnpm deploy`s each into
# /out/NAME, so the three images share one cached build.

# Another CUDA 12 runtime with cuDNN 9 works too, e.g. nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04.
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04

FROM node:20-bookworm-slim AS build
# pnpm is the version package.json's packageManager names, through corepack. Should corepack
# refuse it ("Cannot find matching keyid": an older corepack without the registry's newer
# signing keys), add `ENV COREPACK_INTEGRITY_KEYS=0` here, which turns that check off.
# onnxruntime-node's install script is skipped as in scripts/install.sh; worker-cuda.Dockerfile
# fetches the CUDA provider itself.
ENV CI=true \
    COREPACK_ENABLE_DOWNLOAD_PROMPT=0 \
    ONNXRUNTIME_NODE_INSTALL=skip
RUN corepack enable
WORKDIR /src
# The packages come from the lockfile alone: this layer is reused until pnpm-lock.yaml changes.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline
# `pnpm build` is `tsc -b` of the whole workspace, tests included; the images need these two
# programs and the packages they reference.
RUN pnpm exec tsc -b packages/coordinator packages/worker
# `pnpm deploy` takes the versions from pnpm-lock.yaml (so --offline works: the store has
# them all) when it may inject workspace packages; the setting is given here only, because the
# workspace itself links them. onnxruntime-node ships its library for every platform; only this
# one's is kept.
RUN pnpm --config.inject-workspace-packages=true --filter @mmgrid/coordinator --prod deploy --offline /out/coordinator \
 && pnpm --config.inject-workspace-packages=true --filter @mmgrid/worker --prod deploy --offline /out/worker \
 && for ort in /out/worker/node_modules/.pnpm/onnxruntime-node@*/node_modules/onnxruntime-node/bin/napi-v*; do \
      find "$ort" -mindepth 2 -maxdepth 2 ! -path "$ort/linux/$(node -p process.arch)" -exec rm -rf {} + ; \
    done

# ONNX Runtime's CUDA provider is too large for the npm registry: its install script fetches it
# (from NuGet) when asked. docs/worker.md asks with
#   ONNXRUNTIME_NODE_INSTALL=cuda12 pnpm -r rebuild --config.dangerously-allow-all-builds=true onnxruntime-node
# which runs that same script in the workspace; `pnpm deploy` installs packages afresh without
# their scripts, so here it is run in the deployed tree. Needs the network at build time.
FROM build AS onnx-cuda
RUN cd /out/worker/node_modules/onnxruntime-node \
 && ONNXRUNTIME_NODE_INSTALL=cuda12 node script/install.js \
 && ls bin/napi-v*/linux/x64/libonnxruntime_providers_cuda.so

FROM ${CUDA_IMAGE}
LABEL org.opencontainers.image.title="mmgrid worker (CUDA)" \
      org.opencontainers.image.description="mmgrid worker daemon for NVIDIA GPUs: connects out to coordinators and runs tasks" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /usr/local/bin/node /usr/local/bin/node
# ffmpeg and ffprobe cut recordings and videos into shards. tini is PID 1: it passes SIGTERM
# on (the worker drains) and reaps the ffmpeg and exec children. The worker runs as uid 1000
# (as in the other images); newer Ubuntu bases already have a user with that id.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ffmpeg tini ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && (getent passwd 1000 >/dev/null || useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin mmgrid) \
 && node --version
ENV NODE_ENV=production \
    MMGRID_WORKER_METRICS_LISTEN=0.0.0.0:9465 \
    MMGRID_WORKER_STATE_DIR=/var/lib/mmgrid/worker
WORKDIR /app
COPY --from=onnx-cuda /out/worker ./
COPY deploy/docker/healthcheck.mjs ./healthcheck.mjs
RUN mkdir -p /var/lib/mmgrid/worker && chown -R 1000:1000 /var/lib/mmgrid
USER 1000:1000
EXPOSE 9465
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
ENTRYPOINT ["tini", "--", "node", "/app/lib/bin.js"]
