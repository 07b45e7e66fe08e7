#!/bin/sh
# build-rootfs.sh DEST — build a minimal busybox root filesystem at DEST.
#
# Uses the statically linked busybox from Debian's `busybox-static` package
# (/bin/busybox). Idempotent: re-running over an existing DEST refreshes it.
set -eu

BUSYBOX=${BUSYBOX:-/bin/busybox}

usage() { echo "usage: $0 DEST" >&2; exit 2; }
[ $# -eq 1 ] || usage
DEST=$1
[ -n "$DEST" ] || usage

if [ ! -x "$BUSYBOX" ]; then
	echo "$0: $BUSYBOX not found; install it with: apt-get install busybox-static" >&2
	exit 1
fi
# A dynamically linked busybox (package `busybox`) would not run inside the
# rootfs without its libraries.
if command -v file >/dev/null 2>&1 && file -L "$BUSYBOX" | grep -q 'dynamically linked'; then
	echo "$0: $BUSYBOX is dynamically linked; install the static one: apt-get install busybox-static" >&2
	exit 1
fi

mkdir -p "$DEST"
cd "$DEST"

mkdir -p bin sbin usr/bin usr/sbin proc sys dev tmp etc root home/user var/tmp var/log run
chmod 1777 tmp var/tmp
chmod 0700 root

# Copy (not link) so the rootfs does not depend on the host file; skip the
# copy when it is already identical.
if ! cmp -s "$BUSYBOX" bin/busybox 2>/dev/null; then
	rm -f bin/busybox
	cp "$BUSYBOX" bin/busybox
fi
chmod 0755 bin/busybox

# One symlink per applet. `busybox --list` gives bare names; put them all in
# /bin (PATH covers it) — /bin/sh included.
for applet in $("$BUSYBOX" --list); do
	[ "$applet" = busybox ] && continue
	ln -sfn busybox "bin/$applet"
done
ln -sfn busybox bin/sh

cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
tty:x:5:
user:x:1000:
nogroup:x:65534:
GROUP
chmod 0644 etc/passwd etc/group
echo busybox > etc/hostname
chown 1000:1000 home/user 2>/dev/null || true
