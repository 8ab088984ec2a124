#!/bin/bash
# shmring vs unix socket, host process <-> container process, through a real
# host channel: a size-limited tmpfs (nosuid,nodev,noexec, mode 1777)
# mounted here and bind-mounted into a raw runc container. Both contenders
# live in the same channel directory and are measured in the same run:
#   - 64 B round trip p50/p99: unix socket, shmring sleep mode, shmring spin mode
#   - 64 KiB throughput: unix socket, shmring sleep mode, shmring spin mode
# for two CPU placements (taskset): client and container on different cores,
# and on the same core. Each placement is measured REPS times; the summary
# shows medians.
#
# Usage: bench/shmring/run.sh            (as root; needs runc, taskset, jq, go)
# Environment: REPS (default 5), COUNT round trips (20000), MIB per
# throughput run (1024), SPIN budget for spin mode (100us).
set -euo pipefail

REPS=${REPS:-5}
COUNT=${COUNT:-20000}
MIB=${MIB:-1024}
SPIN=${SPIN:-100us}
RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root (mounts a tmpfs, runs runc)" >&2; exit 1; }
for t in "$RUNC" taskset jq go; do
	command -v "$t" >/dev/null || { echo "run.sh: $t not found" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/shmring-bench.XXXXXX)
id="shmring-bench-$$-$RANDOM"
bundle=$tmp/bundle
chan=$tmp/channel
mounted=
cleanup() {
	"$RUNC" --root "$tmp/runc" kill "$id" KILL 2>/dev/null || true
	# Wait for the container's processes to be gone before deleting, or
	# runc cannot remove every cgroup (seen with hugetlb on cgroup v1).
	for _ in $(seq 100); do
		st=$("$RUNC" --root "$tmp/runc" state "$id" 2>/dev/null | jq -r .status) || break
		[ "$st" = stopped ] && break
		sleep 0.05
	done
	"$RUNC" --root "$tmp/runc" delete -f "$id" 2>/dev/null || true
	for _ in $(seq 20); do
		left=
		for d in /sys/fs/cgroup/*/"$id" /sys/fs/cgroup/*/*/"$id"; do
			[ -d "$d" ] && { rmdir "$d" 2>/dev/null || left="$left $d"; }
		done
		[ -z "$left" ] && break
		sleep 0.1
	done
	[ -n "$left" ] && echo "run.sh: cgroups left behind:$left" >&2
	[ -n "$mounted" ] && umount -l "$chan" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

mkdir -p "$bundle/rootfs"/{proc,dev,sys,ch} "$chan" "$tmp/runc"
(cd "$repo" && CGO_ENABLED=0 go build -o "$bundle/rootfs/isula-ring" ./cmd/isula-ring)
cp "$bundle/rootfs/isula-ring" "$tmp/isula-ring"

mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=64m tmpfs "$chan"
mounted=1

"$RUNC" spec --bundle "$bundle"
jq --arg chan "$chan" --arg cg "/$id" '
	.process.terminal = false
	| .process.args = ["/isula-ring", "bench", "serve", "--dir", "/ch"]
	| .root = {path: "rootfs", readonly: true}
	| .mounts += [{destination: "/ch", type: "bind", source: $chan,
	               options: ["rbind", "rprivate", "nosuid", "nodev", "noexec", "rw"]}]
	| .linux.cgroupsPath = $cg' "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"

"$RUNC" --root "$tmp/runc" run -d --bundle "$bundle" "$id" >"$tmp/container.log" 2>&1
pid=$("$RUNC" --root "$tmp/runc" state "$id" | jq .pid)
for _ in $(seq 100); do [ -S "$chan/bench.sock" ] && break; sleep 0.05; done
[ -S "$chan/bench.sock" ] || { echo "server did not start:"; cat "$tmp/container.log"; exit 1; }

echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
echo "# load before run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# channel: tmpfs $chan bind-mounted at /ch in runc container $id (server pid $pid)"

results=$tmp/results.csv
: >"$results"
run_placement() { # label client-cpu server-cpu
	taskset -a -p -c "$3" "$pid" >/dev/null
	for r in $(seq "$REPS"); do
		echo "## $1, rep $r (client CPU $2, container CPU $3)"
		taskset -c "$2" "$tmp/isula-ring" bench run --dir "$chan" --count "$COUNT" --mib "$MIB" \
			--spin "$SPIN" --placement "$1" --csv | tee -a "$results" | grep -v '^csv;'
	done
}
run_placement "different cores" 0 1
run_placement "same core" 0 0

echo
echo "# medians over $REPS runs (p50/p99 in microseconds, throughput in MiB/s)"
grep '^csv;' "$results" | awk -F';' '
	function median(list,   n, a, i, j, t) {
		n = split(list, a, " ")
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
		return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	{ k = $2 "|" $3; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
	  p50[k] = p50[k] " " $4; p99[k] = p99[k] " " $5; tp[k] = tp[k] " " $6 }
	END {
		printf "%-16s %-36s %10s %10s %10s\n", "placement", "measurement", "p50", "p99", "MiB/s"
		for (i = 1; i <= n; i++) {
			k = order[i]; split(k, f, "|")
			m50[k] = median(p50[k]); m99[k] = median(p99[k]); mtp[k] = median(tp[k])
			if (mtp[k] > 0) printf "%-16s %-36s %10s %10s %10.0f\n", f[1], f[2], "-", "-", mtp[k]
			else printf "%-16s %-36s %10.2f %10.2f %10s\n", f[1], f[2], m50[k], m99[k], "-"
		}
		print ""
		for (pl in placements) {}
		for (i = 1; i <= n; i++) { split(order[i], f, "|"); pls[f[1]] = 1 }
		for (pl in pls) {
			u = pl "|64B round trip, unix socket"; s = pl "|64B round trip, shmring sleep"
			ut = pl "|64KiB throughput, unix socket"; st = pl "|64KiB throughput, shmring sleep"
			for (k in m50) if (index(k, pl "|64B round trip, shmring spin") == 1) sp = k
			for (k in mtp) if (index(k, pl "|64KiB throughput, shmring spin") == 1) spt = k
			printf "%s: unix/spin p50 %.1fx (target >=10x), unix/sleep p50 %.2fx (target >=1x), throughput shmring/unix %.1fx sleep, %.1fx spin (target >=3x)\n",
				pl, m50[u] / m50[sp], m50[u] / m50[s], mtp[st] / mtp[ut], mtp[spt] / mtp[ut]
		}
	}'
echo "# load after run: $(cut -d' ' -f1-3 /proc/loadavg)"
