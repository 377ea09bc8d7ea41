# syntax=docker/dockerfile:1
# Multi-stage build of the identity service on Node 24 LTS (the one Node version: this file,
# .nvmrc and CI; package.json's engines also admit 20.19+, which the code keeps working on).
# Build: docker build -t grpc-identity .
# Run:   docker run -e DATABASE_URL=postgres://... -e KEY_ENCRYPTION_KEY=... -e SERVICE_KEYS=... \
#          -e TOKEN_ISSUER=https://id.example.com -e PUBLIC_URL=https://id.example.com \
#          -p 50051:50051 -p 8080:8080 grpc-identity
# Secrets may come from files instead (Docker and Kubernetes secrets): KEY_ENCRYPTION_KEY_FILE,
# SERVICE_KEYS_FILE, DATABASE_URL_FILE, ... (README, Operations).
# Metrics: GET /metrics on METRICS_PORT (9464), bound to loopback unless METRICS_HOST says otherwise
# (e.g. METRICS_HOST=0.0.0.0 for a scraper on the container network; do not publish that port).

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# argon2 ships prebuilt binaries (linux x64/arm64, glibc): no compiler is needed to install it.
# Should a platform lack one, install python3 make g++ in this stage; the runtime stage never
# holds a toolchain.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.client.json ./
COPY src ./src
COPY gen ./gen
# The service, the browser app and the client library (grpc-identity/client, with its .d.ts).
RUN npm run build
# Production dependencies only for the runtime image (no embedded PostgreSQL, no browser
# client: they are development dependencies).
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim AS runtime
# tini as PID 1 (what `docker run --init` would add): it forwards SIGTERM to node and reaps the
# hashing child process should node die first.
RUN apt-get update && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
# MALLOC_ARENA_MAX: for the service process, whose threads would otherwise each keep a glibc
# arena. The hashing process (HASH_ISOLATION=process) is started without it: there glibc keeps
# argon2's 19 MiB block per hashing thread mapped, which saves each hash about a quarter of its
# CPU in page faults (see BENCHMARKS.md).
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=2 \
    GRPC_PORT=50051 \
    HTTP_PORT=8080 \
    METRICS_PORT=9464 \
    DATA_DIR=/app/.data
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER node
EXPOSE 50051 8080
# Liveness (/healthz), never readiness: a container marked unhealthy gets restarted or ejected,
# and a replica whose database is away still answers VerifyToken from memory (README, Health).
# With TLS_CERT_FILE the gateway speaks HTTPS: the probe follows (on loopback, so it does not
# verify the certificate, which names the public host).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const tls=!!process.env.TLS_CERT_FILE;require(tls?'https':'http').get({host:'127.0.0.1',port:process.env.HTTP_PORT||8080,path:'/healthz',rejectUnauthorized:false,timeout:2500},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
# The same build `npm start` runs; node drains and exits on the SIGTERM tini forwards.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--enable-source-maps", "dist/src/main.js"]
