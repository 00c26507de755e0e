#!/usr/bin/env bash
# One-command local Sortie on kind (needs docker, kind, kubectl and helm):
#   scripts/kind-setup.sh            create cluster "sortie", build and load the images,
#                                    install the chart, wait until Sortie is ready
#   scripts/kind-setup.sh teardown   delete the cluster
# Re-running the setup is safe: an existing cluster is reused, the release upgraded.
set -euo pipefail

CLUSTER=sortie
NAMESPACE=sortie
SORTIE_IMAGE=ghcr.io/rjsadow/sortie:latest
SIDECAR_IMAGE=ghcr.io/rjsadow/sortie-vnc-sidecar:latest
# The demo catalog's apps (xterm, xeyes, xclock) run from this image.
DEMO_IMAGE=sortie-demo-apps:latest

cd "$(dirname "$0")/.."

require() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "kind-setup: '$tool' is required but not on PATH" >&2; exit 1; }
  done
}

setup() {
  require docker kind kubectl helm

  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    echo "kind-setup: reusing existing cluster '$CLUSTER'"
  else
    kind create cluster --name "$CLUSTER" --config deploy/kind/kind-config.yaml
  fi

  docker build -t "$SORTIE_IMAGE" .
  docker build -t "$SIDECAR_IMAGE" docker/vnc-sidecar/
  kind load docker-image "$SORTIE_IMAGE" --name "$CLUSTER"
  kind load docker-image "$SIDECAR_IMAGE" --name "$CLUSTER"
  if [[ -f docker/demo-apps/Dockerfile ]]; then
    docker build -t "$DEMO_IMAGE" docker/demo-apps/
    kind load docker-image "$DEMO_IMAGE" --name "$CLUSTER"
  fi

  # pullPolicy=Never: the images exist only inside the kind node, loaded above.
  if helm status sortie --namespace "$NAMESPACE" >/dev/null 2>&1; then
    helm upgrade sortie charts/sortie --namespace "$NAMESPACE" --set image.pullPolicy=Never
    # Same tag, new image: restart so the node's freshly loaded image is used.
    kubectl --namespace "$NAMESPACE" rollout restart deployment/sortie
  else
    helm install sortie charts/sortie --namespace "$NAMESPACE" --create-namespace --set image.pullPolicy=Never
  fi
  kubectl --namespace "$NAMESPACE" rollout status deployment/sortie --timeout=300s

  cat <<MSG

Sortie is running. Reach it with:
  kubectl port-forward -n $NAMESPACE svc/sortie 8080:80
and open http://localhost:8080
MSG
}

teardown() {
  require kind
  kind delete cluster --name "$CLUSTER"
}

case "${1:-setup}" in
  setup | up) setup ;;
  teardown | down) teardown ;;
  *)
    echo "usage: $0 [setup|teardown]" >&2
    exit 2
    ;;
esac
