#!/bin/bash
# bench/network/run.sh - what a bridge network adds to `run --rm ... true`, isula against
# podman, in one run on this machine.
#
#   bench/network/run.sh [-n ROUNDS]
#
# Builds the engine, makes a busybox rootfs, starts a private isulad (own --graph, --state,
# socket and cni-conf-dir under a temp dir) and a private podman (own --root, --runroot,
# --network-config-dir, cgroupfs, file events), makes one network on each (the same CNI chain:
# bridge, host-local, portmap, firewall, dnsname; podman adds tuning), then times per round, in
# turn: isula --net none, isula --net NET, podman --net none, podman --net NET (runc for both,
# the same rootfs: isula --external-rootfs, podman --rootfs). It prints the medians and the
# median of the per-round differences (net - none) as a markdown row. Everything it made is
# removed at the end. Needs root.
set -euo pipefail

N=20
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift ;;
	*) echo "usage: $0 [-n ROUNDS]" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
command -v podman >/dev/null || { echo "podman not installed (apt-get install podman)" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d /tmp/isulad-netbench-XXXXXX)
chmod 755 "$T"
daemon_pid=
INET=nbi$$
PNET=nbp$$
I="$T/bin/isula -H unix://$T/isulad.sock"
P="podman --root $T/podman/root --runroot $T/podman/run --network-config-dir $T/podman/cni --tmpdir $T/podman/tmp --cgroup-manager cgroupfs --events-backend file"

cleanup() {
	set +e
	if [ -n "$daemon_pid" ]; then
		for id in $($I ps -aq); do $I rm -f "$id" >/dev/null; done
		$I network rm "$INET" >/dev/null 2>&1
		kill "$daemon_pid"
		wait "$daemon_pid" 2>/dev/null
	fi
	$P rm -af >/dev/null 2>&1
	$P network rm -f "$PNET" >/dev/null 2>&1
	# podman's bridge stays after its network is removed (CNI's bridge plugin never deletes it).
	# ... and neither does dnsname's rule for its dnsmasq.
	if [ -n "${pbridge:-}" ]; then
		ip link delete "$pbridge" 2>/dev/null
		while iptables -w 5 -D INPUT -i "$pbridge" -p udp -m udp --dport 53 -j ACCEPT 2>/dev/null; do :; done
	fi
	mountpoint -q "$T/podman/root/overlay" && umount "$T/podman/root/overlay"
	rm -rf "$T"
}
trap cleanup EXIT

# Two /24s no host route overlaps (the daemon checks its own too).
free_subnet() {
	local n
	for n in $(seq "$1" 199); do
		if ! ip -4 route show table all | grep -q "^10\.231\.$n\."; then
			echo "10.231.$n.0/24"
			return
		fi
	done
	echo "no free 10.231.x.0/24" >&2
	exit 1
}

echo "building into $T/bin" >&2
(cd "$repo" && CGO_ENABLED=0 go build -o "$T/bin/" ./cmd/isula-full ./cmd/isulad ./cmd/isulad-shim)
"$repo/scripts/build-front.sh" "$T/bin/isula"
"$repo/scripts/build-shim-lite.sh" "$T/bin/isulad-shim-lite"
"$repo/scripts/mkrootfs.sh" busybox "$T/rootfs" >/dev/null
mkdir -p "$T/cni" "$T/podman/cni" "$T/podman/tmp"
echo "{\"cni-conf-dir\": \"$T/cni\"}" >"$T/daemon.json"
"$T/bin/isulad" --graph "$T/graph" --state "$T/state" -H "unix://$T/isulad.sock" \
	--config-file "$T/daemon.json" >"$T/isulad.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do $I version >/dev/null 2>&1 && break; sleep 0.1; done

s1=$(free_subnet 100)
$I network create --subnet "$s1" "$INET" >/dev/null
s2=$(free_subnet $(( $(echo "$s1" | cut -d. -f3) + 1 )))
$P network create --subnet "$s2" "$PNET" >/dev/null
pbridge=$($P network inspect "$PNET" --format '{{.NetworkInterface}}' 2>/dev/null || true)

run_isula() { $I run --rm --net "$1" --external-rootfs "$T/rootfs" none true >/dev/null; }
run_podman() {
	# --ulimit: podman's default nofile and nproc are above this machine's hard limits.
	$P run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --net "$1" --rootfs "$T/rootfs" true >/dev/null
}
ms() { echo $(( ($(date +%s%N) - $1) / 1000 )); } # microseconds since $1 (ns)

# Warm up each (first runs load caches, start dnsmasq...).
for _ in 1 2 3; do run_isula none; run_isula "$INET"; run_podman none; run_podman "$PNET"; done

: >"$T/samples"
for r in $(seq "$N"); do
	t=$(date +%s%N); run_isula none; a=$(ms "$t")
	t=$(date +%s%N); run_isula "$INET"; b=$(ms "$t")
	t=$(date +%s%N); run_podman none; c=$(ms "$t")
	t=$(date +%s%N); run_podman "$PNET"; d=$(ms "$t")
	echo "$a $b $c $d" >>"$T/samples"
done

median() { sort -n | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
col() { awk "{print \$$1}" "$T/samples" | median; }
diffcol() { awk "{print \$$1 - \$$2}" "$T/samples" | median; }
f() { awk "BEGIN {printf \"%.1f\", $1/1000}"; }

inone=$(col 1) inet=$(col 2) pnone=$(col 3) pnet=$(col 4)
iadd=$(diffcol 2 1) padd=$(diffcol 4 3)
echo
echo "rounds: $N (medians, ms; added: median of per-round net - none)"
echo
echo "| contender | --net none | --net NAME | networking adds |"
echo "|---|---:|---:|---:|"
echo "| isula (runc) | $(f "$inone") | $(f "$inet") | **$(f "$iadd")** |"
echo "| podman 4.3 CNI (runc) | $(f "$pnone") | $(f "$pnet") | **$(f "$padd")** |"
