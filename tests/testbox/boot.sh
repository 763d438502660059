#!/bin/sh
# Boot script of the mydaemon test box (see mod.rs). Runs as PID 1 of fresh
# PID/mount/UTS/IPC/net/cgroup namespaces (the child of `unshare --fork`),
# builds a throwaway root and execs systemd as PID 1.
#   $1 = private directory of this box (host temp dir, a tmpfs is mounted on it)
#   $2 = binary to bind-mount at /usr/bin/mydaemon
#   $3 = hostname
#   $4 = host directory with files to copy into the root (see mod.rs)
# Nothing written inside reaches the host: the root is an overlay with a tmpfs
# upper layer, and every other writable mount is a fresh tmpfs.
set -eu
D=$1
BIN=$2
HOST=$3
PREP=$4

# Keep every mount private to this namespace.
mount --make-rprivate /
mount -t tmpfs -o mode=0700 testbox "$D"
mkdir "$D/upper" "$D/work" "$D/root"
mount -t overlay testbox-root -o "lowerdir=/,upperdir=$D/upper,workdir=$D/work" "$D/root"
R=$D/root

mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs -o mode=0755,nosuid,nodev,size=20% tmpfs "$R/run"
mount -t tmpfs -o mode=1777,nosuid,nodev,size=20% tmpfs "$R/tmp"

# A minimal private /dev.
mount -t tmpfs -o mode=0755,nosuid,size=4m tmpfs "$R/dev"
mknod -m 666 "$R/dev/null" c 1 3
mknod -m 666 "$R/dev/zero" c 1 5
mknod -m 666 "$R/dev/full" c 1 7
mknod -m 666 "$R/dev/random" c 1 8
mknod -m 666 "$R/dev/urandom" c 1 9
mknod -m 666 "$R/dev/tty" c 5 0
mkdir -m 755 "$R/dev/pts" "$R/dev/mqueue"
mkdir -m 1777 "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/dev/shm"
mount -t mqueue mqueue "$R/dev/mqueue"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
# The console is the box's log file on the host (our stdout), for diagnostics.
: > "$R/dev/console"
mount --bind /proc/self/fd/1 "$R/dev/console"

# The binary under test.
: > "$R/usr/bin/mydaemon"
mount --bind -o ro "$BIN" "$R/usr/bin/mydaemon"

# Identity of the box and masks of the units the tests don't need (prepared by
# mod.rs in $4: etc/hostname, etc/machine-id, etc/systemd/system/*), in one copy.
hostname "$HOST"
cp -R --remove-destination "$PREP/etc/." "$R/etc/"
# Their wants (getty, timers, postgresql) go too; the box boots to multi-user.target.
# Its journal is "persistent" in a fresh, empty /var/log/journal of the overlay (the
# host's files hidden, everything in the tmpfs upper layer), so that journald splits
# out per-user journals that users in the box may read, as on a real host.
E=$R/etc/systemd/system
rm -rf "$E/getty.target.wants" "$E/timers.target.wants" \
    "$E/multi-user.target.wants/postgresql.service" "$R/var/log/journal"
mkdir -m 2755 "$R/var/log/journal"
chgrp systemd-journal "$R/var/log/journal" 2>/dev/null || true

cd "$R"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot

exec env -i container=mydaemon-testbox PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /lib/systemd/systemd --show-status=no
