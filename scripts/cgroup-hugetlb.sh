#!/bin/bash
# cgroup-hugetlb.sh move|restore|status
#
# On this kind of host (cgroup v1 "hybrid": v1 controllers under /sys/fs/cgroup/<ctrl>, and a
# cgroup2 hierarchy at /sys/fs/cgroup/unified that owns only the hugetlb controller) crun refuses
# to run containers. Moving hugetlb to its own v1 hierarchy makes crun work; runc works either way.
#
#   move     mount a v1 hierarchy with the hugetlb controller at /sys/fs/cgroup/hugetlb
#            (no-op if already there). Only possible while hugetlb is not enabled in any
#            cgroup2 subtree_control.
#   restore  undo it: remove the (empty) child cgroups below /sys/fs/cgroup/hugetlb, unmount it
#            and remove the directory; the kernel gives hugetlb back to the cgroup2 hierarchy.
#            Refuses while a cgroup below it still has processes.
#   status   print "moved" (mounted at /sys/fs/cgroup/hugetlb), "moved-unmounted" (hugetlb is on a
#            v1 hierarchy that is mounted nowhere in this mount namespace: left behind by an earlier
#            move whose restore could not remove a child cgroup, or mounted in another mount
#            namespace; crun works then too, it mounts the hierarchy itself), "not-moved", or
#            "n/a" if the host is not in this layout.
#
# Tests and benchmarks that need crun call `move` first and `restore` at the end. The engine itself
# never changes the host's cgroup layout. Needs root.
set -euo pipefail
prog=${0##*/}
dir=/sys/fs/cgroup/hugetlb
die() { echo "$prog: $*" >&2; exit 1; }

# hierarchy id of hugetlb in /proc/cgroups: 0 = on cgroup2 (or unused), else a v1 hierarchy
v1id() { awk '$1 == "hugetlb" {print $2}' /proc/cgroups 2>/dev/null || echo 0; }
moved() { [ "$(findmnt -n -o FSTYPE,OPTIONS "$dir" 2>/dev/null | grep -c hugetlb)" != 0 ]; }
hybrid() {
	[ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
		[ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]
}

# Removed cgroups can linger a while (dying, still referenced), keeping a detached hugetlb
# hierarchy alive after its umount. Mounting it again and unmounting it once they are gone
# lets the kernel release it; try for up to 30 s.
release_detached() {
	for _ in $(seq 1 30); do
		grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null && return 0
		tmp=$(mktemp -d /tmp/hugetlb-restore.XXXXXX)
		if mount -t cgroup -o hugetlb cgroup "$tmp" 2>/dev/null; then
			find "$tmp" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
			umount "$tmp"
		fi
		rmdir "$tmp"
		sleep 1
	done
}

case ${1:-} in
status)
	if moved; then echo moved
	elif [ "$(v1id)" != 0 ] && [ -n "$(v1id)" ]; then echo moved-unmounted
	elif hybrid && grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then echo not-moved
	else echo n/a; fi
	;;
move)
	if moved; then echo "$prog: hugetlb already on a v1 hierarchy at $dir" >&2; exit 0; fi
	hybrid || { echo "$prog: not a hybrid cgroup host; nothing to do" >&2; exit 0; }
	if [ "$(v1id)" != 0 ] && [ -n "$(v1id)" ]; then
		# Already a v1 hierarchy (mounted elsewhere or left behind): attach it here.
		mkdir -p "$dir"
		mount -t cgroup -o hugetlb cgroup "$dir" || die "could not mount the existing hugetlb v1 hierarchy"
		echo "$prog: existing hugetlb v1 hierarchy mounted at $dir" >&2
		exit 0
	fi
	grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null ||
		{ echo "$prog: hugetlb is not on the cgroup2 hierarchy; nothing to do" >&2; exit 0; }
	mkdir -p "$dir"
	if ! mount -t cgroup -o hugetlb cgroup "$dir"; then
		rmdir "$dir" 2>/dev/null || true
		die "could not mount hugetlb v1 hierarchy (is hugetlb enabled in a cgroup2 subtree_control?)"
	fi
	echo "$prog: hugetlb moved to a v1 hierarchy at $dir" >&2
	;;
restore)
	if ! moved; then
		[ -d "$dir" ] && ! mountpoint -q "$dir" && rmdir "$dir" 2>/dev/null || true
		if [ "$(v1id)" != 0 ] && [ -n "$(v1id)" ] && hybrid; then
			release_detached # left detached by an earlier restore
		fi
		echo "$prog: hugetlb is not moved; nothing to do" >&2
		exit 0
	fi
	busy=0
	# Child cgroups keep the hierarchy alive after umount: remove empty ones, deepest first.
	while IFS= read -r d; do
		[ "$d" = "$dir" ] && continue
		if [ -s "$d/cgroup.procs" ]; then
			echo "$prog: $d still has processes" >&2
			busy=1
			continue
		fi
		rmdir "$d" 2>/dev/null || { echo "$prog: cannot remove $d" >&2; busy=1; }
	done < <(find "$dir" -mindepth 1 -depth -type d)
	[ $busy = 0 ] || die "not restoring: cgroups below $dir are in use (stop the crun containers first)"
	umount "$dir"
	rmdir "$dir"
	# The controller goes back to cgroup2 once the v1 hierarchy is gone; that can take a moment.
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null && break
		sleep 0.2
	done
	release_detached
	if grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then
		echo "$prog: hugetlb restored to the cgroup2 hierarchy" >&2
	else
		echo "$prog: warning: hugetlb is still on a detached v1 hierarchy; run '$prog restore' again later" >&2
	fi
	;;
*)
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
