#!/usr/bin/env bash
# Installs what the host tier needs on a fresh Debian 12 machine, idempotently:
# Mesa 25 lavapipe from bookworm-backports, the Vulkan loader, libxkbcommon-dev,
# wayland-utils (wayland-info) and the Wayland C libraries the test clients link,
# plus the third-party clients of tests/tests/real_clients.rs (weston's demo
# clients, foot with a font, GTK 4 through python3-gi; vkcube is in
# vulkan-tools) and WLCS (scripts/wlcs.sh), and the DRM backend's libraries
# (libseat, libudev, libinput; libgbm-dev from bookworm-backports so it matches
# the backported Mesa's libgbm1), and seatd, which the kernel VM tier's VT
# switching test starts in the guest (the guest runs the host's root
# filesystem, so it must be installed here).
#
# bookworm-backports is added by reusing the URIs: line of the machine's own
# /etc/apt/sources.list.d/debian.sources, so no mirror host is written here.
set -euo pipefail

SOURCES=/etc/apt/sources.list.d/debian.sources
BACKPORTS=/etc/apt/sources.list.d/bookworm-backports.sources
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

want_pkgs=(mesa-vulkan-drivers libvulkan1 libvulkan-dev libxkbcommon-dev libwayland-dev
           wayland-utils pkg-config vulkan-tools
           weston foot fonts-dejavu-core python3-gi gir1.2-gtk-4.0 wlcs
           libseat-dev libudev-dev libinput-dev vulkan-validationlayers seatd
           g++)  # g++: libFuzzer (scripts/fuzz.sh)
# From bookworm-backports (Mesa 25 and what must match its version).
backports_pkgs=(mesa-vulkan-drivers libdrm2 libdrm-dev libgbm-dev)

missing() {
    local p
    for p in "${want_pkgs[@]}" "${backports_pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

lavapipe_is_new() {
    # Mesa from bookworm proper is 22.x; the host tier needs 25.x (dma-buf import).
    local v
    v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || echo 0)
    dpkg --compare-versions "$v" ge 25
}

if [ ! -f "$BACKPORTS" ]; then
    uris=$(awk '/^URIs:/ && /debian\/?$/ && !/security/ {print $2; exit}' "$SOURCES")
    if [ -z "$uris" ]; then
        echo "setup-host: no Debian URIs: line in $SOURCES to reuse for bookworm-backports" >&2
        exit 1
    fi
    $SUDO tee "$BACKPORTS" >/dev/null <<SRC
Types: deb
URIs: $uris
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    NEED_UPDATE=1
fi

seatd_was_installed=0
dpkg-query -W -f='${Status}' seatd 2>/dev/null | grep -q "install ok installed" && seatd_was_installed=1

if [ -n "$(missing)" ] || ! lavapipe_is_new; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${want_pkgs[@]}"
    $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports "${backports_pkgs[@]}"
fi

# Debian's seatd package enables a seatd service. On a machine booted with
# systemd, libseat (in every program) would then pick seatd over logind. Only
# the VM tier needs seatd, and it starts its own inside the guest; so when we
# installed the package just now, keep its service off. A seatd someone set
# up on purpose is left alone.
if [ "$seatd_was_installed" = 0 ] && [ -d /run/systemd/system ] \
    && systemctl is-enabled --quiet seatd.service 2>/dev/null; then
    $SUDO systemctl disable --now seatd.service
    echo "setup-host: disabled the seatd service that installing seatd enabled (the VM tier starts its own)"
fi

if ! lavapipe_is_new; then
    echo "setup-host: mesa-vulkan-drivers >= 25 is required (got $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers))" >&2
    exit 1
fi
echo "setup-host: ready (mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers))"
