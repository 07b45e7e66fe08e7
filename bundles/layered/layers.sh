#!/bin/sh
# layers.sh up|down|demo|status — container root filesystems made of layers.
#
#   base  (read-only lower layer)  the busybox rootfs, built by ../build-rootfs.sh
#   app   (read-only lower layer)  /app/hello.sh and a changed /etc/motd
#   one/, two/                     per-container upperdir + workdir, overlay
#                                  mounted (lowerdir=app:base) at <ctr>/rootfs,
#                                  with <ctr>/config.json next to it => a bundle
#
# Environment:
#   RUNTIME   runtime binary (default: pyruntime — the repo's .venv/bin/pyruntime
#             or one on PATH; if there is none, runc). runc/crun/pyruntime all
#             work; crun is run in a private mount namespace without
#             /sys/fs/cgroup/unified (crun 1.8 refuses the hybrid layout).
#   WORK      work folder (default: bundles/layered/work, git-ignored)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUNDLES=$(dirname "$HERE")
REPO=$(dirname "$BUNDLES")
WORK=${WORK:-$HERE/work}
CONTAINERS="one two"
ID_PREFIX=layered-

die() { echo "layers.sh: $*" >&2; exit 1; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ "$(id -u)" -eq 0 ] || die "must run as root (overlay mounts, containers)"

pick_runtime() {
	if [ -n "${RUNTIME:-}" ]; then
		command -v "$RUNTIME" >/dev/null 2>&1 || die "RUNTIME=$RUNTIME not found"
		RT=$(command -v "$RUNTIME")
	elif [ -x "$REPO/.venv/bin/pyruntime" ]; then
		RT=$REPO/.venv/bin/pyruntime
	elif command -v pyruntime >/dev/null 2>&1; then
		RT=$(command -v pyruntime)
	elif command -v runc >/dev/null 2>&1; then
		RT=$(command -v runc)
		echo "layers.sh: pyruntime not found, falling back to $RT" >&2
	else
		die "no runtime: set RUNTIME=/path/to/runtime"
	fi
	RT_NAME=$(basename "$RT")
	# crun 1.8 rejects ociVersion 1.3.0 ("unknown version specified").
	case $RT_NAME in crun) OCI_VERSION=1.0.2 ;; *) OCI_VERSION=1.3.0 ;; esac
}

# rt ARGS... — run the runtime with its own state root under $WORK.
rt() {
	case $RT_NAME in
	crun)
		unshare --mount --propagation private sh -c \
			'umount /sys/fs/cgroup/unified 2>/dev/null || true; exec "$@"' \
			sh "$RT" --root "$WORK/state" "$@" ;;
	*)
		"$RT" --root "$WORK/state" "$@" ;;
	esac
}

is_mounted() { # PATH — exact mount point in our mount table?
	awk -v p="$1" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo
}

write_config() { # NAME DEST
	cat > "$2" <<JSON
{
	"ociVersion": "$OCI_VERSION",
	"process": {
		"terminal": false,
		"user": { "uid": 0, "gid": 0 },
		"args": [ "/app/hello.sh" ],
		"env": [
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"CONTAINER=$1"
		],
		"cwd": "/",
		"capabilities": {
			"bounding": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"effective": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"permitted": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ],
			"ambient": [ "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE" ]
		},
		"rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
		"noNewPrivileges": true
	},
	"root": { "path": "rootfs", "readonly": false },
	"hostname": "$1",
	"mounts": [
		{ "destination": "/proc", "type": "proc", "source": "proc" },
		{ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
		  "options": [ "nosuid", "strictatime", "mode=755", "size=65536k" ] },
		{ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
		  "options": [ "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5" ] },
		{ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
		  "options": [ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k" ] },
		{ "destination": "/sys", "type": "sysfs", "source": "sysfs",
		  "options": [ "nosuid", "noexec", "nodev", "ro" ] }
	],
	"linux": {
		"namespaces": [
			{ "type": "pid" }, { "type": "network" }, { "type": "ipc" },
			{ "type": "uts" }, { "type": "mount" }
		],
		"maskedPaths": [ "/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware" ],
		"readonlyPaths": [ "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger" ]
	}
}
JSON
}

up() {
	pick_runtime
	mkdir -p "$WORK/layers" "$WORK/state"

	# Layer 1: base — the plain busybox rootfs.
	"$BUNDLES/build-rootfs.sh" "$WORK/layers/base"

	# Layer 2: app — only the files that differ from / add to base.
	app=$WORK/layers/app
	mkdir -p "$app/app" "$app/etc"
	echo "Welcome to the layered demo (this /etc/motd comes from the app layer)" > "$app/etc/motd"
	cat > "$app/app/hello.sh" <<'SH'
#!/bin/sh
# Runs in each container: write a file, then look at what is visible.
echo "[$CONTAINER] motd: $(cat /etc/motd)"
echo "written by $CONTAINER at $(date)" > "/written-by-$CONTAINER"
echo "$CONTAINER was here" >> /etc/motd          # modifies a lower-layer file => copy-up
echo "[$CONTAINER] files matching /written-by-*: $(ls /written-by-* 2>/dev/null | tr '\n' ' ')"
echo "[$CONTAINER] /etc/motd is now: $(tr '\n' '|' < /etc/motd)"
SH
	chmod 0755 "$app/app/hello.sh"

	# Per container: upper (its writes), work (overlayfs scratch), rootfs (merged).
	for c in $CONTAINERS; do
		d=$WORK/containers/$c
		mkdir -p "$d/upper" "$d/work" "$d/rootfs"
		if ! is_mounted "$d/rootfs"; then
			mount -t overlay "overlay-$c" \
				-o "lowerdir=$app:$WORK/layers/base,upperdir=$d/upper,workdir=$d/work" \
				"$d/rootfs"
		fi
		write_config "$c" "$d/config.json"
	done
	echo "layers up in $WORK (runtime: $RT)"
	grep " $WORK/" /proc/self/mountinfo | awk '{ print "  mounted:", $5 }'
}

down() {
	pick_runtime 2>/dev/null || true
	if [ -n "${RT:-}" ] && [ -d "$WORK/state" ]; then
		for c in $CONTAINERS; do
			rt delete -f "$ID_PREFIX$c" >/dev/null 2>&1 || true
		done
	fi
	for c in $CONTAINERS; do
		d=$WORK/containers/$c/rootfs
		if is_mounted "$d"; then umount "$d" || umount -l "$d"; fi
	done
	if grep -q " $WORK/" /proc/self/mountinfo; then
		grep " $WORK/" /proc/self/mountinfo >&2
		die "mounts still present under $WORK; not removing it"
	fi
	rm -rf "$WORK"
	echo "layers down: no mounts left under $WORK, work folder removed"
}

demo() {
	# Start from empty upper layers so the output is the same every time.
	down >/dev/null
	up
	for c in $CONTAINERS; do
		say "$RT_NAME run $ID_PREFIX$c  (bundle $WORK/containers/$c)"
		(cd "$WORK/containers/$c" && rt run "$ID_PREFIX$c")
	done

	say "what each layer holds, seen from the host"
	for c in $CONTAINERS; do
		echo "upper of $c (only $c's changes):"
		(cd "$WORK/containers/$c/upper" && find . -mindepth 1 | sort | sed 's/^/    /')
	done
	fail=0
	for f in written-by-one written-by-two; do
		for l in base app; do
			if [ -e "$WORK/layers/$l/$f" ]; then echo "FAIL: $f leaked into $l layer"; fail=1; fi
		done
	done
	[ -e "$WORK/containers/one/rootfs/written-by-two" ] && { echo "FAIL: two's write visible to one"; fail=1; }
	[ -e "$WORK/containers/two/rootfs/written-by-one" ] && { echo "FAIL: one's write visible to two"; fail=1; }
	grep -q 'was here' "$WORK/layers/app/etc/motd" && { echo "FAIL: app layer motd modified"; fail=1; }
	[ -e "$WORK/layers/base/etc/motd" ] && { echo "FAIL: base layer gained /etc/motd"; fail=1; }
	echo "base layer /written-by-*: $(ls "$WORK/layers/base/"written-by-* 2>/dev/null || echo none)"
	echo "app  layer /etc/motd:     $(cat "$WORK/layers/app/etc/motd")"
	if [ $fail -eq 0 ]; then
		echo "OK: each container saw only its own writes; base and app layers are unchanged"
	fi
	echo "(run '$0 down' to unmount and remove $WORK)"
	return $fail
}

case ${1:-} in
up) up ;;
down) down ;;
demo) demo ;;
status) grep " $WORK/" /proc/self/mountinfo || echo "nothing mounted under $WORK" ;;
*) echo "usage: $0 up|down|demo|status" >&2; exit 2 ;;
esac
