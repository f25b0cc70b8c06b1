# mmgrid coordinator image. Build from the repository root:
#
#   docker build -f deploy/docker/coordinator.Dockerfile -t mmgrid/coordinator .
#
# The build stage is the same in coordinator.Dockerfile, worker.Dockerfile and
# worker-cuda.Dockerfile (keep it so): it builds both programs and `pnpm deploy`s each into
# /out/NAME (its lib/, package.json and production node_modules, workspace packages copied
# in), so the three images share one cached build.

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
LABEL org.opencontainers.image.title="mmgrid coordinator" \
      org.opencontainers.image.description="mmgrid coordinator replica: gRPC API for submitters and workers, over Redis" \
      org.opencontainers.image.licenses="Apache-2.0"
# ffprobe (in Debian's ffmpeg) reads recordings and videos at submit: durations, streams, and
# damaged files refused before any task runs (docs/pipelines.md). tini is PID 1: it passes
# SIGTERM on (the coordinator stops cleanly) and reaps the ffprobe children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tini \
 && rm -rf /var/lib/apt/lists/*
# Listen on every interface inside the container; blobs in a folder that a volume (shared by
# every replica) is mounted on, or MMGRID_BLOB_STORE=s3://… instead.
ENV NODE_ENV=production \
    MMGRID_LISTEN=0.0.0.0:7070 \
    MMGRID_METRICS_LISTEN=0.0.0.0:9464 \
    MMGRID_BLOB_DIR=/var/lib/mmgrid/blobs
WORKDIR /app
COPY --from=build /out/coordinator ./
COPY deploy/docker/healthcheck.mjs ./healthcheck.mjs
# The node user (1000:1000) owns the blob folder, so a new named volume mounted there is too.
RUN mkdir -p /var/lib/mmgrid/blobs && chown -R 1000:1000 /var/lib/mmgrid
USER 1000:1000
# 7070: gRPC (submitters and workers); 9464: /metrics and /healthz (HTTP).
EXPOSE 7070 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["node", "/app/healthcheck.mjs"]
# Options and their environment variables: `docker run mmgrid/coordinator --help`.
ENTRYPOINT ["tini", "--", "node", "/app/lib/bin.js"]
