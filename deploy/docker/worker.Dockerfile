# mmgrid worker image (CPU): the built-in kinds (OCR, image inspection, audio analysis, the
# splitters, text statistics, the fusion report) and any model servers its config names.
# Build from the repository root:
#
#   docker build -f deploy/docker/worker.Dockerfile -t mmgrid/worker .
#
# For NVIDIA GPUs use worker-cuda.Dockerfile. The build stage is the same in
# coordinator.Dockerfile, worker.Dockerfile and worker-cuda.Dockerfile (keep it so): it builds
# both programs and `pnpm deploy`s each into /out/NAME (its lib/, package.json and production
# node_modules, workspace packages copied in), so the three images share one cached build.

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

FROM node:20-bookworm-slim
LABEL org.opencontainers.image.title="mmgrid worker" \
      org.opencontainers.image.description="mmgrid worker daemon (CPU): connects out to coordinators and runs tasks" \
      org.opencontainers.image.licenses="Apache-2.0"
# ffmpeg and ffprobe cut recordings and videos into shards and decode audio. tini is PID 1:
# it passes SIGTERM on (the worker drains) and reaps the ffmpeg and exec children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tini \
 && rm -rf /var/lib/apt/lists/*
# The worker's id and blob cache live in the state folder (mount a volume there to keep the
# id across restarts); /metrics and /healthz on every interface, for Prometheus.
ENV NODE_ENV=production \
    MMGRID_WORKER_METRICS_LISTEN=0.0.0.0:9465 \
    MMGRID_WORKER_STATE_DIR=/var/lib/mmgrid/worker
WORKDIR /app
COPY --from=build /out/worker ./
COPY deploy/docker/healthcheck.mjs ./healthcheck.mjs
RUN mkdir -p /var/lib/mmgrid/worker && chown -R 1000:1000 /var/lib/mmgrid
USER 1000:1000
# The worker only connects out (MMGRID_COORDINATOR=host:7070,…); 9465 is /metrics and
# /healthz, which answers 200 while a coordinator has welcomed the worker.
EXPOSE 9465
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
# Options and their environment variables: `docker run mmgrid/worker --help`.
ENTRYPOINT ["tini", "--", "node", "/app/lib/bin.js"]
