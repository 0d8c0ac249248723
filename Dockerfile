# action-router: one image for every role. The command is the role:
#   start (the router, with the run store, runs API and console),
#   api (runs API and console replicas), agent (an org's agent).
#
#   docker build -t action-router .
#   docker run --read-only --tmpfs /tmp -v ar-data:/data \
#     -e KAFKA_BROKERS=kafka:9092 action-router start
#
# BASE_IMAGE is any Debian-based Node.js 24 image with npm (the build
# stage also installs a compiler into it; the runtime stage does not).
# Behind a TLS-inspecting proxy, give its CA to the build as a secret:
#   --secret id=build_ca,src=/path/to/ca.pem
ARG BASE_IMAGE=docker.io/library/node:24-bookworm-slim

FROM ${BASE_IMAGE} AS build
# Native modules: Port's jq binding builds jq and oniguruma with the
# autotools; better-sqlite3 ships a prebuilt binary for Node 24.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 make g++ autoconf automake libtool ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
COPY scripts/node-gyp-cxx20 scripts/node-gyp-cxx20
RUN --mount=type=secret,id=build_ca,required=false \
    if [ -s /run/secrets/build_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/build_ca npm_config_cafile=/run/secrets/build_ca; fi \
 && npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf node_modules/@port-labs/jq-node-bindings/deps node_modules/@port-labs/jq-node-bindings/build/deps/src \
 && find node_modules -name '*.o' -delete

FROM ${BASE_IMAGE} AS runtime
# The heap follows the container's memory limit: V8's old space gets this
# share of it (Node reads the cgroup limit), leaving room for the store's
# threads, SQLite's cache and buffers. V8 sizes the young generation from
# the old space's limit, and at 256 MiB it is small enough that collections
# run several times as often as without a limit: 16 MiB semi-spaces keep
# routing under the 512Mi limit closer to routing without it (docs/helm.md,
# "Memory and the heap"). Override NODE_OPTIONS to size them.
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-old-space-size-percentage=50 --max-semi-space-size=16" \
    DATA_DIR=/data \
    HTTP_PORT=8080
WORKDIR /app
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist dist
COPY package.json ./
COPY bin bin
COPY console console
COPY schemas schemas
# The only places written: the data directory and /tmp.
RUN mkdir -p /data && chown 10001:10001 /data && chmod 0750 /data \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn* /usr/local/bin/yarn /usr/local/bin/yarnpkg
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node is PID 1 and receives SIGTERM itself (no shell, no npm in between).
ENTRYPOINT ["node", "/app/bin/action-router.js"]
CMD ["start"]
