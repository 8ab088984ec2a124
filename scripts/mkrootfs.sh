#!/bin/bash
# mkrootfs.sh - make a root filesystem for isulad system containers.
#
#   scripts/mkrootfs.sh busybox DEST [--force]
#   scripts/mkrootfs.sh debian  DEST [--force] [--cache DIR | --no-cache] [--mirror URL]
#            (the mirror defaults to the first Debian archive of the machine's apt sources)
#   common: [--shift N]  own every file by uid/gid + N (for --user-remap N:N:65536)
#
# busybox: /bin/busybox from the busybox-static package, applet symlinks, passwd/group, and
#          /sbin/init (busybox init) whose /etc/inittab gives a root shell on the console.
#          Takes a second.
# debian:  debootstrap --variant=minbase --include=systemd,systemd-sysv bookworm, then set up for
#          systemd as PID 1 in a container: root autologin on the console (console-getty), no root
#          password, empty machine-id, units that cannot work in a container masked.
#          debootstrap takes ~1.5 min and 240 MB; its output is cached as a tarball
#          (default /var/cache/isulad-rootfs/debian.tar, or $ISULAD_ROOTFS_CACHE/debian.tar, or
#          --cache DIR) and later builds only unpack it (~5 s). The container set-up is applied on
#          top of the cached tarball each time, so changing it here needs no new debootstrap.
#
# --shift N: for a user namespace that maps container root to host uid/gid N, every file's owner
# and group are moved up by N (setuid/setgid bits kept), as the container's root must own its
# files (systemd degrades otherwise: sysusers, utmp, tmpfiles fail with EPERM/EACCES).
#
# Idempotent: DEST/.isulad-rootfs records the kind and set-up version; if it matches, nothing is
# done. A DEST that exists, is not empty and has no (or another) marker is refused unless --force,
# which deletes it first. The tree is built beside DEST and renamed into place, so DEST is never
# seen half-made. Concurrent runs for the same DEST (or sharing the cache) are serialised by flock.
#
# Needs root. Exit 0 on success; the last line printed is DEST.
set -euo pipefail

# Bump when the set-up applied to a kind changes, so existing trees are rebuilt.
BUSYBOX_VERSION=1
DEBIAN_VERSION=3
SUITE=bookworm
MARKER=.isulad-rootfs

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }
log() { echo "$prog: $*" >&2; }
usage() {
	sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

shift_by=0 kind= dest= force=0 cachedir=${ISULAD_ROOTFS_CACHE:-/var/cache/isulad-rootfs} usecache=1 mirror=${MIRROR:-}
while [ $# -gt 0 ]; do
	case $1 in
	--force|-f) force=1 ;;
	--cache) [ $# -ge 2 ] || usage; cachedir=$2; shift ;;
	--cache=*) cachedir=${1#--cache=} ;;
	--no-cache) usecache=0 ;;
	--shift) [ $# -ge 2 ] || usage; shift_by=$2; shift ;;
	--shift=*) shift_by=${1#--shift=} ;;
	--mirror) [ $# -ge 2 ] || usage; mirror=$2; shift ;;
	--mirror=*) mirror=${1#--mirror=} ;;
	-h|--help) usage ;;
	-*) die "unknown option $1" ;;
	*)
		if [ -z "$kind" ]; then kind=$1
		elif [ -z "$dest" ]; then dest=$1
		else die "too many arguments"; fi ;;
	esac
	shift
done
[ -n "$kind" ] && [ -n "$dest" ] || usage
case $kind in
busybox) want="busybox v$BUSYBOX_VERSION" ;;
debian) want="debian-$SUITE v$DEBIAN_VERSION" ;;
*) die "kind must be busybox or debian, not '$kind'" ;;
esac
case $shift_by in ''|*[!0-9]*) die "--shift needs a number" ;; esac
[ "$shift_by" -le 4294901760 ] || die "--shift too large"
[ "$shift_by" = 0 ] || want="$want shift=$shift_by"
[ "$(id -u)" = 0 ] || die "must run as root"

# Absolute, normalised DEST (the last component need not exist yet).
case $dest in /*) ;; *) dest=$PWD/$dest ;; esac
parent=$(dirname "$dest")
mkdir -p "$parent"
dest=$(cd "$parent" && pwd -P)/$(basename "$dest")
case $dest in
/|/bin|/boot|/dev|/etc|/home|/lib|/lib64|/proc|/root|/run|/sbin|/sys|/tmp|/usr|/var|/var/lib|/var/cache)
	die "refusing DEST $dest" ;;
esac

is_complete() { [ -f "$dest/$MARKER" ] && [ "$(cat "$dest/$MARKER")" = "$want" ]; }

# Serialise builds of one DEST.
lockdir=/run/lock
[ -d "$lockdir" ] || lockdir=/tmp
exec 9>"$lockdir/isulad-mkrootfs.$(printf %s "$dest" | md5sum | cut -c1-16).lock"
flock 9

if is_complete; then
	log "$dest already holds a $want rootfs"
	echo "$dest"
	exit 0
fi
if [ -e "$dest" ] && [ ! -d "$dest" ]; then
	die "$dest exists and is not a directory"
fi
if [ -d "$dest" ] && [ -n "$(ls -A "$dest")" ] && [ $force = 0 ]; then
	if [ -f "$dest/$MARKER" ]; then
		die "$dest holds '$(cat "$dest/$MARKER")', not '$want'; use --force to rebuild it"
	fi
	die "$dest is not empty and is not a rootfs made by $prog; use --force to replace it"
fi
if mountpoint -q "$dest" 2>/dev/null || grep -qs " $dest/" /proc/self/mountinfo; then
	die "$dest (or something below it) is a mount point; is a container using it?"
fi

tmp=$(mktemp -d "$parent/.$(basename "$dest").new.XXXXXX")
cleanup() { [ -n "${tmp:-}" ] && [ -d "$tmp" ] && rm -rf --one-file-system "$tmp"; true; }
trap cleanup EXIT
chmod 755 "$tmp"

# ---------------------------------------------------------------- busybox
build_busybox() {
	local r=$1 bb applet
	bb=$(command -v busybox || true)
	[ -x /bin/busybox ] && bb=/bin/busybox
	[ -n "$bb" ] || die "busybox not found: apt-get install busybox-static"
	if ldd "$bb" >/dev/null 2>&1; then
		die "$bb is dynamically linked; install busybox-static"
	fi
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc/init.d,root,proc,sys,dev,run,tmp,var/log,var/run,home,mnt}
	chmod 1777 "$r/tmp"
	chmod 700 "$r/root"
	cp "$bb" "$r/bin/busybox"
	chmod 755 "$r/bin/busybox"
	for applet in $("$r/bin/busybox" --list-full); do
		[ "$applet" = bin/busybox ] && continue
		[ -e "$r/$applet" ] || ln -s /bin/busybox "$r/$applet"
	done
	# /sbin/init must be busybox init even if the applet list ever lacks it.
	[ -e "$r/sbin/init" ] || ln -s /bin/busybox "$r/sbin/init"

	cat >"$r/etc/passwd" <<-'EOF'
	root:x:0:0:root:/root:/bin/sh
	daemon:x:1:1:daemon:/usr/sbin:/bin/false
	nobody:x:65534:65534:nobody:/nonexistent:/bin/false
	EOF
	cat >"$r/etc/group" <<-'EOF'
	root:x:0:
	daemon:x:1:
	tty:x:5:
	nogroup:x:65534:
	EOF
	cat >"$r/etc/shadow" <<-'EOF'
	root::19000:0:99999:7:::
	daemon:*:19000:0:99999:7:::
	nobody:*:19000:0:99999:7:::
	EOF
	chmod 640 "$r/etc/shadow"
	echo busybox >"$r/etc/hostname"
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
	: >"$r/etc/resolv.conf"
	cat >"$r/etc/profile" <<-'EOF'
	export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	export PS1='\h:\w\$ '
	EOF

	# busybox init reads /etc/inittab. In a container:
	#  - SIGTERM to init (what `isula stop` sends) and the `reboot` applet both mean "reboot":
	#    init runs the shutdown actions, kills everything, calls reboot(2), and the kernel ends
	#    the pid namespace's init with SIGHUP (exit 129). `poweroff`/`halt` end it with SIGINT
	#    (exit 130).
	#  - the console shell is only started when stdin is a terminal or a pipe (-it / -i); with
	#    stdin on /dev/null (detached) it would exit at once and be respawned every second.
	cat >"$r/etc/inittab" <<-'EOF'
	# /etc/inittab for busybox init (made by isulad scripts/mkrootfs.sh)
	::sysinit:/etc/init.d/rcS
	# root shell on the console (see /etc/init.d/console)
	::respawn:/etc/init.d/console
	::ctrlaltdel:/sbin/reboot
	::shutdown:/bin/echo "busybox init: shutting down"
	::shutdown:/bin/sync
	EOF
	cat >"$r/etc/init.d/rcS" <<-'EOF'
	#!/bin/sh
	# The container runtime has already mounted /proc, /sys and /dev.
	[ -s /etc/hostname ] && [ "$(hostname)" = "" ] && hostname -F /etc/hostname
	exit 0
	EOF
	cat >"$r/etc/init.d/console" <<-'EOF'
	#!/bin/sh
	# Root login shell on the console when there is one to talk to (a terminal, or stdin as a
	# pipe for `run -i`); otherwise (detached, stdin is /dev/null) just wait, so init does not
	# respawn a shell that exits immediately.
	if [ -t 0 ] || [ -p /proc/self/fd/0 ] || [ -S /proc/self/fd/0 ]; then
		cd /root
		exec /bin/sh -l
	fi
	exec /bin/sleep 2147483647
	EOF
	chmod 755 "$r/etc/init.d/rcS" "$r/etc/init.d/console"
}

# ---------------------------------------------------------------- debian
find_mirror() {
	local f u
	[ -n "$mirror" ] && { echo "$mirror"; return; }
	# deb822 sources first, then one-line ones; the first Debian (not -security) archive wins.
	for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		u=$(grep -hoE '(URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)https?://[^[:space:]]+/debian/?([[:space:]]|$)' "$f" 2>/dev/null |
			grep -v -- '-security' | grep -oE 'https?://[^[:space:]]+' | head -n1) || true
		[ -n "$u" ] && { echo "${u%/}"; return; }
	done
	die "no Debian mirror in /etc/apt/sources.list or /etc/apt/sources.list.d/*.list|*.sources: give one with --mirror URL (or MIRROR=URL)"
}

debootstrap_into() {
	local r=$1 m
	command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
	m=$(find_mirror) || exit 1
	log "debootstrap --variant=minbase --include=systemd,systemd-sysv $SUITE from $m (about 1.5 minutes)"
	if ! debootstrap --variant=minbase --include=systemd,systemd-sysv "$SUITE" "$r" "$m" >"$r.debootstrap.log" 2>&1; then
		tail -n 30 "$r.debootstrap.log" >&2
		[ -f "$r/debootstrap/debootstrap.log" ] && tail -n 30 "$r/debootstrap/debootstrap.log" >&2
		rm -f "$r.debootstrap.log"
		die "debootstrap failed"
	fi
	rm -f "$r.debootstrap.log"
	# Generic clean-up: nothing host- or build-specific in the cached tree.
	rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/debootstrap
}

setup_debian() {
	local r=$1 u
	# No root password: console login (and su) for root without a prompt.
	sed -i 's/^root:[^:]*:/root::/' "$r/etc/shadow"
	# Empty machine-id: systemd makes a transient one per boot (each container its own), and an
	# empty file does not count as "first boot" (no systemd-firstboot prompts).
	: >"$r/etc/machine-id"
	rm -f "$r/var/lib/dbus/machine-id"
	echo debian >"$r/etc/hostname"
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
	[ -s "$r/etc/fstab" ] || echo '# empty: the container runtime does the mounts' >"$r/etc/fstab"

	# Root autologin on the console. In a container (container= set) systemd's getty generator
	# starts console-getty.service on /dev/console instead of tty/serial gettys.
	mkdir -p "$r/etc/systemd/system/console-getty.service.d" "$r/etc/systemd/system/container-getty@.service.d"
	cat >"$r/etc/systemd/system/console-getty.service.d/autologin.conf" <<-'EOF'
	# made by isulad scripts/mkrootfs.sh: root shell on the console without a password prompt
	[Service]
	ExecStart=
	ExecStart=-/sbin/agetty -o '-p -f -- \\u' --autologin root --noclear --keep-baud - 115200,38400,9600 $TERM
	EOF
	cat >"$r/etc/systemd/system/container-getty@.service.d/autologin.conf" <<-'EOF'
	[Service]
	ExecStart=
	ExecStart=-/sbin/agetty -o '-p -f -- \\u' --autologin root --noclear - $TERM
	EOF
	for u in serial-getty@.service; do
		mkdir -p "$r/etc/systemd/system/$u.d"
		cat >"$r/etc/systemd/system/$u.d/autologin.conf" <<-'EOF'
		[Service]
		ExecStart=
		ExecStart=-/sbin/agetty -o '-p -f -- \\u' --autologin root --keep-baud 115200,57600,38400,9600 - $TERM
		EOF
	done

	# Units that cannot work in a container (no hardware, no kernel tunables, read-only /sys,
	# a cgroup filesystem and /dev provided by the runtime) are masked so the system reaches
	# "running" with no failed unit.
	for u in $DEBIAN_MASK; do
		ln -sf /dev/null "$r/etc/systemd/system/$u"
	done
	# /tmp is a tmpfs mounted by the runtime. Without CAP_SYS_ADMIN systemd cannot unmount it at
	# shutdown and logs "Failed unmounting tmp.mount"; without default dependencies the mount
	# unit does not conflict with umount.target, so shutdown leaves it alone (the kernel drops
	# the mount with the container's mount namespace).
	mkdir -p "$r/etc/systemd/system/tmp.mount.d"
	cat >"$r/etc/systemd/system/tmp.mount.d/isulad.conf" <<-'EOF'
	[Unit]
	DefaultDependencies=no
	EOF
	# Keep the journal small and in /run (the rootfs may be shared or read-only).
	mkdir -p "$r/etc/systemd/journald.conf.d"
	cat >"$r/etc/systemd/journald.conf.d/isulad.conf" <<-'EOF'
	[Journal]
	Storage=auto
	SystemMaxUse=16M
	RuntimeMaxUse=16M
	EOF
}
# See docs/notes/system-containers.md for why each is masked.
DEBIAN_MASK="systemd-firstboot.service"

build_debian() {
	local r=$1 tarball
	tarball=$cachedir/debian.tar
	if [ $usecache = 1 ]; then
		mkdir -p "$cachedir"
		exec 8>"$cachedir/.debian.lock"
		flock 8
		if [ -s "$tarball" ]; then
			log "unpacking cached debootstrap output $tarball"
			tar -C "$r" --numeric-owner -xpf "$tarball"
		else
			debootstrap_into "$r"
			log "saving debootstrap output to $tarball"
			tar -C "$r" --numeric-owner -cpf "$tarball.tmp.$$" . && mv -f "$tarball.tmp.$$" "$tarball"
		fi
		flock -u 8
		exec 8>&-
	else
		debootstrap_into "$r"
	fi
	setup_debian "$r"
}

# Move every owner and group up by $2, keeping setuid/setgid bits (chown clears them).
shift_ids() {
	local r=$1 off=$2 ug u g
	find "$r" -xdev -perm /6000 ! -type l -printf '%m %p\0' >"$r.suid"
	find "$r" -xdev -printf '%U:%G\n' | sort -u | while IFS= read -r ug; do
		u=${ug%%:*} g=${ug##*:}
		find "$r" -xdev -uid "$u" -gid "$g" -print0 | xargs -0r chown -h "$((u + off)):$((g + off))"
	done
	while IFS= read -r -d '' ug; do chmod "${ug%% *}" "${ug#* }"; done <"$r.suid"
	rm -f "$r.suid"
}

case $kind in
busybox) build_busybox "$tmp" ;;
debian) build_debian "$tmp" ;;
esac
echo "$want" >"$tmp/$MARKER"
if [ "$shift_by" != 0 ]; then
	log "shifting owners by $shift_by"
	shift_ids "$tmp" "$shift_by"
fi

# Put it in place: replace an empty dir (or, with --force, anything) at DEST.
if [ -d "$dest" ]; then
	if mountpoint -q "$dest" 2>/dev/null; then
		# DEST itself is a mount point: fill it instead of renaming over it.
		rm -rf --one-file-system "${dest:?}"/..?* "${dest:?}"/.[!.]* "${dest:?}"/* 2>/dev/null || true
		tar -C "$tmp" -cpf - . | tar -C "$dest" -xpf -
	else
		old=$(mktemp -d "$parent/.$(basename "$dest").old.XXXXXX")
		mv "$dest" "$old/x"
		mv "$tmp" "$dest"
		rm -rf --one-file-system "$old"
	fi
else
	mv "$tmp" "$dest"
fi
tmp=
log "made $want rootfs at $dest"
echo "$dest"
