#!/bin/bash
# syscontainer-check.sh [runc|crun] [debian|busybox]
#
# Re-run the raw-runtime experiment behind docs/notes/system-containers.md: boot the rootfs with
# the OCI config from docs/notes (systemd-runc-config.json / busybox-init-config.json) under the
# runtime alone (no isulad), check the facts the engine relies on, and clean up everything
# (runtime state under a temp --root, cgroups, rootfs copy). Exit 0 if all checks pass.
#
# debian:  systemctl is-system-running == running; memory.limit_in_bytes not writable;
#          SIGRTMIN+3 (37) ends init with SIGINT (130) within 5 s.
# busybox: init is PID 1 and keeps running; `reboot` inside ends it with SIGHUP (129).
# Needs root, jq, and scripts/mkrootfs.sh's cache for debian (built on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
rt=${1:-runc} kind=${2:-debian}
command -v "$rt" >/dev/null || { echo "no $rt" >&2; exit 1; }
command -v jq >/dev/null || { echo "needs jq" >&2; exit 1; }

work=$(mktemp -d /var/tmp/syscheck.XXXXXX)
id=syscheck-$$
cgpath=/isulad-syscheck/$id
fail=0
cleanup() {
	"$rt" --root "$work/state" delete -f "$id" >/dev/null 2>&1 || true
	[ -n "${runpid:-}" ] && kill "$runpid" 2>/dev/null || true
	for h in /sys/fs/cgroup/*/; do
		[ -d "$h/isulad-syscheck" ] || continue
		find "$h/isulad-syscheck" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
		rmdir "$h/isulad-syscheck" 2>/dev/null || true
	done
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
x() { "$rt" --root "$work/state" exec "$id" "$@"; }

case $kind in
debian) tmpl=docs/notes/systemd-runc-config.json ;;
busybox) tmpl=docs/notes/busybox-init-config.json ;;
*) echo "kind: debian or busybox" >&2; exit 2 ;;
esac
scripts/mkrootfs.sh "$kind" "$work/rootfs" >/dev/null
mkdir -p "$work/bundle" "$work/state"
jq --arg r "$work/rootfs" --arg cg "$cgpath" --arg h "${id:0:12}" '
	.root.path = $r | .linux.cgroupsPath = $cg | .hostname = $h |
	.mounts |= map(if .destination == "/sys/fs/cgroup/systemd" then .source = "/sys/fs/cgroup/systemd" + $cg else . end)
' "$tmpl" >"$work/bundle/config.json"

# Foreground `runc run` in the background: its exit code is init's (128+signal if killed).
"$rt" --root "$work/state" run --bundle "$work/bundle" "$id" </dev/null >"$work/out" 2>&1 &
runpid=$!
for _ in $(seq 1 50); do
	"$rt" --root "$work/state" state "$id" 2>/dev/null | grep -q '"running"' && break
	sleep 0.1
done

if [ $kind = debian ]; then
	t0=$(date +%s.%N) s=
	for _ in $(seq 1 120); do
		s=$(x systemctl is-system-running 2>/dev/null) || true
		case $s in running|degraded|maintenance|stopping) break ;; esac
		sleep 0.25
	done
	t=$(echo "$(date +%s.%N) - $t0" | bc)
	[ "$s" = running ] && ok "systemctl is-system-running: running (${t}s)" ||
		bad "systemctl is-system-running: '$s'; failed: $(x systemctl --failed --no-legend --plain 2>&1 | tr '\n' ' ')"
	if x sh -c 'echo 1000000000 > /sys/fs/cgroup/memory/memory.limit_in_bytes' 2>/dev/null; then
		bad "memory.limit_in_bytes writable inside"
	else ok "memory.limit_in_bytes not writable inside"; fi
	x sh -c 'mkdir /sys/fs/cgroup/systemd/syscheck && rmdir /sys/fs/cgroup/systemd/syscheck' &&
		ok "own name=systemd subtree writable" || bad "name=systemd subtree not writable"
	t0=$(date +%s.%N)
	"$rt" --root "$work/state" kill "$id" 37
	want=130 what="SIGRTMIN+3"
else
	[ "$(x cat /proc/1/comm)" = init ] && ok "busybox init is PID 1" || bad "PID 1 is $(x cat /proc/1/comm)"
	sleep 1
	"$rt" --root "$work/state" state "$id" 2>/dev/null | grep -q '"running"' && ok "keeps running detached" || bad "not running"
	t0=$(date +%s.%N)
	x reboot
	want=129 what="reboot"
fi
rc=0
for _ in $(seq 1 100); do kill -0 "$runpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$runpid" 2>/dev/null; then
	bad "$what: still running after 10 s"
else
	wait "$runpid" || rc=$?
	runpid=
	t=$(echo "$(date +%s.%N) - $t0" | bc)
	[ "$rc" = "$want" ] && ok "$what: exit $rc after ${t}s" || bad "$what: exit $rc (want $want) after ${t}s"
fi
[ $fail = 0 ] && echo "PASS $rt $kind" || { echo "FAIL $rt $kind"; tail -n 20 "$work/out"; }
exit $fail
