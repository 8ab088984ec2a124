#!/bin/bash
# critest-images.sh - build, offline, the stand-ins for the images critest v1.37.0 pulls, and
# push them to a registry.
#
#   scripts/critest-images.sh build            print the OCI layout's directory (built if missing)
#   scripts/critest-images.sh push HOST:PORT   build if missing, then push every image to the
#                                              registry at HOST:PORT (plain HTTP, loopback)
#   scripts/critest-images.sh list             the images of the layout: path:tag, type, digest
#
# The images (test/critest/mkimages says what each is) share a busybox base layer made from
# Debian's dynamically linked `busybox` package (fetched with `apt-get download`, never
# installed: it conflicts with busybox-static, which the other tests use) and the libraries it
# links, because busybox-static runs its applets inside the shell without looking at PATH, so
# a masked /bin/ls would still run (critest's MaskedPaths spec). The programs busybox does not
# have (an HTTP server for nginx and httpd, nonewprivs' setuid program, pause, pgrep and ipcs)
# are the small static Go programs of test/critest/standin.
#
# The layout is cached in ${ISULAD_TOOLS_CACHE:-/var/cache/isulad-tools}/critest-images-<hash>/,
# the hash of every input (the .deb, the libraries, the Go sources, the Go version), so a change
# to any of them builds anew and an unchanged tree reuses it. Concurrent runs are serialised by
# flock; the layout is renamed into place only once complete.
#
# The last line printed by build is the layout directory; progress goes to stderr.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }
log() { echo "$prog: $*" >&2; }

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${ISULAD_TOOLS_CACHE:-${TOOLS_CACHE:-/var/cache/isulad-tools}}
cmd=${1:-}
case $cmd in
build|list) [ $# -eq 1 ] || die "usage: $prog build|list|push HOST:PORT" ;;
push) [ $# -eq 2 ] || die "usage: $prog push HOST:PORT (got ${2:-nothing})" ;;
*) die "usage: $prog build|list|push HOST:PORT (got \"$cmd\")" ;;
esac
command -v go >/dev/null || die "go is not on PATH (needed to build the stand-in programs)"
export GOTOOLCHAIN=local CGO_ENABLED=0

mkdir -p "$cache"
exec 9>"$cache/.critest-images.lock"
flock 9

# Debian's busybox .deb, downloaded once into the cache.
debdir=$cache/critest-busybox-deb
mkdir -p "$debdir"
deb=$(ls "$debdir"/busybox_*.deb 2>/dev/null | head -n1 || true)
if [ -z "$deb" ]; then
	log "downloading Debian's busybox package (apt-get download busybox)"
	dl=$(mktemp -d "$debdir/dl.XXXXXX")
	(cd "$dl" && apt-get download busybox >&2) || { rm -rf "$dl"; die "apt-get download busybox failed (run apt-get update?)"; }
	mv "$dl"/busybox_*.deb "$debdir/" && rm -rf "$dl"
	deb=$(ls "$debdir"/busybox_*.deb | head -n1)
fi

work=$(mktemp -d /tmp/critest-images.XXXXXX)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work/deb"
busybox=$work/deb/bin/busybox
[ -x "$busybox" ] || die "$deb has no bin/busybox"
# The libraries it links, and the dynamic loader, at the paths the loader looks them up.
mapfile -t libs < <(ldd "$busybox" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
[ ${#libs[@]} -gt 0 ] || die "ldd found no libraries for $busybox"

hash=$( {
	sha256sum "$deb" "${libs[@]}" | awk '{print $1}'
	(cd "$root" && find test/critest -type f -name '*.go' | LC_ALL=C sort | xargs sha256sum)
	(cd "$root" && grep -E '^github.com/google/go-containerregistry ' go.sum)
	go env GOVERSION
} | sha256sum | cut -c1-16)
out=$cache/critest-images-$hash

if [ ! -f "$out/layout/index.json" ] || [ ! -x "$out/mkimages" ]; then
	log "building the stand-in images into $out"
	tmp=$(mktemp -d "$cache/critest-images-build.XXXXXX")
	for p in webserver nnp pause procps; do
		(cd "$root" && go build -trimpath -ldflags '-s -w' -o "$tmp/standins/$p" ./test/critest/standin/$p)
	done
	(cd "$root" && go build -trimpath -o "$tmp/mkimages" ./test/critest/mkimages)
	lib_args=()
	for l in "${libs[@]}"; do lib_args+=(-lib "$l"); done
	"$tmp/mkimages" build -busybox "$busybox" "${lib_args[@]}" -standins "$tmp/standins" -out "$tmp/layout"
	rm -rf "$tmp/standins" "$out"
	mv "$tmp" "$out"
	# Older layouts are of inputs that are gone.
	for old in "$cache"/critest-images-*; do
		case $old in "$out"|*critest-images-build.*) ;; *) [ -d "$old" ] && rm -rf "$old" ;; esac
	done
fi

case $cmd in
build) echo "$out/layout" ;;
list) "$out/mkimages" list -layout "$out/layout" ;;
push) "$out/mkimages" push -layout "$out/layout" -registry "$2" ;;
esac
