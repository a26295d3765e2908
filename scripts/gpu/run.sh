#!/usr/bin/env bash
# The real-GPU check, from a kit of prebuilt binaries (scripts/gpu/build-kit.sh;
# no package installs, no network, no toolchain). Finishes in a few minutes.
# Run it on a machine with a GPU, a DRM render node and a 6.6+ kernel, as a
# user who can open /dev/dri/renderD*, and for the sync checks /dev/udmabuf
# (modprobe udmabuf) and vgem (modprobe vgem). Prints a table at the end;
# paste the whole output into docs/sync.md "Real GPU runs" with the date.
#
#  1. gpu-report: the device, the modifiers advertised, and for each tiled
#     modifier a GBM buffer rendered into, imported as a client buffer
#     (which import path) and read back; under the Khronos validation layer
#     when it is installed (its message IDs are listed);
#  2. the READ fence of a frame seen pending in the client's dma-buf right
#     after composition (gpu_sync_read_fence; lavapipe cannot show it);
#  3. explicit sync through the compositor on this node (kernel_sync_explicit).
#
# usage: run.sh [KIT]   (default: the directory of this script if it holds
# the kit, else target/gpu-kit)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
kit=${1:-$([ -x "$here/gpu-report" ] && echo "$here" || echo target/gpu-kit)}
[ -x "$kit/gpu-report" ] || { echo "gpu: no kit at $kit (scripts/gpu/build-kit.sh)" >&2; exit 2; }
out=$(mktemp -d)
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$out}
rows=()
row() { rows+=("| $1 | $2 |"); }

echo "== device"
uname -r
for n in /dev/dri/renderD*; do
    drv=$(basename "$(readlink -f "/sys/class/drm/$(basename "$n")/device/driver" 2>/dev/null)" 2>/dev/null || echo "?")
    echo "$n: driver $drv"
done

echo "== gpu-report"
layer_env=()
if ls /usr/share/vulkan/explicit_layer.d/*khronos_validation* >/dev/null 2>&1; then
    cat > "$out/vk_layer_settings.txt" <<SETTINGS
khronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG
khronos_validation.report_flags = error,warn,perf
khronos_validation.log_filename = $out/validation.txt
khronos_validation.enables = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT,VK_VALIDATION_FEATURE_ENABLE_BEST_PRACTICES_EXT,VALIDATION_CHECK_ENABLE_VENDOR_SPECIFIC_ALL
SETTINGS
    layer_env=(VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation VK_LAYER_SETTINGS_PATH="$out")
fi
if env "${layer_env[@]}" timeout 120 "$kit/gpu-report" | tee "$out/report.txt"; then
    row "gpu-report (device, modifiers, tiled imports)" "ok"
else
    row "gpu-report (device, modifiers, tiled imports)" "FAILED"
fi
row "device" "$(sed -n '2p' "$out/report.txt" | cut -d: -f1)"
row "modifiers advertised (XR24)" "$(grep -c '^| XR24 ' "$out/report.txt" || true)"
while read -r line; do row "tiled import $(echo "$line" | cut -d'|' -f2 | tr -d ' ')" "$(echo "$line" | cut -d'|' -f4- | sed 's/ *|$//')"; done \
    < <(sed -n '/## tiled imports/,$p' "$out/report.txt" | grep '^| 0x')
if [ -f "$out/validation.txt" ]; then
    errors=$(grep -c ' - Validation Error' "$out/validation.txt" || true)
    ids=$(grep -o '\[ [A-Za-z0-9_-]* \]' "$out/validation.txt" | sort | uniq -c | sort -rn | head -20 | tr '\n' ';')
    row "validation errors" "$errors"
    row "validation message IDs" "$ids"
else
    row "validation" "layer not installed here"
fi

export COMPOSITOR_BIN="$kit/compositor" TEST_BUFFER_PROVIDER=udmabuf DMABUF_TEST_TIER=vm TEST_ARTIFACTS_DIR="$out/artifacts"
for t in gpu_sync_read_fence kernel_sync_explicit; do
    echo "== $t"
    if timeout 300 "$kit/tests/$t" --include-ignored --nocapture --test-threads 1 2>&1 | tee "$out/$t.txt"; then
        row "$t" "$(grep 'test result' "$out/$t.txt" | tail -1)"
    else
        row "$t" "FAILED: $(grep -E 'FAILED|test result' "$out/$t.txt" | tail -3 | tr '\n' ' ')"
    fi
done
row "READ fence pending after composition" "$(grep -o 'pending[^;]*' "$out/gpu_sync_read_fence.txt" | head -1)"

echo
echo "| check | result |"
echo "|---|---|"
printf '%s\n' "${rows[@]}"
if printf '%s\n' "${rows[@]}" | grep -q FAILED; then
    echo "== gpu checks: FAILED"
    exit 1
fi
echo "== gpu checks: PASSED"
