#!/bin/bash
# critest.sh - run critest (sigs.k8s.io/cri-tools v1.37.0) against this engine, offline.
#
#   scripts/critest.sh [CRITEST_ARG]...     (root; after `make build`)
#
# 1. a private docker-registry on 127.0.0.1:<free port> (its own config and storage in a temp
#    dir), with the stand-in images of scripts/critest-images.sh pushed under the repository
#    paths critest pulls;
# 2. a private isulad (bin/ of this tree: own --graph, --state, -H socket under the temp dir)
#    whose daemon.json mirrors registry.k8s.io, k8s.gcr.io, gcr.io, docker.io and quay.io to
#    that registry, with network-plugin cni and a bridge + portmap conflist of its own for pods;
# 3. critest with -ginkgo.skip for the specs that cannot run here (SKIPS below, each with its
#    reason; docs/cri.md lists them), then its summary line
#        Ran N of M Specs ... N Passed | 0 Failed | ...
#    is checked: the script fails if a spec failed or the summary is missing;
# 4. everything removed, also on failure or interrupt: pods and containers, the daemon, the
#    registry, mounts under the temp dir, the bridge, and the CNI plugins' host-wide iptables
#    chains this run made (when nothing but their own rules is in them).
#
# Environment: CRITEST_FOCUS (a -ginkgo.focus regexp, to run some specs only), CRITEST_KEEP=1
# (keep the temp dir: daemon and registry logs), CRITEST_PARALLEL (critest -parallel N).
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }
log() { printf '%s: %s\n' "$prog" "$*" >&2; }

# A prerequisite of the machine that is missing: skipped, saying why (as the Go tests do),
# and a failure when CI=true (.ci/run installs everything).
missing() {
	if [ "${CI:-}" = true ]; then die "$*"; fi
	log "skipped: $*"
	exit 0
}

root=$(cd "$(dirname "$0")/.." && pwd)
bindir=${ISULAD_BIN_DIR:-$root/bin}
[ "$(id -u)" = 0 ] || missing "must run as root (it starts a daemon)"
for b in isulad isula isula-full isulad-shim; do
	[ -x "$bindir/$b" ] || die "$bindir/$b is missing: run make build first"
done
for c in docker-registry iptables-save curl ss apt-get dpkg-deb ldd; do
	command -v "$c" >/dev/null || missing "$c is not installed (.ci/run's packages have it)"
done
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/portmap ] && [ -x /usr/lib/cni/host-local ] ||
	missing "the CNI plugins (Debian package containernetworking-plugins) are not in /usr/lib/cni"
critest=$("$root/scripts/tools.sh" critest | tail -n1) || missing "critest could not be built (scripts/tools.sh critest)"
crictl=$("$root/scripts/tools.sh" crictl | tail -n1) || missing "crictl could not be built (scripts/tools.sh crictl)"

# Specs that cannot run here, by a regexp of their names, with why (docs/cri.md, "critest").
SKIPS=(
	# The test image is pinned by a digest (test-image-digest@sha256:9700f9a2...) of a manifest
	# built elsewhere: a stand-in cannot have it.
	'public image with digest should be pulled and removed'
	# NRI: this engine has no NRI (Node Resource Interface) plugin socket.
	'\[k8s\.io\] NRI '
)
if [ ! -d /sys/kernel/security/apparmor ]; then
	# AppArmor is not enabled in this kernel: no profile can be loaded or enforced.
	SKIPS+=('\[k8s\.io\] AppArmor ')
fi
if [ ! -d /sys/fs/selinux ]; then
	# SELinux is not enabled in this kernel (critest's SELinux specs are also Windows/label-gated).
	SKIPS+=('\[k8s\.io\] SELinux ')
fi
skip_re=$(IFS='|'; echo "${SKIPS[*]}")

work=$(mktemp -d /tmp/critest.XXXXXX)
chmod 0711 "$work"
reg_pid= daemon_pid= critest_pid= bridge=crit$(printf '%05d' $((RANDOM % 100000)))
chains_before=

# Every chain of the CNI plugins' host-wide ones present now, as "table chain" lines.
cni_global_chains() {
	local t
	for t in filter nat; do
		iptables-save -t "$t" 2>/dev/null | sed -n -E 's/^:(CNI-FORWARD|CNI-ADMIN|CNI-HOSTPORT-DNAT|CNI-HOSTPORT-MASQ|CNI-HOSTPORT-SETMARK) .*/'"$t"' \1/p'
	done
}

# Remove the host-wide CNI chains this run made, with the rules jumping to them, if nothing
# but the plugins' fixed rules (MASQUERADE, MARK, jumps among themselves) is in them.
remove_cni_chains() {
	local t made c rule target inuse
	for t in filter nat; do
		made=$(comm -13 <(printf '%s\n' "$chains_before" | awk -v t="$t" '$1 == t {print $2}' | sort) \
			<(cni_global_chains | awk -v t="$t" '$1 == t {print $2}' | sort))
		[ -n "$made" ] || continue
		inuse=0
		while read -r rule; do
			c=$(awk '{print $2}' <<<"$rule")
			target=$(sed -n -E 's/.* -j ([^ ]+).*/\1/p' <<<"$rule")
			if grep -qxF "$c" <<<"$made" && ! grep -qxF "$target" <<<"$made" &&
				[ "$target" != MASQUERADE ] && [ "$target" != MARK ]; then
				inuse=1
			fi
		done < <(iptables-save -t "$t" | grep '^-A ')
		if [ $inuse = 1 ]; then
			log "CNI chains of table $t are still in use: left as they are"
			continue
		fi
		while read -r rule; do
			c=$(awk '{print $2}' <<<"$rule")
			target=$(sed -n -E 's/.* -j ([^ ]+).*/\1/p' <<<"$rule")
			if grep -qxF "$target" <<<"$made" && ! grep -qxF "$c" <<<"$made"; then
				eval "iptables -t $t -D ${rule#-A }" || log "could not remove rule: $rule"
			fi
		done < <(iptables-save -t "$t" | grep '^-A ')
		for c in $made; do iptables -t "$t" -F "$c"; done
		for c in $made; do iptables -t "$t" -X "$c" || log "could not remove chain $t/$c"; done
	done
}

isula() { "$bindir/isula" -H "unix://$work/isulad.sock" "$@"; }
crictl() { "$crictl" --config "$work/crictl.yaml" -r "unix://$work/isulad.sock" -i "unix://$work/isulad.sock" --timeout 60s "$@"; }

cleanup() {
	local status=$? m
	trap - EXIT INT TERM
	set +e
	if [ -n "$critest_pid" ] && kill -0 "$critest_pid" 2>/dev/null; then
		log "stopping critest (pid $critest_pid)"
		kill -TERM "$critest_pid"
		for _ in $(seq 100); do kill -0 "$critest_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$critest_pid" 2>/dev/null
		wait "$critest_pid" 2>/dev/null
	fi
	if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
		crictl rmp -af >/dev/null 2>&1
		for c in $(isula ps -aq --no-trunc 2>/dev/null); do isula rm -f "$c" >/dev/null 2>&1; done
		kill -TERM "$daemon_pid"
		for _ in $(seq 200); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$daemon_pid" 2>/dev/null && { log "isulad did not stop in 20 s: SIGKILL"; kill -KILL "$daemon_pid"; }
		wait "$daemon_pid" 2>/dev/null
	fi
	if [ -n "$reg_pid" ]; then
		kill -TERM "$reg_pid" 2>/dev/null
		wait "$reg_pid" 2>/dev/null
	fi
	# Shims and container processes of this daemon's state dir, if any survived it.
	for p in $(pgrep -f "isulad-shim.*$work/" 2>/dev/null); do log "shim $p left: killed"; kill -KILL "$p"; done
	# Mounts under the temp dir (pinned namespaces, rootfs), deepest first.
	for m in $(awk -v w="$work/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
		log "mount left: $m"
		umount -l "$m"
	done
	ip link show "$bridge" >/dev/null 2>&1 && ip link del "$bridge"
	remove_cni_chains
	# The run's cgroup parent, in every hierarchy (empty by now: deepest first).
	if [ -n "${cgroup_parent:-}" ]; then
		for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
			[ -d "$h${cgroup_parent#/}" ] || continue
			find "$h${cgroup_parent#/}" -depth -type d -exec rmdir {} + 2>/dev/null ||
				log "cgroup left: $h${cgroup_parent#/}"
		done
	fi
	if [ "${CRITEST_KEEP:-}" = 1 ]; then
		log "kept $work"
	else
		rm -rf --one-file-system "$work"
	fi
	exit $status
}
chains_before=$(cni_global_chains)
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		if [ -z "$(ss -Hltn "sport = :$p")" ]; then echo "$p"; return; fi
	done
	die "no free port found"
}

# critest's web server specs use fixed host ports (pkg/validate consts: port mapping 12000,
# port-forward 12001 and 12002, the host-network nginx 12003); another user of one of them
# would fail a spec for no fault of the engine's, so it is said up front.
for p in 12000 12001 12002 12003; do
	[ -z "$(ss -Hltn "sport = :$p")" ] || die "port $p is in use (critest's specs need 12000-12003 free): $(ss -Hltnp "sport = :$p" | head -n1)"
done

# 1. The registry.
reg=127.0.0.1:$(free_port)
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry/data
  delete:
    enabled: true
http:
  addr: $reg
EOF
docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
	curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && break
	kill -0 "$reg_pid" 2>/dev/null || die "docker-registry exited: $(tail -n5 "$work/registry/log")"
	sleep 0.1
done
curl -fsS "http://$reg/v2/" >/dev/null || die "docker-registry did not come up on $reg"
log "registry on $reg; pushing the stand-in images"
"$root/scripts/critest-images.sh" push "$reg" >"$work/push.log"
log "pushed $(wc -l <"$work/push.log") images"

# 2. The daemon.
mkdir -p "$work/net.d" "$work/cni-ipam"
subnet=10.$((200 + RANDOM % 50)).$((RANDOM % 256)).0/24
cat >"$work/net.d/10-critest.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "critest-pods",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$work/cni-ipam", "ranges": [[{"subnet": "$subnet"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
mirror="{\"mirrors\": [\"http://$reg\"]}"
cat >"$work/daemon.json" <<EOF
{
  "registries": {"registry.k8s.io": $mirror, "k8s.gcr.io": $mirror, "gcr.io": $mirror,
                 "docker.io": $mirror, "quay.io": $mirror},
  "network-plugin": "cni",
  "cni-conf-dir": "$work/net.d",
  "cni-bin-dir": "/usr/lib/cni",
  "stream-server-address": "127.0.0.1",
  "stream-server-port": "0"
}
EOF
: >"$work/crictl.yaml"
# Containers whose pod names no cgroup parent go under one of this run's own (removed at the
# end), not the daemon's default /isulad, which would stay behind on the host.
cgroup_parent=/critest-${work##*.}
"$bindir/isulad" --graph "$work/graph" --state "$work/state" -H "unix://$work/isulad.sock" \
	--cgroup-parent "$cgroup_parent" \
	--config-file "$work/daemon.json" --log-level info >"$work/isulad.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 200); do
	isula version >/dev/null 2>&1 && break
	kill -0 "$daemon_pid" 2>/dev/null || die "isulad exited: $(tail -n5 "$work/isulad.log")"
	sleep 0.1
done
isula version >/dev/null || die "isulad did not come up: $(tail -n5 "$work/isulad.log")"
log "isulad on $work/isulad.sock (pid $daemon_pid); pod network $subnet on $bridge"

# 3. critest.
args=(--runtime-endpoint "unix://$work/isulad.sock" --image-endpoint "unix://$work/isulad.sock"
	--config "$work/crictl.yaml" -ginkgo.no-color -ginkgo.skip "$skip_re")
[ -z "${CRITEST_PARALLEL:-}" ] || args+=(-parallel "$CRITEST_PARALLEL")
[ -z "${CRITEST_FOCUS:-}" ] || args+=(-ginkgo.focus "$CRITEST_FOCUS")
log "critest ${args[*]} $*"
rc=0
# critest's own temp dirs (pod log dirs, host paths) go under the temp dir too. It runs in the
# background so that a signal to this script stops it at once (cleanup kills it); its output
# is shown as it comes.
(cd "$work" && TMPDIR=$work exec "$critest" "${args[@]}" "$@") >"$work/critest.log" 2>&1 &
critest_pid=$!
tail -n +1 -f --pid="$critest_pid" "$work/critest.log" &
tail_pid=$!
wait "$critest_pid" || rc=$?
wait "$tail_pid" || true
critest_pid=
summary=$(grep -E '^Ran [0-9]+ of [0-9]+ Specs' "$work/critest.log" | tail -n1 || true)
counts=$(grep -E '[0-9]+ Passed \| [0-9]+ Failed' "$work/critest.log" | tail -n1 || true)
[ -n "$summary" ] && [ -n "$counts" ] || die "critest printed no summary (exit $rc)"
log "$summary ... $counts"
failed=$(sed -n -E 's/.* ([0-9]+) Failed.*/\1/p' <<<"$counts")
if [ "$failed" != 0 ] || [ $rc != 0 ]; then
	if [ "${CRITEST_KEEP:-}" != 1 ]; then
		keep=$(mktemp -d /tmp/critest-logs.XXXXXX)
		cp "$work/isulad.log" "$work/critest.log" "$keep/"
		log "the daemon's and critest's logs are in $keep"
	fi
	die "$failed specs failed (critest exit $rc)"
fi
