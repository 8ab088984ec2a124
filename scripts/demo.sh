#!/bin/bash
# demo.sh: from a fresh checkout to a running system container with a host channel.
#
#   build and install isula/isulad/isulad-shim, make a busybox rootfs at /root/myrootfs, start
#   isulad in the background if it is not running, run a system container with a 32M host
#   channel /testdir, write a file on the host and read it inside, then remove the container.
#
# Run as root from the repository (make demo). Environment: ROOTFS (default /root/myrootfs),
# ISULAD_SOCK (default /var/run/isulad.sock), KEEP=1 to leave the container running.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:/usr/local/bin:$PATH

ROOTFS=${ROOTFS:-/root/myrootfs}
SOCK=${ISULAD_SOCK:-/var/run/isulad.sock}
LOG=${ISULAD_LOG:-/var/log/isulad-demo.log}
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root" >&2; exit 1; }

step "packages (runc, crun, busybox-static, gcc) if missing"
need=()
command -v runc >/dev/null || need+=(runc)
command -v crun >/dev/null || need+=(crun)
[ -x /bin/busybox ] || need+=(busybox-static)
# the isula front is C, linked static (scripts/build-front.sh)
command -v cc >/dev/null && [ -n "$(find /usr/lib -name libc.a -print -quit 2>/dev/null)" ] || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
else
	echo "all there"
fi
command -v go >/dev/null || { echo "demo.sh: Go is needed to build (/usr/local/go/bin/go)" >&2; exit 1; }

step "build and install"
make --no-print-directory install

step "busybox rootfs at $ROOTFS"
scripts/mkrootfs.sh busybox "$ROOTFS"

step "isulad"
if isula -H "unix://$SOCK" version >/dev/null 2>&1; then
	echo "isulad is already running on $SOCK"
else
	echo "starting isulad in the background (log: $LOG)"
	nohup isulad -H "unix://$SOCK" >>"$LOG" 2>&1 </dev/null &
	for _ in $(seq 1 100); do
		isula -H "unix://$SOCK" version >/dev/null 2>&1 && break
		sleep 0.1
	done
	isula -H "unix://$SOCK" version >/dev/null || { tail -n 20 "$LOG" >&2; exit 1; }
	echo "isulad started (pid $!)"
fi
# Show each command as a user would type it, then run it against our daemon.
isula() {
	echo "+ isula $*" >&2
	command isula -H "unix://$SOCK" "$@"
}

step "a system container with a host channel"
isula rm -f demo >/dev/null 2>&1 || true
isula run -d --name demo --host-channel /testdir:/testdir:rw:32M --system-container \
	--external-rootfs "$ROOTFS" none init
echo "+ echo hello > /testdir/hello   # on the host" >&2
echo "hello from the host, $(date)" > /testdir/hello
isula exec demo cat /testdir/hello
echo "+ # and the other way: written inside, read on the host" >&2
isula exec demo sh -c 'echo "hello from the container $(hostname)" > /testdir/reply'
echo "+ cat /testdir/reply   # on the host" >&2
cat /testdir/reply
echo "+ # the channel holds 32M at most: dd inside stops with ENOSPC" >&2
isula exec demo sh -c 'dd if=/dev/zero of=/testdir/fill bs=1024 count=64K 2>&1 | tail -n 3' || true
isula inspect -f '{{json .HostConfig.HostChannel}} mounted={{(index .HostChannels 0).Mounted}} used={{(index .HostChannels 0).UsedBytes}}' demo
isula exec demo ps
isula ps

if [ "${KEEP:-0}" = 1 ]; then
	echo "container 'demo' left running; remove it with: isula rm -f demo"
else
	step "clean up"
	isula rm -f demo
fi
echo "demo done"
