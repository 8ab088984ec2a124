#!/bin/bash
# bench/run.sh - the engine against raw runc/crun and podman, in one run, on this machine.
#
#   bench/run.sh [-n ROUNDS] [--quick] [--no-podman] [--no-systemd] [--keep]
#
# Installs missing peers from Debian (runc, crun, podman), builds the engine, makes a busybox
# rootfs (scripts/mkrootfs.sh), moves hugetlb for crun if needed (scripts/cgroup-hugetlb.sh),
# starts a private isulad (own --graph/--state/-H/--cgroup-parent under a temp dir) and prints
# markdown tables:
#   1. run --rm true: isula (runc, crun) vs raw runc/crun run with the engine's own config.json
#      vs podman run --rm --rootfs; then create/start/stop/rm one by one;
#   2. 100 containers started in parallel;
#   3. systemd system container: run -d -> is-system-running, and stop, vs raw runc;
#   4. footprint: daemon RSS idle and with 100 containers, shim RSS;
#   5. host channel: start cost, dd throughput into the channel vs on the host;
#   6. Go benchmarks (bench/gobench).
# Every contender runs interleaved with the others (round-robin) so the noise of a shared
# machine hits all alike; ratios are medians of per-round ratios. Everything it made is
# removed at the end (containers, cgroups, runtime state, mounts, podman storage, hugetlb).
# Needs root.
set -euo pipefail

N=60
QUICK=0
PODMAN=1
SYSTEMD=1
KEEP=0
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift ;;
	--quick) QUICK=1; N=10 ;;
	--no-podman) PODMAN=0 ;;
	--no-systemd) SYSTEMD=0 ;;
	--keep) KEEP=1 ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	*) echo "bench/run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
[ "$(id -u)" = 0 ] || { echo "bench/run.sh: needs root" >&2; exit 1; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
export PATH=/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
W=$(mktemp -d /tmp/isulad-bench.XXXXXX)
B=$W/bin
CGP=/isulad-bench-$$
RAWCG=/isulad-bench-raw-$$
SOCK=$W/isulad.sock
I="$B/isula -H unix://$SOCK"
HUGETLB_MOVED=0
DPID=
log() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------- cleanup
cleanup() {
	set +e
	log "cleaning up"
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		ids=$($I ps -aq --no-trunc 2>/dev/null)
		[ -n "$ids" ] && echo "$ids" | xargs -r -n 20 -P 4 $I rm -f >/dev/null 2>&1
		kill "$DPID"; wait "$DPID" 2>/dev/null
	fi
	# shims of this daemon that outlived it (they run from $B)
	for p in $(pgrep -f "^$B/isulad-shim" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	for rt in runc crun; do
		for r in "$W/$rt" "$W/state/runtime/$rt"; do
			[ -d "$r" ] || continue
			for id in $(ls "$r" 2>/dev/null); do $rt --root "$r" delete -f "$id" >/dev/null 2>&1; done
		done
	done
	if [ "$PODMAN" = 1 ] && command -v podman >/dev/null; then
		$PM rm -af -t 0 >/dev/null 2>&1
		$PM system reset -f >/dev/null 2>&1 || true
	fi
	for cg in "$CGP" "$RAWCG"; do
		for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
			[ -d "$h$cg" ] && find "$h$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
	done
	# podman's cgroupfs parent (libpod_parent) made for our containers only if empty
	findmnt -rn -o TARGET | grep "^$W" | sort -r | xargs -r -n1 umount -l 2>/dev/null
	if [ "$HUGETLB_MOVED" = 1 ]; then "$REPO/scripts/cgroup-hugetlb.sh" restore || log "hugetlb restore failed"; fi
	if [ "$KEEP" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- peers, build, rootfs
missing=()
for p in runc crun; do command -v $p >/dev/null || missing+=($p); done
[ "$PODMAN" = 1 ] && ! command -v podman >/dev/null && missing+=(podman)
command -v busybox >/dev/null || [ -x /bin/busybox ] || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]} from Debian"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
fi
PM="podman --root $W/podman/root --runroot $W/podman/run --tmpdir $W/podman/tmp --cgroup-manager cgroupfs --events-backend file"
PMRUN="--network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"

log "building"
mkdir -p "$B"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$B/" ./cmd/isula-full ./cmd/isulad ./cmd/isulad-shim ./bench/tool)
"$REPO/scripts/build-front.sh" "$B/isula"
"$REPO/scripts/build-shim-lite.sh" "$B/isulad-shim-lite"
T="$B/tool"
R=$W/rootfs
"$REPO/scripts/mkrootfs.sh" busybox "$R" >/dev/null
# a container that runs until SIGTERM and then exits at once (busybox sh as pid 1 has no
# default action for TERM: the trap gives it one)
printf '#!/bin/sh\ntrap "exit 0" TERM\nwhile :; do sleep 1 & wait; done\n' >"$R/loop.sh"
chmod +x "$R/loop.sh"

case $("$REPO/scripts/cgroup-hugetlb.sh" status) in
not-moved) "$REPO/scripts/cgroup-hugetlb.sh" move && HUGETLB_MOVED=1 ;;
esac

# ---------------------------------------------------------------- daemon
echo '{}' >"$W/daemon.json"
"$B/isulad" --config-file "$W/daemon.json" -g "$W/graph" -S "$W/state" -H "unix://$SOCK" \
	--cgroup-parent "$CGP" -l warn >"$W/isulad.log" 2>&1 &
DPID=$!
for i in $(seq 100); do $I version >/dev/null 2>&1 && break; sleep 0.05; done
$I version >/dev/null

# raw bundles: the engine's own config.json (isula create, then the bundle's file), only the
# cgroupsPath (and for some, the command) changed
mkbundle() { # name runtime cgroup-name [create options...] -- [args...]
	local name=$1 rt=$2 cg=$3; shift 3
	local opts=() args=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	args=("$@")
	local id
	id=$($I create --runtime "$rt" "${opts[@]}" "${args[@]}")
	mkdir -p "$W/b/$name"
	cp "$W/graph/containers/$id/config.json" "$W/b/$name/engine-config.json"
	"$T" spec "$W/graph/containers/$id/config.json" "$W/b/$name/config.json" "$RAWCG/$cg"
	$I rm "$id" >/dev/null
}
mkbundle runc runc runc --external-rootfs "$R" none true
mkbundle crun crun crun --external-rootfs "$R" none true
mkbundle runc-loop runc runcl --external-rootfs "$R" none /loop.sh
mkbundle crun-loop crun crunl --external-rootfs "$R" none /loop.sh
mkdir -p "$W/runc" "$W/crun"
RR="runc --root $W/runc"
CR="crun --root $W/crun"
RSS_IDLE=$("$T" rss "$DPID" | awk '{print $2}')

echo "# isulad-go benchmarks, $(date -u +%Y-%m-%dT%H:%MZ)"
echo
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem/{print $2}') GiB," \
	"kernel $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg); $(runc --version | head -1);" \
	"$(crun --version | head -1); $( [ "$PODMAN" = 1 ] && podman --version || echo 'no podman'); $(go version | cut -d' ' -f3)."

# ---------------------------------------------------------------- 1. run --rm true
ARGS=(runc="$RR run --bundle $W/b/runc rr"
	isula-runc="$I run --rm --external-rootfs $R none true"
	crun="$CR run --bundle $W/b/crun rc"
	isula-crun="$I run --rm --runtime crun --external-rootfs $R none true")
VS="isula-runc/runc,isula-crun/crun"
if [ "$PODMAN" = 1 ]; then
	$PM run --rm $PMRUN --rootfs "$R" true # warm podman's storage
	ARGS+=(podman="$PM run --rm $PMRUN --rootfs $R true")
	VS+=",podman/isula-runc,podman/isula-crun"
fi
"$T" time -n "$N" -w 3 -title "1. run --rm ... true" -vs "$VS" -json "$W/run.json" "${ARGS[@]}"

# one by one: create, start, stop (SIGTERM; the loop script exits at once), rm
SEQ=(isula-runc="$I create --name s{} --external-rootfs $R none /loop.sh|$I start s{}|$I stop s{}|$I rm s{}"
	isula-crun="$I create --name c{} --runtime crun --external-rootfs $R none /loop.sh|$I start c{}|$I stop c{}|$I rm c{}"
	runc="$RR create --bundle $W/b/runc-loop sr{}|$RR start sr{}|$T stop runc $W/runc sr{} TERM|$RR delete sr{}"
	crun="$CR create --bundle $W/b/crun-loop sc{}|$CR start sc{}|$T stop crun $W/crun sc{} TERM|$CR delete sc{}")
if [ "$PODMAN" = 1 ]; then
	SEQ+=(podman="$PM create $PMRUN --name p{} --rootfs $R /loop.sh|$PM start p{}|$PM stop p{}|$PM rm p{}")
fi
"$T" seq -n $((N / 2 > 5 ? N / 2 : 5)) -w 1 -title "1b. one by one (isula stop/podman stop: SIGTERM, the shell exits at once)" \
	-json "$W/seq.json" "${SEQ[@]}"

# ---------------------------------------------------------------- 2. + 4. 100 in parallel, footprint
P=100
[ "$QUICK" = 1 ] && P=20
par() { # name cmd-with-{} : start P in parallel, print wall ms
	local s e
	s=$(date +%s%N)
	seq 1 $P | xargs -P $P -I{} sh -c "$2" >/dev/null
	e=$(date +%s%N)
	echo $(((e - s) / 1000000))
}
# Each contender starts P containers at once, then they are all removed; PR rounds, the order
# rotating each round, so that the load of a shared machine hits them alike; medians of the
# rounds, and per-round (paired) ratios of the engine to the raw runtime.
# The pair the target names (the engine with runc against raw runc) runs 30 rounds, the
# others (crun, podman) the first 6: single rounds range 0.85x-1.32x on this machine
# (docs/PERFORMANCE.md, eighth round), so the median of 15 moved by +-0.05 between runs of one
# tree; of 30 by about 0.03. The per-round ratios are printed so that runs can be pooled.
PR=30
PRX=6
[ "$QUICK" = 1 ] && PR=1 && PRX=1
for rt in runc crun; do
	for i in $(seq 1 $P); do mkdir -p "$W/b/par-$rt/$i"; "$T" spec "$W/b/$rt-loop/config.json" "$W/b/par-$rt/$i/config.json" "$RAWCG/par$rt$i"; done
done
PARN=(isula-runc raw-runc isula-crun raw-crun)
[ "$PODMAN" = 1 ] && PARN+=(podman)
declare -A PTOT PTD
NRUN=0
for r in $(seq $PR); do
	names=("${PARN[@]}")
	[ "$r" -gt "$PRX" ] && names=(isula-runc raw-runc)
	for k in $(seq 0 $((${#names[@]} - 1))); do
		name=${names[$(((k + r) % ${#names[@]}))]}
		case $name in
		isula-*)
			rt=${name#isula-}
			t=$(par "$name" "$I run -d --runtime $rt --name p$rt${r}_{} --external-rootfs $R none /loop.sh")
			if [ $rt = runc ] && [ "$NRUN" = 0 ]; then
				sleep 1
				shims=$(pgrep -f "^$B/isulad-shim" | tr '\n' ' ')
				RSS100=$("$T" rss "$DPID" | awk '{print $2}')
				SHIM=$("$T" rss $shims)
				NRUN=$($I ps -q | wc -l)
			fi
			s=$(date +%s%N)
			$I ps -aq --no-trunc | xargs -r -P 20 -n 5 $I rm -f >/dev/null
			e=$(date +%s%N)
			;;
		raw-*)
			rt=${name#raw-}
			t=$(par "$name" "$rt --root $W/$rt run -d --bundle $W/b/par-$rt/{} par$rt{} </dev/null")
			s=$(date +%s%N)
			seq 1 $P | xargs -P 20 -I{} $rt --root "$W/$rt" delete -f par$rt{} >/dev/null
			e=$(date +%s%N)
			;;
		podman)
			t=$(par podman "$PM run -d $PMRUN --name pp${r}_{} --rootfs $R /loop.sh")
			s=$(date +%s%N)
			$PM rm -af -t 0 >/dev/null 2>&1
			e=$(date +%s%N)
			;;
		esac
		PTOT[$name]+="$t "
		PTD[$name]+="$(((e - s) / 1000000)) "
	done
done
pmed() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rounds() { # a-list b-list: the per-round a/b, one a line, as many as the shorter list has
	paste <(echo "$1" | tr ' ' '\n' | grep .) <(echo "$2" | tr ' ' '\n' | grep .) | awk 'NF == 2 {printf "%.3f\n", $1/$2}'
}
pratio() { # a-list b-list: median of per-round a/b
	rounds "$1" "$2" | sort -n | awk '{a[NR]=$1} END {printf "%.2fx", a[int((NR+1)/2)]}'
}
echo
echo "**2. $P containers started in parallel** (run -d of the loop script, all at once, then all removed: engine \`rm -f\` 20 clients of 5, raw \`delete -f\` 20 at a time; $PR rounds of the engine with runc and raw runc, $PRX of the others (podman against the first $PRX of raw runc), order rotating; median wall ms, and the median of the per-round ratios to the raw runtime)"
echo
echo "| contender | total ms | per container ms | teardown ms | total vs raw | teardown vs raw |"
echo "|---|---:|---:|---:|---:|---:|"
for name in "${PARN[@]}"; do
	t=$(echo "${PTOT[$name]}" | pmed)
	td=$(echo "${PTD[$name]}" | pmed)
	case $name in
	isula-*) raw=raw-${name#isula-}; vs="$(pratio "${PTOT[$name]}" "${PTOT[$raw]}") | $(pratio "${PTD[$name]}" "${PTD[$raw]}")" ;;
	podman) vs="$(pratio "${PTOT[podman]}" "${PTOT[raw-runc]}") | $(pratio "${PTD[podman]}" "${PTD[raw-runc]}")" ;;
	*) vs="1 | 1" ;;
	esac
	echo "| $name | $t | $(echo "scale=1; $t/$P" | bc) | $td | $vs |"
done
echo
for name in "${PARN[@]}"; do
	case $name in
	isula-*) raw=raw-${name#isula-} ;;
	podman) raw=raw-runc ;;
	*) continue ;;
	esac
	echo "per-round ratios, $name / $raw: total $(rounds "${PTOT[$name]}" "${PTOT[$raw]}" | awk '{printf "%.2f ", $1}')" \
		"; teardown $(rounds "${PTD[$name]}" "${PTD[$raw]}" | awk '{printf "%.2f ", $1}')"
	echo
done
sleep 1
RSS_AFTER=$("$T" rss "$DPID" | awk '{print $2}')
# no container left: the only shims are the daemon's spares (started ahead for the next start):
# the Go shim's (attached starts) and the light shim's (detached starts)
SPARE=$(pgrep -f "^$B/isulad-shim --spare" | tr '\n' ' ')
SPARE_RSS=$([ -n "$SPARE" ] && "$T" rss $SPARE | awk '{print $3}' || echo none)
LSPARE=$(pgrep -f "^$B/isulad-shim-lite --spare" | tr '\n' ' ')
LSPARE_RSS=$([ -n "$LSPARE" ] && "$T" rss $LSPARE | awk '{print $3}' || echo none)
echo
echo "**4. footprint** (VmRSS from /proc)"
echo
echo "| what | KiB |"
echo "|---|---:|"
echo "| daemon idle (after start) | $RSS_IDLE |"
echo "| daemon with $NRUN running containers | $RSS100 |"
echo "| daemon idle again (after the runs) | $RSS_AFTER |"
read -r n sum mean max <<<"$SHIM"
echo "| shim, mean of $n ($NRUN running containers, light shims unless handed over, and the spares) | $mean |"
echo "| shim, max | $max |"
echo "| shims, total | $sum |"
echo "| spare shim (Go), idle (no container) | $SPARE_RSS |"
echo "| spare light shim, idle (no container) | $LSPARE_RSS |"

# ---------------------------------------------------------------- 3. systemd system container
echo
if [ "$SYSTEMD" = 1 ] && D=$("$REPO/scripts/mkrootfs.sh" debian "$W/debian" 2>/dev/null | tail -1) && [ -x "$W/debian/sbin/init" ]; then
	mkdir -p "/sys/fs/cgroup/unified$RAWCG" 2>/dev/null || true
	mkbundle sys runc sys --system-container --external-rootfs "$D" none /sbin/init
	SR=$(( N / 6 > 3 ? N / 6 : 3 ))
	echo "**3. systemd system container** (run -d to 'systemctl is-system-running' = running, then stop; $SR rounds interleaved; wall ms)"
	echo
	echo "| contender | round | boot ms | state | stop ms |"
	echo "|---|---:|---:|---|---:|"
	boot_wait() { # exec-prefix... : poll is-system-running until running/degraded (60 s)
		local st=""
		for _ in $(seq 1200); do
			st=$("$@" systemctl is-system-running 2>/dev/null || true)
			case $st in running | degraded) break ;; esac
			sleep 0.05
		done
		echo "${st:-unknown}"
	}
	for r in $(seq $SR); do
		s=$(date +%s%N)
		id=$($I run -d --system-container --external-rootfs "$D" none /sbin/init)
		st=$(boot_wait $I exec "$id")
		e=$(date +%s%N)
		s2=$(date +%s%N); $I stop "$id" >/dev/null; e2=$(date +%s%N)
		$I rm "$id" >/dev/null
		echo "| isula (runc) | $r | $(((e - s) / 1000000)) | $st | $(((e2 - s2) / 1000000)) |"
		s=$(date +%s%N)
		$RR run -d --bundle "$W/b/sys" sys$r </dev/null >"$W/sys.out" 2>&1 || { cat "$W/sys.out" >&2; exit 1; }
		st=$(boot_wait $RR exec sys$r)
		e=$(date +%s%N)
		s2=$(date +%s%N); "$T" stop runc "$W/runc" sys$r 37 60s; e2=$(date +%s%N)
		$RR delete -f sys$r >/dev/null
		echo "| raw runc | $r | $(((e - s) / 1000000)) | $st | $(((e2 - s2) / 1000000)) |"
	done
	echo
	echo "(raw runc: the engine's config.json; stop = SIGRTMIN+3, systemd's halt, as the engine's stop signal for system containers; both poll is-system-running every 50 ms through exec)"
else
	echo "**3. systemd system container**: skipped (no debian rootfs: scripts/mkrootfs.sh debian needs debootstrap and the Debian mirror, or its cache /var/cache/isulad-rootfs)"
fi

# ---------------------------------------------------------------- 5. host channel
CH=$W/ch
mkdir -p "$CH"
"$T" time -n "$N" -w 2 -title "5a. host channel: start cost (run --rm true)" -vs "with-channel/without" \
	without="$I run --rm --external-rootfs $R none true" \
	with-channel="$I run --rm --host-channel $CH/{}:/ch:rw:64M --external-rootfs $R none true"
echo
echo "**5b. dd into the host channel** (64 MiB limit; busybox dd bs=1M count=48 conv=fsync; 5 runs each, MB/s from the median wall time; inside: through isula exec into a running container, minus the median of an exec of true)"
echo
# Debian's busybox dd prints no rate: time it from the host.
BB=$R/bin/busybox
mkdir -p "$W/hosttmp"
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$W/hosttmp"
cid=$($I run -d --host-channel "$CH/dd:/ch:rw:64M" --external-rootfs "$R" none /loop.sh)
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(((e - s) / 1000)); }
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ex=$(for i in 1 2 3 4 5; do ms $I exec "$cid" true; done | med)
in_us=$(for i in 1 2 3 4 5; do ms $I exec "$cid" dd if=/dev/zero of=/ch/f bs=1M count=48 conv=fsync; $I exec "$cid" rm -f /ch/f; done | med)
on_us=$(for i in 1 2 3 4 5; do ms "$BB" dd if=/dev/zero of="$W/hosttmp/f" bs=1M count=48 conv=fsync; rm -f "$W/hosttmp/f"; done | med)
$I rm -f "$cid" >/dev/null
umount "$W/hosttmp"
echo "| where | wall us | MB/s |"
echo "|---|---:|---:|"
echo "| inside the container, into the channel (/ch), exec overhead ($ex us) removed | $((in_us - ex)) | $((48 * 1048576 / (in_us - ex > 0 ? in_us - ex : 1))) |"
echo "| on the host, into a 64 MiB tmpfs | $on_us | $((48 * 1048576 / (on_us > 0 ? on_us : 1))) |"

# ---------------------------------------------------------------- 6. Go benchmarks
echo
echo "**6. Go benchmarks** (go test -bench ./bench/gobench)"
echo
echo '```'
(cd "$REPO" && go test -run '^$' -bench . -benchmem -count 1 ./bench/gobench 2>&1 | grep -E '^(Benchmark|ok|FAIL)')
echo '```'
