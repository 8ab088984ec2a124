#!/bin/bash
# tools.sh - print the path of a cached test tool, building it first when it is missing.
#
#   scripts/tools.sh crictl|critest|kubelet|kube-apiserver|kubectl
#
# crictl and critest are the tools Kubernetes itself uses to check a CRI runtime, from
# sigs.k8s.io/cri-tools (not packaged in Debian); kubelet, kube-apiserver and kubectl are the
# Kubernetes node agent and control plane that `make e2e-kube` runs against this engine. All are
# built from the Go module proxy into
#   ${ISULAD_TOOLS_CACHE:-/var/cache/isulad-tools}/cri-tools-<version>/{crictl,critest}
#   ${ISULAD_TOOLS_CACHE:-/var/cache/isulad-tools}/kubernetes-<version>/{kubelet,kube-apiserver,kubectl}
# keyed by version, so a clone never holds them and a new clone or CI run reuses them.
# The build runs in a scratch module outside the clone with its own module cache under the tools
# cache (nothing is written into the clone or the user's GOPATH). critest is a Ginkgo test binary
# (`go test -c`), crictl a plain `go build`. Concurrent runs are serialised by flock; a binary is
# renamed into place only once built, so a half-built one is never found.
#
# Kubernetes is not meant to be a dependency: k8s.io/kubernetes requires its staging modules
# (k8s.io/api, k8s.io/client-go, ... 31 of them at v1.37) at v0.0.0 and replaces them with
# ./staging/... in its own tree, which a module that requires it does not see. The scratch module
# therefore requires k8s.io/kubernetes at $KUBERNETES_VERSION and replaces each staging module
# its go.mod requires at v0.0.0 with the published v0.<minor>.<patch> tag, then `go mod tidy`
# and one `go build` of the three commands (~12 minutes cold on 2 cores, 2.6 GB peak memory;
# GOFLAGS=-p=N limits the parallelism). sample-cli-plugin and sample-controller are not required
# by k8s.io/kubernetes (and not served by the proxy), so they are not replaced.
#
# The last line printed is the binary's path; build output goes to stderr.
set -euo pipefail

CRI_TOOLS_VERSION=v1.37.0
KUBERNETES_VERSION=v1.37.2
prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }

tool=${1:-}
case $tool in
crictl|critest) version=$CRI_TOOLS_VERSION dir=cri-tools-$CRI_TOOLS_VERSION ;;
kubelet|kube-apiserver|kubectl) version=$KUBERNETES_VERSION dir=kubernetes-$KUBERNETES_VERSION ;;
*) die "usage: $prog crictl|critest|kubelet|kube-apiserver|kubectl (got \"${tool}\")" ;;
esac

cache=${ISULAD_TOOLS_CACHE:-${TOOLS_CACHE:-/var/cache/isulad-tools}}
dir=$cache/$dir
bin=$dir/$tool
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

command -v go >/dev/null || die "go is not on PATH (needed to build $tool $version)"
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

work=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
export GOMODCACHE=$cache/gomodcache GOFLAGS="-modcacherw ${GOFLAGS:-}" GOWORK=off GO111MODULE=on
cd "$work"
case $tool in
crictl|critest)
	go mod init isulad-tools/cri-tools >&2
	# -t also fetches critest's test dependencies (ginkgo, gomega); both binaries come from one
	# module graph at this version.
	go get -t "sigs.k8s.io/cri-tools/cmd/critest@$CRI_TOOLS_VERSION" >&2
	go get "sigs.k8s.io/cri-tools/cmd/crictl@$CRI_TOOLS_VERSION" >&2
	case $tool in
	critest) go test -c -o "$work/$tool" sigs.k8s.io/cri-tools/cmd/critest >&2 ;;
	crictl) go build -o "$work/$tool" sigs.k8s.io/cri-tools/cmd/crictl >&2 ;;
	esac
	mv -f "$work/$tool" "$bin"
	;;
*)
	go mod init isulad-tools/kubernetes >&2
	# The staging modules, read from k8s.io/kubernetes's own go.mod: those it requires at v0.0.0.
	kmod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
		sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	[ -f "$kmod" ] || die "no go.mod for k8s.io/kubernetes@$KUBERNETES_VERSION from the module proxy"
	staging=$(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$kmod" | sort -u)
	n=$(echo "$staging" | wc -l)
	[ "$n" -ge 20 ] || die "found only $n staging modules at v0.0.0 in $kmod (want 31 at v1.37)"
	echo "$prog: k8s.io/kubernetes@$KUBERNETES_VERSION requires $n staging modules at v0.0.0" >&2
	go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
	for m in $staging; do
		go mod edit -replace="$m=$m@v0.${KUBERNETES_VERSION#v1.}"
	done
	# go mod tidy keeps what the module's packages import; this file is that import list.
	cat >tools.go <<'EOF'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
EOF
	go mod tidy >&2
	# One build for the three: they share most of their packages.
	mkdir out
	go build -o out/ k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kubectl >&2
	for b in kubelet kube-apiserver kubectl; do
		mv -f "out/$b" "$dir/$b"
	done
	;;
esac
echo "$bin"
