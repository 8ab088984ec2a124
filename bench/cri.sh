#!/bin/bash
# bench/cri.sh - CRI pod start latency and daemon memory against containerd's CRI plugin, in
# one run, on this machine.
#
#   bench/cri.sh [-n ROUNDS] [--sizes "1 10 100"] [--only isula|ctr] [--keep]
#
# Both engines serve crictl (scripts/tools.sh crictl) on private sockets, with the same CNI
# plugins (/usr/lib/cni: bridge + host-local, one bridge and private /24 each, no masquerade),
# the same busybox image (busybox-static, pushed to a private docker-registry on 127.0.0.1)
# pulled before timing. containerd (Debian's, 1.6) runs on a private config, root, state and
# sockets, inside a private mount namespace whose /run and /var/lib are its own tmpfs (so its
# shim sockets, runc state, netns mounts and CNI cache never touch the host's), with
# restrict_oom_score_adj and a static pause image built here (no network).
# For each size N, ROUNDS rounds, the engines alternating first: N pods in parallel, each
#   crictl runp POD && crictl create POD CTR && crictl start CTR   (sleep in busybox)
# timed from the first launch to the last start (and, as the clients' share of that, as many
# `crictl version` runs in parallel); after the largest size, each daemon's RSS
# and the PSS of everything the engine runs for the pods (daemon, shims, pause; not the
# workload) are read with the pods running; then crictl rmp -a -f and a check that nothing is
# left. Prints markdown tables (medians, ratio isula/containerd). Needs root.
set -euo pipefail
N=3
SIZES="1 10 100"
ONLY=
KEEP=0
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift ;;
	--sizes) SIZES=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--keep) KEEP=1 ;;
	-h | --help) sed -n '2,21p' "$0"; exit 0 ;;
	*) echo "bench/cri.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
case $ONLY in "" | isula | ctr) ;; *) echo "bench/cri.sh: --only isula or ctr, not $ONLY" >&2; exit 2 ;; esac
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "bench/cri.sh: -n $N: want a positive number of rounds" >&2; exit 2; }
for s in $SIZES; do [[ $s =~ ^[1-9][0-9]*$ && $s -le 250 ]] || { echo "bench/cri.sh: --sizes: $s is not a pod count from 1 to 250" >&2; exit 2; }; done
[ "$(id -u)" = 0 ] || { echo "bench/cri.sh: needs root" >&2; exit 1; }
REPO=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
for c in containerd containerd-shim-runc-v2 runc skopeo docker-registry jq gcc unshare bc; do
	command -v $c >/dev/null || { echo "bench/cri.sh: $c is needed" >&2; exit 1; }
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || { echo "bench/cri.sh: the CNI plugins are needed in /usr/lib/cni" >&2; exit 1; }
CRICTL=$("$REPO/scripts/tools.sh" crictl | tail -n1)

W=$(mktemp -d /tmp/isulad-bench-cri.XXXXXX)
TAG=$(basename "$W" | tr -dc 'a-zA-Z0-9' | tail -c 6)
B=$W/bin
ISOCK=$W/isulad.sock
CSOCK=$W/ctr/ctr.sock
CGP=isulad-bench-$TAG # the pods' cgroup parent (with -isula / -ctr), one per engine
BRI=ib${TAG}i BRC=ib${TAG}c
DPID= RPID= CPID= CMNT=
log() { echo "bench: $(date +%T) $*" >&2; }
die() { echo "bench/cri.sh: $*" >&2; exit 1; }
cleanup() {
	set +e
	trap - EXIT INT TERM
	[ -z "$DPID" ] || { ic rmp -a -f >/dev/null 2>&1; kill "$DPID"; wait "$DPID" 2>/dev/null; }
	if [ -n "$CPID" ]; then
		cc rmp -a -f >/dev/null 2>&1
		kill "$CPID"; wait "$CPID" 2>/dev/null
	fi
	# Whatever is still in containerd's mount namespace (shims, a pause) is ours: kill it by
	# pid, so the namespace and its mounts go away.
	if [ -n "$CMNT" ]; then
		for p in /proc/[0-9]*; do
			[ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$CMNT" ] && kill -9 "${p#/proc/}" 2>/dev/null
		done
	fi
	[ -n "$RPID" ] && kill "$RPID" && wait "$RPID" 2>/dev/null
	for b in "$BRI" "$BRC"; do ip link del "$b" 2>/dev/null; done
	for h in /sys/fs/cgroup/*/; do
		for e in isula ctr; do
			[ -d "$h$CGP-$e" ] && find "$h$CGP-$e" -depth -type d -exec rmdir {} + 2>/dev/null
		done
	done
	grep " $W" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	[ $KEEP = 1 ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
mkdir -p "$B" "$W/ctr/tmp" "$W/cni/isula" "$W/cni/ctr" "$W/logs"
echo >"$W/crictl.yaml"
ic() { "$CRICTL" --config "$W/crictl.yaml" -r "unix://$ISOCK" -i "unix://$ISOCK" --timeout 600s "$@"; }
cc() { "$CRICTL" --config "$W/crictl.yaml" -r "unix://$CSOCK" -i "unix://$CSOCK" --timeout 600s "$@"; }

log "building"
(cd "$REPO" && CGO_ENABLED=0 go build -o "$B/" ./cmd/isula-full ./cmd/isulad ./cmd/isulad-shim)
"$REPO/scripts/build-front.sh" "$B/isula"
"$REPO/scripts/build-shim-lite.sh" "$B/isulad-shim-lite"
# The pause process of containerd's sandboxes: a static C program as Kubernetes' own (sleep in
# pause(2), reap children, exit on INT/TERM), so its memory is a real pause's.
cat >"$W/pause.c" <<'EOC'
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, NULL, WNOHANG) > 0) ; }
int main(void) {
	struct sigaction a = {0};
	a.sa_handler = stop; sigaction(SIGINT, &a, NULL); sigaction(SIGTERM, &a, NULL);
	a.sa_handler = reap; a.sa_flags = SA_NOCLDSTOP; sigaction(SIGCHLD, &a, NULL);
	for (;;) pause();
}
EOC
mkdir -p "$W/pauseroot"
gcc -static -Os -s -o "$W/pauseroot/pause" "$W/pause.c"
"$REPO/scripts/mkrootfs.sh" busybox "$W/busybox" >/dev/null

# oci_layout ROOTFS LAYOUT CMD-JSON: a one-layer (gzip) OCI image layout of ROOTFS, tag "1".
oci_layout() {
	local root=$1 lay=$2 cmd=$3 l cfg man ld cd md
	mkdir -p "$lay/blobs/sha256"
	tar -C "$root" --numeric-owner -cf "$lay/layer.tar" .
	local diff; diff=$(sha256sum "$lay/layer.tar" | cut -d' ' -f1)
	gzip -n "$lay/layer.tar"
	ld=$(sha256sum "$lay/layer.tar.gz" | cut -d' ' -f1)
	mv "$lay/layer.tar.gz" "$lay/blobs/sha256/$ld"
	cfg=$(jq -cn --arg d "sha256:$diff" --argjson cmd "$cmd" \
		'{architecture:"amd64",os:"linux",config:{Env:["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],Cmd:$cmd},rootfs:{type:"layers",diff_ids:[$d]}}')
	printf %s "$cfg" >"$lay/cfg"
	cd=$(sha256sum "$lay/cfg" | cut -d' ' -f1)
	mv "$lay/cfg" "$lay/blobs/sha256/$cd"
	man=$(jq -cn --arg c "sha256:$cd" --argjson cs "$(stat -c %s "$lay/blobs/sha256/$cd")" --arg l "sha256:$ld" --argjson ls "$(stat -c %s "$lay/blobs/sha256/$ld")" \
		'{schemaVersion:2,mediaType:"application/vnd.oci.image.manifest.v1+json",config:{mediaType:"application/vnd.oci.image.config.v1+json",digest:$c,size:$cs},layers:[{mediaType:"application/vnd.oci.image.layer.v1.tar+gzip",digest:$l,size:$ls}]}')
	printf %s "$man" >"$lay/man"
	md=$(sha256sum "$lay/man" | cut -d' ' -f1)
	mv "$lay/man" "$lay/blobs/sha256/$md"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"
	jq -cn --arg m "sha256:$md" --argjson ms "$(stat -c %s "$lay/blobs/sha256/$md")" \
		'{schemaVersion:2,manifests:[{mediaType:"application/vnd.oci.image.manifest.v1+json",digest:$m,size:$ms,annotations:{"org.opencontainers.image.ref.name":"1"}}]}' >"$lay/index.json"
}

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
IMG=$REG/bench/busybox:1
PAUSE=$REG/bench/pause:1
oci_layout "$W/busybox" "$W/bb-oci" '["sh"]'
oci_layout "$W/pauseroot" "$W/pause-oci" '["/pause"]'
export REGISTRY_AUTH_FILE=$W/auth.json
echo '{}' >"$REGISTRY_AUTH_FILE"
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$W/bb-oci:1" "docker://$IMG"
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$W/pause-oci:1" "docker://$PAUSE"

# Two /24s no route here uses, one per engine, and their conflists (same plugins and shape).
pick_subnet() {
	local i n
	for i in $(seq 50); do
		n=10.$((RANDOM % 200 + 20)).$((RANDOM % 256))
		ip route | grep -q "^$n\." || ip route | grep -q "^${n%.*}\.0\.0/16" || { echo "$n"; return; }
	done
	die "no free 10.x.y.0/24 found"
}
SUBI=$(pick_subnet) SUBC=$(pick_subnet)
[ "$SUBI" != "$SUBC" ] || SUBC=$(pick_subnet)
conflist() { # DIR BRIDGE SUBNET-PREFIX
	cat >"$1/10-bench.conflist" <<EOC
{"cniVersion": "1.0.0", "name": "bench-$TAG", "plugins": [
  {"type": "bridge", "bridge": "$2", "isGateway": true, "ipMasq": false, "hairpinMode": false,
   "ipam": {"type": "host-local", "dataDir": "$1/ipam", "ranges": [[{"subnet": "$3.0/24"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}
]}
EOC
}
conflist "$W/cni/isula" "$BRI" "$SUBI"
conflist "$W/cni/ctr" "$BRC" "$SUBC"

# This engine. network-plugin cni and the conflist directory (an engine without pod CNI
# ignores them: its pods then have loopback only, which the run finds and reports).
start_isulad() {
	"$B/isulad" --graph "$W/graph" --state "$W/state" -H "unix://$ISOCK" --config-file "$W/daemon.json" --log-level warn >>"$W/isulad.log" 2>&1 &
	DPID=$!
	until "$B/isula" -H "unix://$ISOCK" version >/dev/null 2>&1; do
		kill -0 "$DPID" 2>/dev/null || die "isulad did not start: $(tail -3 "$W/isulad.log")"
		sleep 0.1
	done
}
cat >"$W/daemon.json" <<EOC
{"network-plugin": "cni", "cni-conf-dir": "$W/cni/isula", "cni-bin-dir": "/usr/lib/cni",
 "insecure-registries": ["$REG"]}
EOC
ISULA_IMAGES=pulled
if [ "$ONLY" != ctr ]; then
	start_isulad
	ic pull "$IMG" >"$W/isula-pull.log" 2>&1 || die "isulad: crictl pull $IMG: $(tail -1 "$W/isula-pull.log")"
	ic inspecti "$IMG" >/dev/null || die "isulad does not have $IMG"
fi

# containerd, in a mount namespace of its own (see the top).
if [ "$ONLY" != isula ]; then
	cat >"$W/ctr/config.toml" <<EOC
version = 2
root = "$W/ctr/root"
state = "$W/ctr/state"
oom_score = 0
[grpc]
  address = "$CSOCK"
[ttrpc]
  address = "$CSOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$W/ctr/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$W/ctr/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/cni/ctr"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$REG"]
    endpoint = ["http://$REG"]
EOC
	unshare --mount --propagation private -- sh -c '
		mount -t tmpfs -o mode=0755,size=256m bench-run /run &&
		mount -t tmpfs -o mode=0755,size=256m bench-varlib /var/lib &&
		exec env TMPDIR="$1" containerd --config "$2" --log-level warn' sh "$W/ctr/tmp" "$W/ctr/config.toml" >"$W/ctr/log" 2>&1 &
	CPID=$!
	until cc version >/dev/null 2>&1; do
		kill -0 "$CPID" 2>/dev/null || die "containerd did not start: $(tail -3 "$W/ctr/log")"
		sleep 0.1
	done
	CMNT=$(readlink "/proc/$CPID/ns/mnt")
	[ "$CMNT" != "$(readlink /proc/self/ns/mnt)" ] || die "containerd is not in a mount namespace of its own"
	cc pull "$IMG" >/dev/null
	cc pull "$PAUSE" >/dev/null
fi

# Pod and container configs: as the kubelet's defaults (PID namespace per container, pod
# network and IPC), a log directory, the cgroup parent of the engine.
mkcfg() { # ENGINE ROUND INDEX -> writes $W/cfg/ENGINE-ROUND-INDEX.{pod,ctr}.json
	local e=$1 r=$2 i=$3 n=p-$1-$2-$3
	mkdir -p "$W/cfg"
	jq -cn --arg n "$n" --arg ld "$W/logs/$n" --arg cg "/$CGP-$e" \
		'{metadata:{name:$n,namespace:"bench",uid:("uid-"+$n),attempt:0},hostname:$n,log_directory:$ld,
		  linux:{cgroup_parent:$cg,security_context:{namespace_options:{network:0,pid:1,ipc:0}}}}' >"$W/cfg/$n.pod.json"
	jq -cn --arg img "$IMG" \
		'{metadata:{name:"c"},image:{image:$img},command:["/bin/sleep","86400"],log_path:"c.log",linux:{}}' >"$W/cfg/$n.ctr.json"
}
# podstart CLIENT ENGINE ROUND INDEX: one pod and its container, started.
podstart() {
	local c=$1 n=p-$2-$3-$4 pod ctr
	pod=$($c runp "$W/cfg/$n.pod.json") || return 1
	ctr=$($c create "$pod" "$W/cfg/$n.ctr.json" "$W/cfg/$n.pod.json") || return 1
	$c start "$ctr" >/dev/null
}
declare -A T M
add() { T[$1]="${T[$1]:-} $2"; }
# batch ENGINE SIZE ROUND: SIZE pods in parallel, timed; checks they all run.
batch() {
	local e=$1 s=$2 r=$3 c i t0 t1 fail=0 pids=()
	c=$([ "$e" = isula ] && echo ic || echo cc)
	for i in $(seq "$s"); do mkcfg "$e" "$r" "$i"; done
	sync
	t0=$(now)
	for i in $(seq "$s"); do
		podstart $c "$e" "$r" "$i" >"$W/logs/start-$e-$r-$i.log" 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fail=$((fail + 1)); done
	t1=$(now)
	[ $fail = 0 ] || die "$e: $fail of $s pods did not start, e.g.: $(cat "$W"/logs/start-"$e"-"$r"-*.log | grep . | head -3)"
	local running
	running=$($c ps -q --state running | wc -l)
	[ "$running" = "$s" ] || die "$e: $running containers running after starting $s"
	add "$e-$s" "$(echo "$t1 - $t0" | bc)"
}
# floor ENGINE SIZE: the same number of crictl runs (three per pod) in parallel, each only
# `crictl version`: what starting the clients costs, the part of a batch no engine can save.
floor() {
	local e=$1 s=$2 c i t0 t1 pids=()
	c=$([ "$e" = isula ] && echo ic || echo cc)
	t0=$(now)
	for i in $(seq "$s"); do
		($c version && $c version && $c version) >/dev/null 2>&1 &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || die "$e: crictl version failed"; done
	t1=$(now)
	add "floor-$e-$s" "$(echo "$t1 - $t0" | bc)"
}
# memory ENGINE: the daemon's RSS (kB), and the PSS (kB) of the daemon, its shims and pause
# processes (the engine's cost of the pods, the workload's own processes left out).
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
pss() { awk '/^Pss:/ {s += $2} END {print s + 0}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
memory() {
	local e=$1 d exe p total=0 shims=0 pauses=0
	if [ "$e" = isula ]; then d=$DPID exe=$B/isulad-shim; else d=$CPID exe=$(readlink -f "$(command -v containerd-shim-runc-v2)"); fi
	total=$(pss "$d")
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$exe" ] || continue
		[ "$e" = isula ] || [ "$(readlink "$p/ns/mnt" 2>/dev/null)" = "$CMNT" ] || continue
		total=$((total + $(pss "${p#/proc/}"))) shims=$((shims + 1))
		for k in $(cat "$p"/task/*/children 2>/dev/null); do
			if [ "$(cat "/proc/$k/comm" 2>/dev/null)" = pause ]; then
				total=$((total + $(pss "$k"))) pauses=$((pauses + 1))
			fi
		done
	done
	M[$e-rss]="${M[$e-rss]:-} $(rss "$d")"
	M[$e-pss]="${M[$e-pss]:-} $total"
	M[$e-procs]="$shims shims, $pauses pause"
}
teardown() { # ENGINE
	local c; c=$([ "$1" = isula ] && echo ic || echo cc)
	$c rmp -a -f >/dev/null 2>&1 || $c rmp -a -f >/dev/null
	[ -z "$($c pods -q)" ] || die "$1: pods left after rmp -a -f: $($c pods -q | wc -l)"
	[ -z "$($c ps -aq)" ] || die "$1: containers left after rmp -a -f"
}
ENGINES=()
[ "$ONLY" = ctr ] || ENGINES+=(isula)
[ "$ONLY" = isula ] || ENGINES+=(ctr)

# Warm-up (not timed): one pod each; and what network the pods got.
ISULA_NET= CTR_NET=
for e in "${ENGINES[@]}"; do
	c=$([ "$e" = isula ] && echo ic || echo cc)
	batch "$e" 1 0
	ip=$($c inspectp "$($c pods -q | head -1)" | jq -r '.status.network.ip // ""')
	if [ "$e" = isula ]; then ISULA_NET=${ip:-none}; else CTR_NET=${ip:-none}; fi
	teardown "$e"
done
T=()
LAST=${SIZES##* }
round=0
for s in $SIZES; do
	log "$s pods in parallel, $N rounds"
	for r in $(seq "$N"); do
		round=$((round + 1))
		order=("${ENGINES[@]}")
		if [ ${#ENGINES[@]} = 2 ] && [ $((round % 2)) = 0 ]; then order=(ctr isula); fi
		for e in "${order[@]}"; do
			floor "$e" "$s"
			batch "$e" "$s" "$round"
			[ "$s" != "$LAST" ] || memory "$e"
			teardown "$e"
		done
	done
done

med() { echo "$1" | tr ' ' '\n' | grep . | median; }
net_of() { [ "$1" = none ] && echo "loopback only (no pod IP)" || echo "CNI bridge (pod IP $1)"; }
echo
echo "Pod start (crictl runp + create + start, image present), N pods in parallel, seconds, median of $N (interleaved):"
echo
echo "| pods | isula | containerd | isula / containerd |"
echo "|---|---|---|---|"
for s in $SIZES; do
	a=$([ -n "${T[isula-$s]:-}" ] && med "${T[isula-$s]}" || echo) b=$([ -n "${T[ctr-$s]:-}" ] && med "${T[ctr-$s]}" || echo)
	ratio=-; [ -z "$a" ] || [ -z "$b" ] || ratio=$(printf %.2f "$(echo "$a / $b" | bc -l)")
	printf '| %s | %s | %s | %s |\n' "$s" "${a:+$(printf %.3f "$a")}" "${b:+$(printf %.3f "$b")}" "$ratio"
done
echo
echo "The clients' share: as many crictl runs in parallel, each crictl version, seconds, median:"
echo
echo "| pods | against isula | against containerd | isula / containerd, less the clients' share |"
echo "|---|---|---|---|"
for s in $SIZES; do
	a=$([ -n "${T[floor-isula-$s]:-}" ] && med "${T[floor-isula-$s]}" || echo) b=$([ -n "${T[floor-ctr-$s]:-}" ] && med "${T[floor-ctr-$s]}" || echo)
	ratio=-
	if [ -n "${T[isula-$s]:-}" ] && [ -n "${T[ctr-$s]:-}" ]; then
		ratio=$(printf %.2f "$(echo "($(med "${T[isula-$s]}") - $a) / ($(med "${T[ctr-$s]}") - $b)" | bc -l)")
	fi
	printf '| %s | %s | %s | %s |\n' "$s" "${a:+$(printf %.3f "$a")}" "${b:+$(printf %.3f "$b")}" "$ratio"
done
echo
echo "Memory with $LAST pods running, MB, median of $N:"
echo
echo "| | isula | containerd | isula / containerd |"
echo "|---|---|---|---|"
for k in rss pss; do
	a=$([ -n "${M[isula-$k]:-}" ] && med "${M[isula-$k]}" || echo) b=$([ -n "${M[ctr-$k]:-}" ] && med "${M[ctr-$k]}" || echo)
	ratio=-; [ -z "$a" ] || [ -z "$b" ] || ratio=$(printf %.2f "$(echo "$a / $b" | bc -l)")
	what=$([ $k = rss ] && echo "daemon RSS" || echo "PSS of daemon + shims + pause")
	printf '| %s | %s | %s | %s |\n' "$what" "${a:+$(echo "scale=1; $a / 1024" | bc)}" "${b:+$(echo "scale=1; $b / 1024" | bc)}" "$ratio"
done
echo
echo "isula: images $ISULA_IMAGES; pod network $(net_of "${ISULA_NET:-none}"); ${M[isula-procs]:-}"
echo "containerd: $(containerd --version | awk '{print $3}'), images pulled; pod network $(net_of "${CTR_NET:-none}"); ${M[ctr-procs]:-}"
echo
echo "all rounds (seconds):"
for k in $(printf '%s\n' "${!T[@]}" | sort); do echo "  $k:${T[$k]}"; done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
