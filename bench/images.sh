#!/bin/bash
# bench/images.sh - image pull + unpack against peers, and run from an image against run from
# a directory, in one run, on this machine.
#
#   bench/images.sh [-n ROUNDS] [--keep]
#
# Makes the debian systemd rootfs into a three-layer gzip image (scripts/mkimage-debian.sh),
# pushes it to a private docker-registry on 127.0.0.1, then, cold each time (the image and
# its layers removed after each pull, and checked gone), each round every contender once,
# starting at another one each round, the page cache dropped before each pull:
#   isula pull                     (this engine: download, gunzip, unpack in one stream)
#   podman pull                    (private --root/--runroot/--tmpdir, removed between rounds)
#   skopeo copy to dir: + unpack   (tar -xzf of each layer into one directory)
#   ctr image pull                 (a private containerd, if Debian's containerd is installed:
#                                   content store + overlayfs snapshots, rm --sync between)
# and `isula run --rm IMAGE true` against `isula run --rm --external-rootfs DIR none true`.
# Prints markdown tables (medians of wall and CPU time, ratios to isula). Needs root.
set -euo pipefail
N=5
KEEP=0
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) sed -n '2,17p' "$0"; exit 0 ;;
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
	podman --root "$W/podman/root" --runroot "$W/podman/run" --tmpdir "$W/podman/tmp" --events-backend none --storage-driver overlay rmi -af >/dev/null 2>&1
	grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	[ $KEEP = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

log "building"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$B/" ./cmd/isula-full ./cmd/isulad ./cmd/isulad-shim)
"$REPO/scripts/build-front.sh" "$B/isula"
"$REPO/scripts/build-shim-lite.sh" "$B/isulad-shim-lite"
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
LAYERS0=$(ls -A "$W/graph/images/layers")

HAVE_CTR=0
C=
if command -v containerd >/dev/null && command -v ctr >/dev/null; then
	HAVE_CTR=1
	# A private containerd: its own root, state, sockets and temp dir; the CRI plugin (which
	# would look at /etc/cni and /opt/cni) is off, pulling needs only content, images and the
	# overlayfs snapshotter.
	mkdir -p "$W/ctr/tmp"
	cat >"$W/ctr/config.toml" <<EOC
version = 2
root = "$W/ctr/root"
state = "$W/ctr/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$W/ctr/ctr.sock"
[ttrpc]
  address = "$W/ctr/ctr.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$W/ctr/opt"
EOC
	TMPDIR=$W/ctr/tmp containerd --config "$W/ctr/config.toml" --log-level warn >"$W/ctr/log" 2>&1 &
	CPID=$!
	C="ctr -a $W/ctr/ctr.sock -n bench"
	until $C version >/dev/null 2>&1; do sleep 0.1; done
fi
# ctr_cold: containerd holds nothing of the image: no image record, no content blob, no
# snapshot (`image rm --sync` waits for the garbage collector to remove them).
ctr_cold() {
	$C image rm --sync "$REF" >/dev/null 2>&1 || true
	local left
	left=$($C content ls -q; $C snapshots ls | tail -n +2)
	[ -z "$left" ] || { echo "bench/images.sh: containerd still holds after image rm --sync: $left" >&2; exit 1; }
}

P="podman --root $W/podman/root --runroot $W/podman/run --tmpdir $W/podman/tmp --events-backend none --storage-driver overlay"
declare -A T
add() { T[$1]="${T[$1]:-} $2"; }
# One function per contender: the timed pull, then what makes the next round cold again.
# ticks [PID]: CPU time (user + system, in clock ticks) of this shell's waited-for children,
# plus that of the daemon PID: what a pull costs in CPU, whichever process does the work.
ticks() {
	local t
	t=$(awk '{print $16 + $17}' /proc/$$/stat)
	[ -z "${1:-}" ] || t=$((t + $(awk '{print $14 + $15}' "/proc/$1/stat")))
	echo "$t"
}
HZ=$(getconf CLK_TCK)
cpu() { add "$1-cpu" "$(printf %.2f "$(echo "($3 - $2) / $HZ" | bc -l)")"; }
pull_isula() {
	c0=$(ticks "$DPID")
	t0=$(now); $I pull -q "$REF" >/dev/null; t1=$(now); add isula "$(echo "$t1 - $t0" | bc)"
	cpu isula "$c0" "$(ticks "$DPID")"
	$I rmi "$REF" >/dev/null
	# Cold: none of its layers left (the busybox image's, made before, are all there is).
	[ "$(ls -A "$W/graph/images/layers")" = "$LAYERS0" ] || { echo "bench/images.sh: isula rmi left layers" >&2; exit 1; }
}
pull_podman() {
	c0=$(ticks)
	t0=$(now); $P pull -q --tls-verify=false "$REF" >/dev/null; t1=$(now); add podman "$(echo "$t1 - $t0" | bc)"
	cpu podman "$c0" "$(ticks)"
	$P rmi -af >/dev/null
	[ -z "$($P images -qa)" ] || { echo "bench/images.sh: podman rmi -af left images" >&2; exit 1; }
}
pull_skopeo() {
	rm -rf "$W/sk" "$W/skx"; mkdir -p "$W/skx"
	c0=$(ticks)
	t0=$(now)
	skopeo --insecure-policy copy -q --src-tls-verify=false "docker://$REF" "dir:$W/sk" >/dev/null
	for l in $(jq -r '.layers[].digest' "$W/sk/manifest.json"); do tar -C "$W/skx" -xzf "$W/sk/${l#sha256:}"; done
	t1=$(now); add skopeo "$(echo "$t1 - $t0" | bc)"
	cpu skopeo "$c0" "$(ticks)"
	rm -rf "$W/sk" "$W/skx"
}
pull_ctr() {
	# `ctr image pull` fetches every blob, then unpacks the layers into the overlayfs
	# snapshotter (1.6 unpacks by default); the check after it makes sure it did.
	c0=$(ticks "$CPID")
	t0=$(now); $C image pull --plain-http "$REF" >/dev/null; t1=$(now); add ctr "$(echo "$t1 - $t0" | bc)"
	cpu ctr "$c0" "$(ticks "$CPID")"
	[ "$($C snapshots ls | tail -n +2 | wc -l)" -ge 3 ] || { echo "bench/images.sh: ctr image pull did not unpack" >&2; exit 1; }
	ctr_cold
}
CONT=(isula podman skopeo)
[ $HAVE_CTR = 0 ] || CONT+=(ctr)
log "pull + unpack, cold, $N rounds of ${CONT[*]}"
for r in $(seq "$N"); do
	# Each round starts at another contender, so none always runs first or after the same one;
	# before each pull, dirty pages are written back and the page cache dropped, so every
	# contender reads the registry's blobs from disk.
	for j in $(seq 0 $((${#CONT[@]} - 1))); do
		k=${CONT[$(((r + j) % ${#CONT[@]}))]}
		sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
		"pull_$k"
	done
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
echo "| contender | seconds | MB/s (unpacked) | isula's time / its time | CPU seconds | isula's CPU / its CPU |"
echo "|---|---|---|---|---|---|"
mi=$(med isula) ci=$(med isula-cpu)
for k in isula podman skopeo ctr; do
	[ -n "${T[$k]:-}" ] || continue
	m=$(med $k) c=$(med $k-cpu)
	printf '| %s | %.2f | %.0f | %.2f | %.2f | %.2f |\n' "$k" "$m" "$(echo "$SIZE / 1000000 / $m" | bc -l)" "$(echo "$mi / $m" | bc -l)" "$c" "$(echo "$ci / $c" | bc -l)"
done
echo
echo "(CPU: user + system of the client and the daemon that pulls (isulad, containerd), or of"
echo "podman, skopeo and tar with its gzip; the registry's own is left out, the same for all.)"
echo
echo "all rounds (seconds):"
for k in isula podman skopeo ctr; do [ -z "${T[$k]:-}" ] || echo "  $k:${T[$k]}"; done
echo "CPU seconds:"
for k in isula podman skopeo ctr; do [ -z "${T[$k-cpu]:-}" ] || echo "  $k:${T[$k-cpu]}"; done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
[ $HAVE_CTR = 1 ] || echo "| ctr | not measured: Debian's containerd is not installed | |"
echo
echo "run --rm true, median of $((N * 10)) (interleaved):"
echo
echo "| how | ms |"
echo "|---|---|"
ri=$(med run-image) rd=$(med run-dir)
printf '| from an image (overlay mount) | %.1f |\n| --external-rootfs DIR none | %.1f |\n| ratio | %.3f |\n' "$(echo "$ri * 1000" | bc)" "$(echo "$rd * 1000" | bc)" "$(echo "$ri / $rd" | bc -l)"
