#!/bin/sh
# PID 1 of the kernel-VM tier's initramfs (busybox). Loads the modules listed
# in /modules.list, mounts the host root read-only (9p tag "hostroot") at
# /host and the writable share (tag "share") over the same path it has on the
# host, then runs the guest script chrooted into the host root, so host-built
# binaries and the host's Mesa run unchanged. The script's exit status goes to
# the host twice: written to $share/guest-status and through isa-debug-exit.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "vm-init: kernel $(uname -r)"
for m in $(cat /modules.list); do
    insmod "/lib/modules/$m" || echo "vm-init: insmod $m failed"
done
[ -f /vm.conf ] && . /vm.conf || { echo "vm-init: no /vm.conf"; poweroff -f; }   # VM_SHARE, VM_SCRIPT
opts=trans=virtio,version=9p2000.L,msize=512000,cache=none
mount -t 9p -o "$opts,ro" hostroot /host || { echo "vm-init: cannot mount host root"; poweroff -f; }
mount -t 9p -o "$opts" share "/host$VM_SHARE" || { echo "vm-init: cannot mount share"; poweroff -f; }
mount --rbind /dev /host/dev
mount -t proc proc /host/proc
mount --rbind /sys /host/sys
mount -t debugfs debugfs /host/sys/kernel/debug 2>/dev/null
# Scratch space comes from a tmpfs under /run (TMPDIR, HOME, XDG_CACHE_HOME),
# not a tmpfs over /tmp: a checkout or share under the host's /tmp must stay
# visible (CI may clone there).
mount -t tmpfs -o mode=755 run /host/run
mkdir -p /host/run/tmp && chmod 1777 /host/run/tmp
mkdir -p /host/dev/shm && mount -t tmpfs -o mode=1777 shm /host/dev/shm
echo "vm-init: running the guest command"
chroot /host /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/run/tmp TMPDIR=/run/tmp XDG_CACHE_HOME=/run/tmp/cache DMABUF_TEST_TIER=vm \
    /bin/sh "$VM_SHARE/$VM_SCRIPT"
rc=$?
echo "$rc" > "/host$VM_SHARE/guest-status"
sync
echo "vm-init: guest command exited with status $rc"
# isa-debug-exit: qemu exits with (value << 1) | 1; the value is 7 bits here
# so that it survives as a process status (the status file keeps the exact one).
[ "$rc" -gt 127 ] && rc=127
printf "\\$(printf %03o "$rc")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
poweroff -f
