#!/usr/bin/env bash
# Real-GPU sync checks: the SYNC_FD paths lavapipe cannot exercise.
# Run on a machine with a real GPU, a DRM render node and a 6.6+ kernel, from
# the repository root, as a user who can open /dev/dri/renderD* and
# /dev/udmabuf. Prints the device and driver first; paste the whole output
# into docs/sync.md "Real GPU runs" with the date.
#
# It runs, against the real device (no --vk-device: the best one is chosen):
#  1. VK_KHR_external_semaphore_fd SYNC_FD import/export support (printed and
#     required: kernel_sync_primitives::vulkan_semaphore_sync_fd_support_is_reported);
#  2. syncobj timelines, point <-> sync_file, eventfds on the GPU's node
#     (kernel_sync_primitives, needs vgem for the fences: modprobe vgem);
#  3. READ-fence release: the compositor's frame fence seen pending in a
#     client dma-buf right after composition (gpu_sync_read_fence);
#  4. the GPU-wait acquire path: COMPOSITOR_ACQUIRE=gpu with a
#     client fence pending (sync_release_gpu_stall; on lavapipe it blocks the
#     loop, a real GPU must not);
#  5. explicit sync through the compositor on this node (kernel_sync_explicit).
# Exits non-zero if any of them failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

echo "== device"
uname -r
for n in /dev/dri/renderD*; do
    drv=$(basename "$(readlink -f "/sys/class/drm/$(basename "$n")/device/driver" 2>/dev/null)" 2>/dev/null || echo "?")
    echo "$n: driver $drv"
done
if command -v vulkaninfo >/dev/null; then
    vulkaninfo --summary 2>/dev/null | grep -E "deviceName|driverName|driverInfo|apiVersion" || true
fi
[ -e /dev/udmabuf ] || { echo "gpu: /dev/udmabuf missing (modprobe udmabuf)" >&2; exit 2; }

# The same build as scripts/test.sh (with the compositor's test hooks).
features=(--features compositor/test-hooks)
cargo build --workspace --bins --locked "${features[@]}"
export TEST_BUFFER_PROVIDER=udmabuf DMABUF_TEST_TIER=vm
status=0
run() {
    echo "== $*"
    cargo test -p testkit --locked "${features[@]}" --test "$@" -- --include-ignored --nocapture --test-threads 1 || status=1
}
run kernel_sync_primitives
run gpu_sync_read_fence
run sync_release_gpu_stall
run kernel_sync_explicit
echo "== gpu sync checks: $([ $status = 0 ] && echo PASSED || echo FAILED)"
exit $status
