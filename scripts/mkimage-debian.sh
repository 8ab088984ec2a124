#!/bin/bash
# mkimage-debian.sh - make a multi-layer system-container image of the debian systemd rootfs.
#
#   scripts/mkimage-debian.sh OUT.tar [--rootfs DIR] [--name NAME] [--no-compress]
#
# The rootfs (scripts/mkrootfs.sh debian, or --rootfs DIR) is split into three layers, so
# that images built on it share what does not change:
#   1. /usr                   (the bulk: programs and libraries)
#   2. everything else but /etc and /var (the merged-/usr symlinks, /root, ...)
#   3. /etc and /var          (configuration: what a derived image changes)
# and written as an OCI image archive (oci-layout, index.json, blobs/sha256/...) whose
# config runs /sbin/init with SIGRTMIN+3 as its stop signal. Load it with
#   isula load -i OUT.tar            (named NAME, default isulad/debian-systemd:12)
# and run it with
#   isula run -d --system-container NAME /sbin/init
# Layers are gzip'd unless --no-compress (faster to make, bigger). Needs root, tar, jq,
# sha256sum, gzip.
set -euo pipefail
prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }

out="" rootfs="" name="docker.io/isulad/debian-systemd:12" compress=1
while [ $# -gt 0 ]; do
	case "$1" in
	--rootfs) rootfs=$2; shift 2 ;;
	--name) name=$2; shift 2 ;;
	--no-compress) compress=0; shift ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	-*) die "unknown option $1" ;;
	*) [ -z "$out" ] || die "one OUT.tar only"; out=$1; shift ;;
	esac
done
[ -n "$out" ] || die "usage: $prog OUT.tar [--rootfs DIR] [--name NAME] [--no-compress]"
for c in tar jq sha256sum gzip; do command -v $c >/dev/null || die "$c is needed"; done

work=$(mktemp -d "${TMPDIR:-/tmp}/mkimage-debian.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -z "$rootfs" ]; then
	rootfs=$work/rootfs
	"$(dirname "$0")/mkrootfs.sh" debian "$rootfs" >/dev/null
fi
[ -x "$rootfs/lib/systemd/systemd" ] || [ -x "$rootfs/usr/lib/systemd/systemd" ] || die "$rootfs has no systemd"

lay=$work/layout
mkdir -p "$lay/blobs/sha256"
blob() { # FILE -> prints its digest, moves it into the layout
	local d; d=$(sha256sum "$1" | cut -d' ' -f1)
	mv "$1" "$lay/blobs/sha256/$d"
	echo "sha256:$d"
}

others=$(cd "$rootfs" && ls -A | grep -vxE 'usr|etc|var|\.isulad-rootfs' || true)
layers=() diffids=() sizes=()
i=0
for set in "usr" "$others" "etc var"; do
	i=$((i + 1))
	raw=$work/layer$i.tar
	# shellcheck disable=SC2086 # a list of top-level names
	tar -C "$rootfs" --numeric-owner --xattrs --xattrs-include='*' -cf "$raw" $set
	diffids+=("sha256:$(sha256sum "$raw" | cut -d' ' -f1)")
	if [ $compress = 1 ]; then
		gzip -1 -n "$raw"
		raw=$raw.gz
	fi
	sizes+=("$(stat -c %s "$raw")")
	layers+=("$(blob "$raw")")
done
mt=application/vnd.oci.image.layer.v1.tar
[ $compress = 1 ] && mt=$mt+gzip

jq -n --argjson diffids "$(printf '%s\n' "${diffids[@]}" | jq -R . | jq -s .)" \
	'{architecture: "amd64", os: "linux", created: (now | todate),
	  config: {Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "container=isulad"],
	           Cmd: ["/sbin/init"], StopSignal: "SIGRTMIN+3",
	           Labels: {"org.isulad.system-container": "true"}},
	  rootfs: {type: "layers", diff_ids: $diffids},
	  history: [{created: (now | todate), comment: "scripts/mkimage-debian.sh"}]}' >"$work/config.json"
csize=$(stat -c %s "$work/config.json")
cdigest=$(blob "$work/config.json")

ldescs=$(for k in "${!layers[@]}"; do
	jq -n --arg mt "$mt" --arg d "${layers[$k]}" --argjson s "${sizes[$k]}" '{mediaType: $mt, digest: $d, size: $s}'
done | jq -s .)
jq -n --arg cd "$cdigest" --argjson cs "$csize" --argjson layers "$ldescs" \
	'{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
	  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
	  layers: $layers}' >"$work/manifest.json"
msize=$(stat -c %s "$work/manifest.json")
mdigest=$(blob "$work/manifest.json")

jq -n --arg d "$mdigest" --argjson s "$msize" --arg name "$name" \
	'{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
	  annotations: {"io.containerd.image.name": $name, "org.opencontainers.image.ref.name": $name}}]}' >"$lay/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"

tar -C "$lay" -cf "$out.part" oci-layout index.json blobs
mv "$out.part" "$out"
echo "$out"
