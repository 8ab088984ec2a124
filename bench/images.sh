#!/bin/bash
# bench/images.sh - image pull + unpack against peers, and run from an image against run from
# a directory, in one run, on this machine.
#
#   bench/images.sh [-n ROUNDS] [--keep]
#
# Makes the debian systemd rootfs into a three-layer gzip image (scripts/mkimage-debian.sh),
# pushes it to a private docker-registry on 127.0.0.1, then, cold each time (the image and
# its layers removed between rounds), interleaved round-robin:
#   isula pull                     (this engine: download, gunzip, unpack in one stream)
#   podman pull                    (private --root/--runroot, removed between rounds)
#   skopeo copy to dir: + unpack   (tar -xzf of each layer into one directory)
#   ctr image pull                 (containerd, only if Debian's containerd is installed)
# and `isula run --rm IMAGE true` against `isula run --rm --external-rootfs DIR none true`.
# Prints markdown tables (medians, and ratios to the fastest peer). Needs root.
set -euo pipefail
N=5
KEEP=0
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) sed -n '2,16p' "$0"; exit 0 ;;
	*) echo "bench/images.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "bench/images.sh: needs root" >&2; exit 1; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
W=$(mktemp -d /tmp/isulad-bench-img.XXXXXX)
B=$W/bin
SOCK=$W/isulad.sock
I="$B/isula -H unix://$SOCK"
DPID= RPID= CPID=
log() { echo "bench: $*" >&2; }
cleanup() {
	set +e
	if [ -n "$DPID" ]; then
		$I ps -aq --no-trunc 2>/dev/null | xargs -r $I rm -f >/dev/null 2>&1
		kill "$DPID"; wait "$DPID" 2>/dev/null
	fi
	[ -n "$RPID" ] && kill "$RPID" && wait "$RPID" 2>/dev/null
	[ -n "$CPID" ] && kill "$CPID" && wait "$CPID" 2>/dev/null
	podman --root "$W/podman/root" --runroot "$W/podman/run" rmi -af >/dev/null 2>&1
	grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	[ $KEEP = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

log "building"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$B/" ./cmd/isula ./cmd/isulad ./cmd/isulad-shim)
log "making the image (debian systemd rootfs, three gzip layers)"
"$REPO/scripts/mkrootfs.sh" debian "$W/debian" >/dev/null
"$REPO/scripts/mkimage-debian.sh" "$W/debian.tar" --rootfs "$W/debian" >/dev/null
SIZE=$(du -sb "$W/debian" | cut -f1)
"$REPO/scripts/mkrootfs.sh" busybox "$W/busybox" >/dev/null

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat >"$W/registry.yml" <<EOC
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $W/registry}}
http: {addr: $REG}
EOC
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
RPID=$!
until curl -fs "http://$REG/v2/" >/dev/null 2>&1; do sleep 0.1; done
REF=$REG/bench/debian:12
skopeo --insecure-policy copy --dest-tls-verify=false "oci-archive:$W/debian.tar:docker.io/isulad/debian-systemd:12" "docker://$REF" >/dev/null
BB=$REG/bench/busybox:1
(cd "$W/busybox" && tar -cf "$W/bb.tar" .)

echo '{}' >"$W/daemon.json"
"$B/isulad" --graph "$W/graph" --state "$W/state" -H "unix://$SOCK" --config-file "$W/daemon.json" --log-level warn >"$W/isulad.log" 2>&1 &
DPID=$!
until $I version >/dev/null 2>&1; do sleep 0.1; done
$I import "$W/bb.tar" "$BB" >/dev/null

HAVE_CTR=0
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
	HAVE_CTR=1
	mkdir -p "$W/ctr"
	cat >"$W/ctr/config.toml" <<EOC
version = 2
root = "$W/ctr/root"
state = "$W/ctr/state"
[grpc]
  address = "$W/ctr/ctr.sock"
EOC
	containerd --config "$W/ctr/config.toml" >"$W/ctr/log" 2>&1 &
	CPID=$!
	until ctr -a "$W/ctr/ctr.sock" version >/dev/null 2>&1; do sleep 0.1; done
fi

P="podman --root $W/podman/root --runroot $W/podman/run --storage-driver overlay"
declare -A T
add() { T[$1]="${T[$1]:-} $2"; }
log "pull + unpack, cold, $N rounds"
for r in $(seq "$N"); do
	sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
	t0=$(now); $I pull -q "$REF" >/dev/null; t1=$(now); add isula "$(echo "$t1 - $t0" | bc)"
	$I rmi "$REF" >/dev/null
	t0=$(now); $P pull -q --tls-verify=false "$REF" >/dev/null; t1=$(now); add podman "$(echo "$t1 - $t0" | bc)"
	$P rmi -af >/dev/null
	rm -rf "$W/sk" "$W/skx"; mkdir -p "$W/skx"
	t0=$(now)
	skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REF" "dir:$W/sk" >/dev/null
	for l in $(jq -r '.layers[].digest' "$W/sk/manifest.json"); do tar -C "$W/skx" -xzf "$W/sk/${l#sha256:}"; done
	t1=$(now); add skopeo "$(echo "$t1 - $t0" | bc)"
	rm -rf "$W/sk" "$W/skx"
	if [ $HAVE_CTR = 1 ]; then
		t0=$(now); ctr -a "$W/ctr/ctr.sock" image pull --plain-http "$REF" >/dev/null; t1=$(now); add ctr "$(echo "$t1 - $t0" | bc)"
		ctr -a "$W/ctr/ctr.sock" image rm "$REF" >/dev/null; ctr -a "$W/ctr/ctr.sock" content prune references >/dev/null 2>&1 || true
	fi
done

log "run --rm true, $N x 10 rounds"
for r in $(seq $((N * 10))); do
	t0=$(now); $I run --rm "$BB" /bin/true; t1=$(now); add run-image "$(echo "$t1 - $t0" | bc)"
	t0=$(now); $I run --rm --external-rootfs "$W/busybox" none /bin/true; t1=$(now); add run-dir "$(echo "$t1 - $t0" | bc)"
done

med() { echo "${T[$1]}" | tr ' ' '\n' | grep . | median; }
echo
echo "Pull + unpack of a $((SIZE / 1000000)) MB three-layer image (gzip) from a local registry, cold, median of $N (interleaved):"
echo
echo "| contender | seconds | MB/s (unpacked) |"
echo "|---|---|---|"
for k in isula podman skopeo ctr; do
	[ -n "${T[$k]:-}" ] || continue
	m=$(med $k)
	printf '| %s | %.2f | %.0f |\n' "$k" "$m" "$(echo "$SIZE / 1000000 / $m" | bc -l)"
done
[ $HAVE_CTR = 1 ] || echo "| ctr | not measured: Debian's containerd is not installed | |"
echo
echo "run --rm true, median of $((N * 10)) (interleaved):"
echo
echo "| how | ms |"
echo "|---|---|"
ri=$(med run-image) rd=$(med run-dir)
printf '| from an image (overlay mount) | %.1f |\n| --external-rootfs DIR none | %.1f |\n| ratio | %.3f |\n' "$(echo "$ri * 1000" | bc)" "$(echo "$rd * 1000" | bc)" "$(echo "$ri / $rd" | bc -l)"
