#!/bin/bash
# tools.sh - print the path of a cached test tool, building it first when it is missing.
#
#   scripts/tools.sh crictl|critest
#
# The tools are the ones Kubernetes itself uses to check a CRI runtime, from sigs.k8s.io/cri-tools
# (not packaged in Debian), built from the Go module proxy into
#   ${ISULAD_TOOLS_CACHE:-/var/cache/isulad-tools}/cri-tools-<version>/{crictl,critest}
# keyed by version, so a clone never holds them and a new clone or CI run reuses them.
# The build runs in a scratch module outside the clone with its own module cache under the tools
# cache (nothing is written into the clone or the user's GOPATH). critest is a Ginkgo test binary
# (`go test -c`), crictl a plain `go build`. Concurrent runs are serialised by flock; a binary is
# renamed into place only once built, so a half-built one is never found.
#
# The last line printed is the binary's path; build output goes to stderr.
set -euo pipefail

CRI_TOOLS_VERSION=v1.37.0
prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }

tool=${1:-}
case $tool in
crictl|critest) ;;
*) die "usage: $prog crictl|critest (got \"${tool}\")" ;;
esac

cache=${ISULAD_TOOLS_CACHE:-${TOOLS_CACHE:-/var/cache/isulad-tools}}
dir=$cache/cri-tools-$CRI_TOOLS_VERSION
bin=$dir/$tool
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

command -v go >/dev/null || die "go is not on PATH (needed to build $tool $CRI_TOOLS_VERSION)"
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

work=$(mktemp -d "$dir/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
export GOMODCACHE=$cache/gomodcache GOFLAGS=-modcacherw GOWORK=off GO111MODULE=on
cd "$work"
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
echo "$bin"
