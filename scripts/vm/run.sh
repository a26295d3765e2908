#!/usr/bin/env bash
# Kernel VM tier: boots a real Linux kernel (Debian bookworm-backports 6.12,
# which has udmabuf, dma-heaps, sync_file and vgem) under qemu/TCG and runs a
# command inside it, chrooted into this machine's root filesystem (shared
# read-only over 9p), so host-built test binaries and the host's Mesa run
# unchanged. Exits with the command's status.
#
# usage: scripts/vm/run.sh [-e NAME=VALUE]... -- CMD [ARGS...]
#        scripts/vm/run.sh [-e NAME=VALUE]... --script FILE   (sh script run in the guest)
#        scripts/vm/run.sh --prepare                          (install + fetch + build initramfs only)
#
# In the guest: cwd = the current directory, DMABUF_TEST_TIER=vm, HOME, TMPDIR
# and XDG_CACHE_HOME under a tmpfs (/run/tmp), and $VM_SHARE (= $VM_OUT/share, the same
# path on host and guest) is the only writable place that survives the VM.
#
# Environment (host side):
#   VM_CACHE    kernel + initramfs cache (default ~/.cache/dmabuf-compositor-vm)
#   VM_OUT      serial log and share (default <repo>/target/vm)
#   VM_TIMEOUT  seconds before qemu is killed (default 900)
#   VM_MEM      guest memory (default 2G); VM_SMP guest CPUs (default nproc)
#   VM_VERBOSE  1 = also print kernel messages on the console
# Needs root (or sudo) only to install packages the first time.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${VM_CACHE:-$HOME/.cache/dmabuf-compositor-vm}
out=${VM_OUT:-$repo/target/vm}
share=$out/share
timeout_s=${VM_TIMEOUT:-900}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

log() { echo "vm: $*" >&2; }
die() { echo "vm: error: $*" >&2; exit 125; }

envs=()
cmd=()
script=""
prepare_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        -e) [ $# -ge 2 ] || die "-e needs NAME=VALUE"; envs+=("$2"); shift 2 ;;
        --script) [ $# -ge 2 ] || die "--script needs a file"; script=$2; shift 2 ;;
        --prepare) prepare_only=1; shift ;;
        --) shift; cmd=("$@"); break ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
if [ $prepare_only = 0 ] && [ ${#cmd[@]} = 0 ] && [ -z "$script" ]; then
    die "nothing to run (usage: run.sh -- CMD ARGS | --script FILE | --prepare)"
fi

# ---- host packages (idempotent) --------------------------------------------
install_host_packages() {
    # setup-host.sh adds bookworm-backports (reusing this machine's Debian
    # URIs) and installs Mesa/lavapipe, which the guest uses from the host root.
    bash "$repo/scripts/setup-host.sh" >&2
    local need=()
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu)
    [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx insmod || need+=(busybox-static)
    command -v cpio >/dev/null || need+=(cpio)
    command -v depmod >/dev/null || need+=(kmod)
    command -v xz >/dev/null || need+=(xz-utils)
    [ ${#need[@]} = 0 ] && return 0
    log "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q >&2
    local plain=() p
    for p in "${need[@]}"; do [ "$p" = qemu ] || plain+=("$p"); done
    if [ ${#plain[@]} -gt 0 ]; then
        $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${plain[@]}" >&2
    fi
    if [[ " ${need[*]} " == *" qemu "* ]]; then
        # bookworm's qemu 7.2 is too old for TCG with -cpu max on this kernel's needs;
        # backports has 10.x.
        $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends \
            -t bookworm-backports qemu-system-x86 >&2
    fi
}

# ---- kernel (fetched once, cached) -------------------------------------------
fetch_kernel() {
    mkdir -p "$cache"
    if [ -e "$cache/kernel/current" ]; then return 0; fi
    local pkg tmp
    pkg=$(apt-cache depends -t bookworm-backports linux-image-amd64 2>/dev/null \
        | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    if [ -z "$pkg" ]; then
        $SUDO apt-get update -q >&2
        pkg=$(apt-cache depends -t bookworm-backports linux-image-amd64 \
            | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    fi
    [ -n "$pkg" ] || die "cannot find the bookworm-backports kernel package"
    log "downloading $pkg (once; cached in $cache)"
    tmp=$(mktemp -d "$cache/dl.XXXXXX")
    (cd "$tmp" && apt-get download -q "$pkg" >&2)
    mkdir -p "$cache/kernel"
    rm -rf "$cache/kernel/$pkg"
    dpkg-deb -x "$tmp"/"$pkg"_*.deb "$cache/kernel/$pkg.tmp"
    mv "$cache/kernel/$pkg.tmp" "$cache/kernel/$pkg"
    rm -rf "$tmp"
    ln -sfn "$pkg" "$cache/kernel/current"
}

# ---- initramfs (rebuilt when its inputs change) ------------------------------
modules=(vgem virtio-gpu 9pnet_virtio 9p)
build_initramfs() {
    local kroot=$cache/kernel/current kver
    kver=$(ls "$kroot/lib/modules" | head -1)
    [ -n "$kver" ] || die "no modules in $kroot"
    [ -f "$kroot/lib/modules/$kver/modules.dep" ] || depmod -b "$kroot" "$kver"
    KVER=$kver
    KIMG=$kroot/boot/vmlinuz-$kver
    local key
    key=$( { echo "$kver ${modules[*]}"; cat "$here/init.sh"; sha256sum /bin/busybox; } \
        | sha256sum | cut -c1-16)
    INITRD=$cache/initramfs-$key.cpio.gz
    [ -f "$INITRD" ] && return 0
    log "building initramfs ($kver)"
    local root
    root=$(mktemp -d)
    mkdir -p "$root"/{bin,proc,sys,dev,tmp,host,lib/modules}
    cp /bin/busybox "$root/bin/"
    local a
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -s busybox "$root/bin/$a"
    done
    local m f b
    for m in "${modules[@]}"; do
        modprobe -d "$kroot" -S "$kver" --show-depends "$m"
    done | awk '$1 == "insmod" && !seen[$2]++ {print $2}' > "$root/order"
    : > "$root/modules.list"
    while read -r f; do
        b=$(basename "${f%.xz}")
        case "$f" in
            *.xz) xz -dc "$f" > "$root/lib/modules/$b" ;;
            *) cp "$f" "$root/lib/modules/$b" ;;
        esac
        echo "$b" >> "$root/modules.list"
    done < "$root/order"
    rm "$root/order"
    cp "$here/init.sh" "$root/init"
    chmod +x "$root/init"
    # /vm.conf is appended per run as a second cpio archive (see boot()).
    (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD.tmp"
    mv "$INITRD.tmp" "$INITRD"
    rm -rf "$root"
    find "$cache" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -name "$(basename "$INITRD")" -delete
}

install_host_packages
fetch_kernel
build_initramfs
if [ $prepare_only = 1 ]; then
    log "ready: kernel $KVER, initramfs $INITRD"
    exit 0
fi

# ---- the guest script ----------------------------------------------------------
# The guest sees the host root except for its own /run, /dev, /proc and /sys
# (scratch space is a tmpfs under /run), so the working directory and the
# share must live elsewhere.
for p in "$PWD" "$out"; do
    case "$(realpath -m "$p")/" in
        /run/*|/dev/*|/proc/*|/sys/*)
            die "$p is hidden inside the VM (guest has its own /run, /dev, /proc, /sys); use another directory" ;;
    esac
done
# POSIX-sh single quoting (the guest script runs under /bin/sh).
sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
mkdir -p "$share"
rm -f "$share/guest-status" "$share/guest-cmd.sh"
{
    echo "# generated by scripts/vm/run.sh"
    echo "mkdir -p \"\$XDG_CACHE_HOME\""
    echo "export VM_SHARE=$(sq "$share")"
    for e in "${envs[@]+"${envs[@]}"}"; do
        [[ "$e" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "-e wants NAME=VALUE, got $e"
        echo "export ${e%%=*}=$(sq "${e#*=}")"
    done
    echo "cd $(sq "$PWD") || exit 125"
    if [ -n "$script" ]; then
        echo ". $(sq "$(realpath "$script")")"
    else
        printf 'exec'
        for a in "${cmd[@]}"; do printf ' %s' "$(sq "$a")"; done
        printf '\n'
    fi
} > "$share/guest-cmd.sh"

# Per-run config as a second (gzip) cpio archive: the kernel unpacks
# concatenated archives in order.
conf=$(mktemp -d)
trap 'rm -rf "$conf"' EXIT
printf 'VM_SHARE=%s\nVM_SCRIPT=guest-cmd.sh\n' "$(sq "$share")" > "$conf/vm.conf"
(cd "$conf" && echo vm.conf | cpio -o -H newc --quiet | gzip -1) > "$conf/conf.cpio"
cat "$INITRD" "$conf/conf.cpio" > "$conf/initrd"

serial=$out/serial.log
quiet=quiet
[ "${VM_VERBOSE:-0}" = 1 ] && quiet=""
log "booting $KVER (tcg, $(( ${VM_SMP:-$(nproc)} )) cpus, ${VM_MEM:-2G}); serial log: $serial"
start=$(date +%s)
boot() {
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp "${VM_SMP:-$(nproc)}" -m "${VM_MEM:-2G}" \
    -nographic -no-reboot -nodefaults \
    -chardev stdio,id=con,logfile="$serial",signal=off -serial chardev:con \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    -device virtio-gpu-pci \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$share",mount_tag=share,security_model=none \
    -kernel "$KIMG" -initrd "$conf/initrd" \
    -append "console=ttyS0 panic=-1 $quiet" </dev/null
}
set +e
boot
qemu_status=$?
if [ $qemu_status = 134 ] && ! grep -q "vm-init: running the guest command" "$serial" 2>/dev/null; then
    # qemu's TCG has aborted on an internal assertion (iotlb_to_section) once
    # during boot on a loaded machine; the guest had not started, so retry once.
    log "qemu aborted before the guest command started; booting once more"
    cp "$serial" "$serial.aborted" 2>/dev/null || true
    boot
    qemu_status=$?
fi
set -e
log "vm ran $(( $(date +%s) - start )) s"
if [ $qemu_status = 124 ] || [ $qemu_status = 137 ]; then
    log "timed out after ${timeout_s}s (VM_TIMEOUT); serial log: $serial"
    exit 124
fi
if [ -f "$share/guest-status" ]; then
    exit "$(cat "$share/guest-status")"
fi
if [ $((qemu_status & 1)) = 1 ]; then
    exit $((qemu_status >> 1))
fi
log "qemu ended (status $qemu_status) without a guest status; serial log: $serial"
exit 125
