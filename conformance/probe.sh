#!/bin/sh
# Conformance probe, run INSIDE the container by busybox sh.
#
# Prints what the container process sees as key=value lines (a key may repeat).
# It reads /proc/$$ -- the shell itself, i.e. the very process the runtime
# exec'd -- and uses shell builtins for values that an execve() would change
# (capabilities of uid 0 are recomputed on every exec, so `cat /proc/self/status`
# would report the capabilities of cat, not of the container process).
#
# Arguments: sysctl names (dotted) whose value should be reported.
p=/proc/$$
sysctls="$*"

while IFS= read -r line; do
    case "$line" in
        Uid:*|Gid:*|Groups:*|Cap*:*|NoNewPrivs:*|Seccomp:*|Umask:*)
            k=${line%%:*}
            v=${line#*:}
            set -- $v
            echo "$k=$*"
            ;;
    esac
done < $p/status

echo "umask=$(umask)"
echo "cwd=$(pwd -P)"
tr '\0' '\n' < $p/environ | while IFS= read -r e; do echo "env=$e"; done
read -r h < /proc/sys/kernel/hostname && echo "hostname=$h"
read -r d < /proc/sys/kernel/domainname && echo "domainname=$d"
while IFS= read -r l; do echo "limit=$l"; done < $p/limits
for n in $p/ns/*; do echo "ns.${n##*/}=$(readlink "$n")"; done
while IFS= read -r l; do echo "mount=$l"; done < $p/mountinfo
for f in $p/fd/*; do echo "fd=${f##*/} $(readlink "$f")"; done
read -r o < $p/oom_score_adj && echo "oom_score_adj=$o"
for s in $sysctls; do
    f=/proc/sys/$(echo "$s" | tr . /)
    v="<unreadable>"
    [ -r "$f" ] && read -r v < "$f"   # read may return 1 at EOF of proc files
    echo "sysctl.$s=$v"
done
echo "probe=done"
