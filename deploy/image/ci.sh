#!/usr/bin/env bash
# CI step for the container image: builds the Dockerfile on a stand-in for
# the official Node.js 24 slim image (no registry image can be pulled on
# these machines; see standin-base.sh), then runs it against the local
# broker (deploy/image/test-image.mjs). Needs root. Prints the image size.
#
#   bash deploy/image/ci.sh        (from the repository's root, after npm run build)
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
command -v podman >/dev/null || need+=(podman)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v runc >/dev/null || need+=(runc)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
base=localhost/node-standin:24-bookworm-slim
image=localhost/action-router:ci
podman_cmd=(podman --runtime runc --cgroup-manager cgroupfs)

bash deploy/image/standin-base.sh "$base"

# Behind this machine's TLS-inspecting proxy npm needs its CA: handed to the
# build as a secret (never stored in a layer).
ca=${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}
secret=()
[ -s "$ca" ] && secret=(--secret "id=build_ca,src=$ca")
echo "== image build (BASE_IMAGE=$base)"
started=$(date +%s)
"${podman_cmd[@]}" build --quiet --format docker --network host \
  --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
  --build-arg "BASE_IMAGE=$base" "${secret[@]}" -t "$image" . >/dev/null
size=$("${podman_cmd[@]}" image inspect --format '{{.Size}}' "$image")
echo "== image $image built in $(( $(date +%s) - started )) s: $(( size / 1000000 )) MB (base $(( $("${podman_cmd[@]}" image inspect --format '{{.Size}}' "$base") / 1000000 )) MB)"

echo "== image test"
node scripts/with-kafka.mjs node deploy/image/test-image.mjs "$image"
