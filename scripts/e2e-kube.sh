#!/bin/bash
# e2e-kube.sh - a real kubelet runs a pod with a system container and a host channel on this
# engine's CRI.
#
#   scripts/e2e-kube.sh            (make e2e-kube: builds bin/ first; root)
#
# Everything lives in one temporary directory and is removed at the end, on failure too:
#   - a self-signed CA and certificates (openssl), a token file, a service-account key;
#   - etcd (Debian's etcd-server) on 127.0.0.1, its own data directory;
#   - kube-apiserver on 127.0.0.1 (tokens for kubectl and the kubelet, RBAC; the ServiceAccount
#     admission plugin is off: with no controller-manager there is no "default" service account);
#   - a private isulad (own --graph, --state and socket; daemon.json allows host channels below
#     the run's channel directory);
#   - the kubelet (kubelet, kube-apiserver and kubectl v1.37.2 from scripts/tools.sh, built once
#     into the tools cache), on this daemon's socket, started in a scratch working directory, its
#     pods' cgroups below a cgroup root of this run's own (made in every hierarchy, removed after).
# Then, with kubectl: the node is Ready; a pod (nodeName set: no scheduler) whose container is a
# system container with a host channel reaches Running; kubectl exec works and its PID 1 is the
# image's init; kubectl logs shows its output; a file written on the node into the channel's host
# directory is read inside; kubectl delete removes the pod, its containers, and the channel (host
# directory unmounted and gone). kubectl port-forward reaches a server in the pod, and the
# container, restarted by the kubelet, gets the channel anew.
#
# The kubelet changes host-wide things: it sets six kernel tunables (vm.overcommit_memory,
# vm.panic_on_oom, kernel.panic, kernel.panic_on_oops, kernel.keys.root_maxkeys,
# kernel.keys.root_maxbytes), adds KUBE-* iptables chains and rules, and makes
# /var/log/containers and /var/lib/kubelet/device-plugins/kubelet.sock (fixed paths). The script
# records them first and restores them at the end: tunables to their values, only the chains
# that were not there before, the directories only if it made them (and only the links into
# this run, the socket only if it was not there).
#
# Environment: ISULAD_BIN (default bin/ of this clone: isula, isulad, isulad-shim),
# ISULAD_TOOLS_CACHE / TOOLS_CACHE (scripts/tools.sh), ISULAD_ROOTFS_CACHE (scripts/mkrootfs.sh),
# KEEP_ON_FAILURE=1 leaves the temporary directory after a failure, KEEP=1 always (with every
# component's log in logs/; processes, mounts, cgroups and chains are removed all the same).
set -euo pipefail

prog=${0##*/}
repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "$prog: FAIL: $*" >&2; exit 1; }
t0=${EPOCHREALTIME/./}
step() { local us=$((${EPOCHREALTIME/./} - t0)); printf '%s: [%4d.%ds] %s\n' "$prog" $((us / 1000000)) $((us / 100000 % 10)) "$*"; }

[ "$(id -u)" = 0 ] || die "must run as root (the kubelet and the daemon manage cgroups and mounts)"
for c in etcd openssl iptables ip6tables ss curl runc busybox; do
	command -v "$c" >/dev/null || die "$c is not installed (Debian: etcd-server, openssl, iptables, iproute2, curl, runc, busybox-static)"
done
bindir=${ISULAD_BIN:-$repo/bin}
for b in isula isula-full isulad isulad-shim; do
	[ -x "$bindir/$b" ] || die "$bindir/$b is missing (run make build, or set ISULAD_BIN)"
done

step "tools: kubelet, kube-apiserver, kubectl v1.37.2, crictl (built into the tools cache when missing)"
kubelet=$("$repo/scripts/tools.sh" kubelet | tail -n1)
apiserver=$("$repo/scripts/tools.sh" kube-apiserver | tail -n1)
kubectl=$("$repo/scripts/tools.sh" kubectl | tail -n1)
crictl=$("$repo/scripts/tools.sh" crictl | tail -n1)

T=$(mktemp -d /tmp/e2e-kube.XXXXXX)
chmod 755 "$T"
run=${T##*.}
# The node is named by its address: the kubelet refuses a loopback --node-ip, but a node name
# that is an IP address is taken as the node's InternalIP as it is, and the apiserver reaches
# the kubelet (exec, logs) only at 127.0.0.1. (The apiserver and its etcd are this run's own.)
node=127.0.0.1
cgroot=e2e-kube-$run
mkdir -p "$T"/{pki,etcd,apiserver,graph,state,channels,kubelet,kubelet-cwd,pod-logs,kubectl-cache,logs}
sock=$T/isulad.sock

# ---------------------------------------------------------------- clean-up (always)
pids=() # started processes, in start order
kube_chains_before=$(for ipt in iptables ip6tables; do for tb in filter nat mangle; do
	$ipt -w -t "$tb" -S 2>/dev/null | awk -v p="$ipt $tb" '$1 == "-N" && $2 ~ /^KUBE-/ {print p, $2}'
done; done)
sysctls=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
	kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
declare -A sysctl_before
for s in "${sysctls[@]}"; do sysctl_before[$s]=$(sysctl -n "$s"); done
made_logdir= made_libdir= had_dpsock=
[ -d /var/log/containers ] || made_logdir=1
# The device-plugin socket's directory is fixed (not below --root-dir).
[ -d /var/lib/kubelet ] || made_libdir=1
[ -e /var/lib/kubelet/device-plugins/kubelet.sock ] && had_dpsock=1

stop_pid() { # pid: SIGTERM, 20 s, SIGKILL
	local p=$1 i
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null || true
	for i in $(seq 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

cleanup() {
	local rc=$? i p h
	set +e
	trap - EXIT INT TERM
	[ "$rc" = 0 ] || { echo "$prog: failed; the last lines of each log:" >&2
		for f in "$T"/logs/{etcd,kube-apiserver,isulad,kubelet}.log; do [ -f "$f" ] || continue; echo "---- $f" >&2; tail -n 15 "$f" >&2; done; }
	step "clean-up"
	[ -n "${pf_pid:-}" ] && stop_pid "$pf_pid"
	# The kubelet first (it would restart what is removed under it), then the pods it left,
	# then the daemon, the apiserver and etcd: in reverse start order.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		p=${pids[i]}
		if [ "$p" = "${isulad_pid:-}" ] && [ -S "$sock" ]; then
			"$crictl" -r "unix://$sock" rmp -af >/dev/null 2>&1
			for id in $("$bindir/isula" -H "unix://$sock" ps -aq 2>/dev/null); do
				"$bindir/isula" -H "unix://$sock" rm -f "$id" >/dev/null 2>&1
			done
		fi
		stop_pid "$p"
	done
	# The kubelet's iptables chains that were not there before: the rules that jump to them,
	# then the chains.
	for ipt in iptables ip6tables; do for tb in filter nat mangle; do
		for ch in $($ipt -w -t "$tb" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}'); do
			grep -qx "$ipt $tb $ch" <<<"$kube_chains_before" && continue
			$ipt -w -t "$tb" -S 2>/dev/null | grep -E -- "-j $ch( |\$)" | sed 's/^-A /-D /' |
				while read -r rule; do eval "$ipt -w -t $tb $rule"; done
			$ipt -w -t "$tb" -F "$ch" && $ipt -w -t "$tb" -X "$ch" && echo "removed $ipt -t $tb chain $ch"
		done
	done; done
	# This run's cgroup root (the kubelet's kubepods below it) in every hierarchy, deepest first.
	for h in /sys/fs/cgroup/*/; do
		[ -d "$h$cgroot" ] || continue
		find "$h$cgroot" -depth -type d -exec rmdir {} + 2>/dev/null
		[ -d "$h$cgroot" ] && echo "$prog: cgroup $h$cgroot could not be removed" >&2
	done
	# Mounts below the run's directory (pinned namespaces, host channels, the kubelet's volumes),
	# deepest first.
	awk -v t="$T/" 'index($5, t) == 1 {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" || echo "$prog: could not unmount $m" >&2; done
	for l in /var/log/containers/*; do
		[ -L "$l" ] && case $(readlink "$l") in "$T"/*) rm -f "$l" ;; esac
	done
	[ -n "$made_logdir" ] && rmdir /var/log/containers 2>/dev/null
	if [ -n "$made_libdir" ]; then
		rm -rf --one-file-system /var/lib/kubelet
	elif [ -z "$had_dpsock" ]; then
		rm -f /var/lib/kubelet/device-plugins/kubelet.sock
	fi
	[ -n "${bridge:-}" ] && ip link show "$bridge" >/dev/null 2>&1 && ip link del "$bridge"
	for s in "${sysctls[@]}"; do
		[ "$(sysctl -n "$s")" = "${sysctl_before[$s]}" ] || sysctl -q -w "$s=${sysctl_before[$s]}"
	done
	if [ -n "${KEEP:-}" ] || { [ "$rc" != 0 ] && [ -n "${KEEP_ON_FAILURE:-}" ]; }; then
		echo "$prog: kept $T" >&2
	else
		rm -rf --one-file-system "$T"
	fi
	step "done (exit $rc)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits until "$@" succeeds, polling every 0.2 s for at most $within seconds.
within=60
until_ok() {
	local what=$1 end=$(($(date +%s) + within)); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$end" ] || die "$what: not after ${within}s"
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || die "$what: process $p exited (see its log above)"; done
		sleep 0.2
	done
}

# From 20000 (critest uses 12000-12003) to below the kernel's ephemeral range, so that no
# outgoing connection takes one meanwhile.
read -r eph_low _ </proc/sys/net/ipv4/ip_local_port_range
[ "$eph_low" -gt 22000 ] || die "the ephemeral port range starts at $eph_low: no room below it for the run's ports"
taken_ports=" "
free_port() { # a TCP port no socket on this host uses, not given out before; sets $port
	while :; do
		port=$((20000 + RANDOM % (eph_low - 20000)))
		case $taken_ports in *" $port "*) continue ;; esac
		ss -Htan "sport = :$port" | grep -q . || break
	done
	taken_ports+="$port "
}

# ---------------------------------------------------------------- certificates and tokens
step "certificates (openssl) and tokens in $T/pki"
cd "$T/pki"
{
	openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=e2e-kube-ca" -keyout ca.key -out ca.crt
	cert() { # name CN O SAN-line
		openssl req -newkey rsa:2048 -nodes -subj "/CN=$2${3:+/O=$3}" -keyout "$1.key" -out "$1.csr"
		printf '%s\n' "basicConstraints=CA:FALSE" "${4:-}" >"$1.ext"
		openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 \
			-extfile "$1.ext" -out "$1.crt"
	}
	cert apiserver kube-apiserver "" "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc"
	cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
	cert kubelet "system:node:$node" system:nodes "subjectAltName=IP:127.0.0.1,DNS:$node"
	openssl genrsa -out sa.key 2048
	openssl rsa -in sa.key -pubout -out sa.pub
} >"$T/logs/openssl.log" 2>&1 || die "openssl failed: $(tail -n3 "$T/logs/openssl.log")"
admin_token=$(openssl rand -hex 16)
kubelet_token=$(openssl rand -hex 16)
# token,user,uid,"groups": a test cluster, so both are cluster administrators.
printf '%s,admin,admin,"system:masters"\n%s,system:node:%s,kubelet,"system:nodes,system:masters"\n' \
	"$admin_token" "$kubelet_token" "$node" >tokens.csv
chmod 600 ./*.key tokens.csv
cd "$T/kubelet-cwd"

free_port; etcd_port=$port
free_port; etcd_peer=$port
free_port; api_port=$port
free_port; kubelet_port=$port
free_port; healthz_port=$port

kubeconfig() { # file token
	cat >"$1" <<-EOF
	apiVersion: v1
	kind: Config
	clusters:
	- name: e2e
	  cluster: {server: "https://127.0.0.1:$api_port", certificate-authority: "$T/pki/ca.crt"}
	users:
	- name: u
	  user: {token: "$2"}
	contexts:
	- name: e2e
	  context: {cluster: e2e, user: u, namespace: default}
	current-context: e2e
	EOF
	chmod 600 "$1"
}
kubeconfig "$T/admin.kubeconfig" "$admin_token"
kubeconfig "$T/kubelet.kubeconfig" "$kubelet_token"
k() { "$kubectl" --kubeconfig "$T/admin.kubeconfig" --cache-dir "$T/kubectl-cache" "$@"; }

# ---------------------------------------------------------------- etcd, kube-apiserver
step "etcd $(etcd --version | awk '/etcd Version/ {print $3}') on 127.0.0.1:$etcd_port"
etcd --name e2e --data-dir "$T/etcd" \
	--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
	--listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
	--initial-cluster "e2e=http://127.0.0.1:$etcd_peer" --logger zap >"$T/logs/etcd.log" 2>&1 </dev/null &
pids+=($!)
until_ok "etcd health" curl -sf "http://127.0.0.1:$etcd_port/health"

step "kube-apiserver on https://127.0.0.1:$api_port"
"$apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
	--bind-address 127.0.0.1 --advertise-address 127.0.0.1 --endpoint-reconciler-type none \
	--secure-port "$api_port" --cert-dir "$T/apiserver" \
	--tls-cert-file "$T/pki/apiserver.crt" --tls-private-key-file "$T/pki/apiserver.key" \
	--client-ca-file "$T/pki/ca.crt" --token-auth-file "$T/pki/tokens.csv" --authorization-mode RBAC \
	--service-account-issuer https://kubernetes.default.svc --service-account-key-file "$T/pki/sa.pub" \
	--service-account-signing-key-file "$T/pki/sa.key" --service-cluster-ip-range 10.96.0.0/24 \
	--kubelet-client-certificate "$T/pki/apiserver-kubelet-client.crt" \
	--kubelet-client-key "$T/pki/apiserver-kubelet-client.key" \
	--kubelet-certificate-authority "$T/pki/ca.crt" --kubelet-preferred-address-types InternalIP \
	--disable-admission-plugins ServiceAccount >"$T/logs/kube-apiserver.log" 2>&1 </dev/null &
pids+=($!)
until_ok "kube-apiserver /readyz" k get --raw /readyz

# ---------------------------------------------------------------- isulad, its pod network, the image
# The pod network: a bridge of this run's own on a free 10.x.y.0/24, host-local leases in the
# run's directory; no portmap or firewall plugin, so no host-wide iptables chains.
subnet=
for _ in $(seq 100); do
	a=$((200 + RANDOM % 50)) b=$((RANDOM % 256))
	if ! ip -4 route show | grep -q "^10\.$a\.$b\." && ! ip -4 addr show | grep -q "inet 10\.$a\.$b\."; then
		subnet=10.$a.$b.0/24
		break
	fi
done
[ -n "$subnet" ] || die "no free 10.200-249.x.0/24 for the pod network (routes or addresses use them all)"
bridge=ek$run
mkdir -p "$T/cni" "$T/ipam"
cat >"$T/cni/10-e2e-kube.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "e2e-kube",
 "plugins": [{"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false,
              "ipam": {"type": "host-local", "dataDir": "$T/ipam", "ranges": [[{"subnet": "$subnet"}]]}}]}
EOF
cat >"$T/daemon.json" <<EOF
{"cri-host-channel-roots": ["$T/channels"], "stream-server-address": "127.0.0.1",
 "network-plugin": "cni", "cni-conf-dir": "$T/cni", "cni-bin-dir": "/usr/lib/cni"}
EOF
step "isulad on $sock (pod network $subnet on bridge $bridge)"
"$bindir/isulad" --graph "$T/graph" --state "$T/state" -H "unix://$sock" \
	--config-file "$T/daemon.json" --log-level debug >"$T/logs/isulad.log" 2>&1 </dev/null &
isulad_pid=$!
pids+=($!)
isula() { "$bindir/isula" -H "unix://$sock" "$@"; }
until_ok "isulad" isula version

step "image busybox:e2e: a busybox-static rootfs, isula import"
"$repo/scripts/mkrootfs.sh" busybox "$T/rootfs" >"$T/logs/mkrootfs.log" 2>&1 ||
	die "mkrootfs: $(tail -n3 "$T/logs/mkrootfs.log")"
tar -C "$T/rootfs" -cf - . | isula import - busybox:e2e >/dev/null
isula images

# ---------------------------------------------------------------- kubelet
step "kubelet (node $node, cgroup root /$cgroot, kubelet port $kubelet_port)"
for h in /sys/fs/cgroup/*/; do
	# Every hierarchy: the cgroup v1 controllers, name=systemd and, on a hybrid host, the
	# unified one (runc joins it too).
	grep -qE " ${h%/} cgroup2? " /proc/self/mounts && mkdir "$h$cgroot"
done
cat >"$T/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This host is cgroup v1 (hybrid); kubelet 1.35+ refuses v1 unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$cgroot
address: 127.0.0.1
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $healthz_port
tlsCertFile: $T/pki/kubelet.crt
tlsPrivateKeyFile: $T/pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $T/pki/ca.crt}
authorization: {mode: AlwaysAllow}
podLogsDir: $T/pod-logs
failSwapOn: false
# Only what a run of a few minutes needs: no image garbage collection, eviction only when the
# node is nearly full.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%"}
syncFrequency: 10s
fileCheckFrequency: 10s
nodeStatusUpdateFrequency: 5s
EOF
# The working directory is a scratch one: the kubelet's log clean-up removes what it does not
# recognise in it when a runtime reports no log path.
(cd "$T/kubelet-cwd" && exec "$kubelet" --config "$T/kubelet-config.yaml" --kubeconfig "$T/kubelet.kubeconfig" \
	--root-dir "$T/kubelet" --container-runtime-endpoint "unix://$sock" \
	--hostname-override "$node" --v 2 >"$T/logs/kubelet.log" 2>&1 </dev/null) &
pids+=($!)
within=120 until_ok "node $node registered" k get node "$node"
within=120 until_ok "node $node Ready" k wait --for condition=Ready "node/$node" --timeout 2s

# ---------------------------------------------------------------- the pod
step "kubectl apply: pod ring (system container sys, host channel ring)"
cat >"$T/pod.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: ring
  annotations:
    io.isulad.container.sys.system-container: "true"
    io.isulad.container.sys.host-channel.ring: "$T/channels/ring:/ring:rw:16m"
spec:
  nodeName: $node
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 10
  containers:
  - name: sys
    image: busybox:e2e
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "echo e2e-kube: system container up; exec /sbin/init"]
EOF
k apply -f "$T/pod.yaml"
within=120 until_ok "pod ring Running and Ready" k wait --for condition=Ready pod/ring --timeout 2s
k get pod ring -o wide
ip=$(k get pod ring -o jsonpath='{.status.podIP}')
case $ip in "10.$a.$b."*) echo "pod IP $ip, from the pod network $subnet" ;;
*) die "pod IP \"$ip\", want one from the pod network $subnet" ;; esac

step "kubectl exec"
comm=$(k exec ring -- cat /proc/1/comm)
[ "$comm" = init ] || die "PID 1 of the system container is \"$comm\", want init"
echo "PID 1 in the container: $comm"

step "kubectl logs"
within=30 until_ok "kubectl logs shows the container's output" \
	bash -c "\"$kubectl\" --kubeconfig \"$T/admin.kubeconfig\" --cache-dir \"$T/kubectl-cache\" logs ring | grep -qx 'e2e-kube: system container up'"
k logs ring

step "host channel: written on the node, read in the pod"
mountpoint -q "$T/channels/ring" || die "the channel's host directory $T/channels/ring is not a mount point"
msg="hello from the node $(openssl rand -hex 8)"
echo "$msg" >"$T/channels/ring/msg"
got=$(k exec ring -- cat /ring/msg)
[ "$got" = "$msg" ] || die "read \"$got\" through the channel, wrote \"$msg\""
echo "read in the pod: $got"
k exec ring -- sh -c 'echo "hello from the pod $(hostname)" > /ring/reply'
echo "read on the node: $(cat "$T/channels/ring/reply")"
echo "the engine: $(isula ps --format '{{.Names}} {{.Status}}')"

step "kubectl port-forward: busybox httpd in the pod on its 127.0.0.1:8080 serves the channel"
k exec ring -- httpd -p 127.0.0.1:8080 -h /ring # it goes to the background in the container
free_port; fwd_port=$port
k port-forward --address 127.0.0.1 pod/ring "$fwd_port:8080" >"$T/logs/port-forward.log" 2>&1 </dev/null &
pf_pid=$!
within=30 until_ok "port-forward to the pod's 8080" curl -sf -o /dev/null "http://127.0.0.1:$fwd_port/msg"
got=$(curl -sf "http://127.0.0.1:$fwd_port/msg")
[ "$got" = "$msg" ] || die "through port-forward: \"$got\", want \"$msg\""
echo "GET /msg through port-forward: $got"
stop_pid "$pf_pid"

step "container restart: init ends, the kubelet makes attempt 1, which gets the channel anew"
# busybox init takes SIGTERM as "reboot" and exits; the kubelet restarts the container as a
# new one while it keeps the exited one, whose host path the new one needs.
k exec ring -- kill -TERM 1 || true
restarts() { [ "$(k get pod ring -o jsonpath='{.status.containerStatuses[0].restartCount}')" -ge 1 ]; }
within=120 until_ok "restart count 1" restarts
within=120 until_ok "pod ring Ready again" k wait --for condition=Ready pod/ring --timeout 2s
msg="hello again $(openssl rand -hex 8)"
within=30 until_ok "the channel mounted again" mountpoint -q "$T/channels/ring"
echo "$msg" >"$T/channels/ring/msg"
got=$(k exec ring -- cat /ring/msg)
[ "$got" = "$msg" ] || die "after the restart: read \"$got\" through the channel, wrote \"$msg\""
echo "after the restart, read in the pod: $got"

step "kubectl delete pod ring"
within=120 k delete pod ring --timeout 120s
within=120 until_ok "the pod's containers removed from the engine" \
	bash -c "[ -z \"\$(\"$bindir/isula\" -H unix://$sock ps -aq)\" ]"
within=120 until_ok "the channel's host directory removed" bash -c "! [ -e '$T/channels/ring' ]"
grep -qF " $T/channels/ring " /proc/self/mountinfo && die "the channel is still mounted"
echo "no container left in the engine, $T/channels/ring unmounted and removed"
step "PASS"
