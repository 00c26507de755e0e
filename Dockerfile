# Sortie: API, web UI and WebSocket relay on port 8080.
#   docker build -t ghcr.io/rjsadow/sortie:latest .
# Without Docker: scripts/local-cluster.sh build-image sortie (buildah, same Dockerfile).

# --- build: compile the server and UI, then drop dev dependencies -------------------
FROM node:20-bookworm-slim AS build
# better-sqlite3 is a native addon; when no prebuilt binary matches it compiles from
# source with node-gyp, which needs python3, make and a C++ compiler.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so editing source does not invalidate the npm ci layer.
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build \
 && npm prune --omit=dev

# --- runtime: Node, the built app, production node_modules ---------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    SORTIE_PORT=8080 \
    SORTIE_HOST=0.0.0.0 \
    SORTIE_APPS_FILE=/app/examples/apps.json \
    SORTIE_DB_PATH=/var/lib/sortie/sortie.db
WORKDIR /app
# package.json carries "type": "module", which the compiled server needs.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/examples ./examples
# The database directory must be writable by the unprivileged user (the manifests mount
# a volume here; this keeps a plain `docker run` working too).
RUN mkdir -p /var/lib/sortie && chown 1000:1000 /var/lib/sortie
# UID 1000 ("node" in this base image), matching runAsUser in the manifests.
USER 1000
EXPOSE 8080
# Node 20 has fetch built in: no curl needed in the image.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server/main.js"]
