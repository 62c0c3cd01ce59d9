# syntax=docker/dockerfile:1
#
# Production image of the ML prediction server.
#
#   docker build -t ml-prediction-server .
#   docker run --rm -p 8000:8000 -v "$PWD/models:/app/models:ro" ml-prediction-server
#
# Two stages: `build` installs every dependency and compiles TypeScript; `runtime` installs only
# the production dependencies and takes the compiled dist/ from `build`. The image holds dist/,
# config/, models/ (the shipped default model; mount your own read-only over /app/models) and
# package*.json; no sources, tests, dev dependencies or compilers.
#
# No Docker engine runs where this project is developed: scripts/container-smoke.ts replays
# these exact steps (it reads this file) in a clean directory as an unprivileged user, and
# test/ops/container-recipe.test.ts runs it. Keep every RUN here relative to WORKDIR and free of
# root-only commands, so that the replay stays faithful (docs/operations.md).

# ---- build: all dependencies, tsc -------------------------------------------------------------
FROM node:22-bookworm-slim AS build
WORKDIR /app
# .npmrc first: it carries onnxruntime-node-install=skip, without which onnxruntime-node's
# postinstall tries to download CUDA files from outside the npm registry and fails offline.
COPY package.json package-lock.json .npmrc ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
# logs/ is created here so that the runtime stage can copy it with the service user as owner
# (LOG_FILE=logs/service.log, or a volume mounted at /app/logs, then works as non-root).
RUN npm run build && mkdir -p logs

# ---- runtime: production dependencies, compiled code, config, default model ---------------------
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Production dependencies only; then drop the native binaries of other platforms and Node ABIs
# that onnxruntime-node (~290 MB for all platforms) and uWebSockets.js (~130 MB) ship, keeping
# linux/<this arch> and this Node's ABI. The replay test starts the server from the pruned tree.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund \
 && arch="$(node -p process.arch)" && abi="$(node -p process.versions.modules)" \
 && find node_modules/uWebSockets.js/dist/bin -name 'uws_*.node' ! -name "uws_linux_${arch}_${abi}.node" -delete \
 && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 -type d ! -path "*/linux/${arch}" -exec rm -rf {} +
COPY --from=build /app/dist ./dist
COPY --from=build --chown=1000:1000 /app/logs ./logs
COPY config ./config
COPY models ./models
# The FlatBuffers schema, served at /schemas/prediction.fbs and inside /asyncapi.json.
COPY schemas ./schemas

# The base image's unprivileged `node` user, by number so that Kubernetes' runAsNonRoot can verify
# it. Everything above is owned by root: the service can read its code, config and models, and
# write only logs/.
USER 1000:1000
# MODEL_PATH: the shipped default model, in /app/models where the old service kept its model
# (xgboost_phase1_v1 is there too, for comparison); mount a models folder read-only over
# /app/models to serve another version (docker-compose.yml does).
ENV HOST=0.0.0.0 \
    PORT=8000 \
    MODEL_PATH=/app/models/xgboost_phase1_v2_calibrated.onnx
EXPOSE 8000

# Readiness, not liveness: healthy once the model is loaded and warm, unhealthy while draining.
# node:*-slim has no curl, so Node's own fetch does the request. start-period covers the model
# load and the per-worker warm-up.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/health/ready',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Exec form: node is PID 1 and receives SIGTERM itself. src/cli/serve.ts installs SIGTERM and
# SIGINT handlers (a PID 1 without handlers would ignore them), drains in-flight requests for up
# to shutdown_timeout_ms and exits 0. Inference runs in worker threads, not child processes, so
# there are no zombies to reap: no tini / --init needed (harmless if you add one).
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/cli/serve.js"]
