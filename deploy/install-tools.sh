#!/usr/bin/env bash
# Installs the tools deploy/check-chart.sh needs, from the package registries
# only (the Go module proxy and PyPI): helm and kube-score are compiled with
# `go install`, kubernetes-validate goes into a venv. Everything lands in a
# cache outside the repository and is skipped when the right version is
# already there, so a second run takes a second.
#
#   ACTION_ROUTER_TOOLS   where the tools go (default ~/.cache/action-router-tools)
#
# Prints the line to source: `export PATH=...` is done by check-chart.sh itself.
set -euo pipefail

HELM_VERSION=v3.22.0
KUBE_SCORE_VERSION=v1.20.0
KUBERNETES_VALIDATE_VERSION=1.37.0

TOOLS="${ACTION_ROUTER_TOOLS:-$HOME/.cache/action-router-tools}"
BIN="$TOOLS/bin"
VENV="$TOOLS/venv"
mkdir -p "$BIN"

say() { printf 'install-tools: %s\n' "$*"; }

need() {
  command -v "$1" >/dev/null 2>&1 || { say "$1 is needed ($2)"; exit 1; }
}

# A Go binary, built from the module proxy into $BIN under a versioned name,
# so that a version change rebuilds and an unchanged one is skipped.
go_tool() {
  local name=$1 module=$2 version=$3 ldflags=${4:-}
  local target="$BIN/$name-$version"
  if [[ -x "$target" ]]; then
    say "$name $version: already installed"
  else
    need go "Go 1.24 or later builds $name"
    say "$name $version: building from the Go module proxy ($module@$version)"
    local start=$SECONDS
    # CGO off: static binaries that do not depend on the machine's libc.
    GOBIN="$TOOLS/gobin-tmp" CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "$module@$version" 2> >(grep -v '^go: downloading' >&2)
    mv "$TOOLS/gobin-tmp/$name" "$target"
    rmdir "$TOOLS/gobin-tmp" 2>/dev/null || true
    say "$name $version: built in $((SECONDS - start)) s"
  fi
  ln -sfn "$name-$version" "$BIN/$name"
}

# What helm's own Makefile stamps in: its version, and the Kubernetes version
# of its client libraries (1.37 for helm 3.22, k8s.io/* v0.37), which
# `helm template` and `helm lint` take as the cluster's unless told otherwise.
HELM_K8S_MINOR=37
HELM_LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  HELM_LDFLAGS+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
done
go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$HELM_LDFLAGS"
go_tool kube-score github.com/zegl/kube-score/cmd/kube-score "$KUBE_SCORE_VERSION"

# kubernetes-validate carries the Kubernetes JSON schemas of many versions,
# so validation needs no network once it is installed.
if [[ -x "$VENV/bin/kubernetes-validate" ]] &&
  [[ "$("$VENV/bin/pip" show kubernetes-validate 2>/dev/null | sed -n 's/^Version: //p')" == "$KUBERNETES_VALIDATE_VERSION" ]]; then
  say "kubernetes-validate $KUBERNETES_VALIDATE_VERSION: already installed"
else
  need python3 "Python 3.9 or later runs kubernetes-validate"
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    say "python3 has no venv module: installing python3-venv from Debian"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  fi
  say "kubernetes-validate $KUBERNETES_VALIDATE_VERSION: installing from PyPI into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
ln -sfn ../venv/bin/kubernetes-validate "$BIN/kubernetes-validate"

say "tools in $BIN: helm $("$BIN/helm" version --template '{{.Version}}'), kube-score $KUBE_SCORE_VERSION, kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
