#!/usr/bin/env bash
# Builds what scripts/gpu/run.sh runs on a GPU machine, which reaches no
# network and has no Rust toolchain: release binaries (with the lock
# validator and the test hooks, as the tests expect), stripped, in
# target/gpu-kit/ (GPU_KIT to move it). Run it here, then carry the kit.
set -euo pipefail
cd "$(dirname "$0")/../.."
kit=${GPU_KIT:-target/gpu-kit}
features=(--features compositor/test-hooks,importer/lockdep)
cargo build --release --locked -p compositor "${features[@]}" --bin compositor --bin gpu-report
json=$(mktemp)
cargo test --release --locked -p testkit "${features[@]}" --no-run --message-format=json \
    --test gpu_sync_read_fence --test kernel_sync_explicit > "$json"
rm -rf "$kit" && mkdir -p "$kit/tests"
cp target/release/compositor target/release/gpu-report "$kit/"
for t in gpu_sync_read_fence kernel_sync_explicit; do
    exe=$(grep '"reason":"compiler-artifact"' "$json" | grep "\"name\":\"$t\"" | grep -o '"executable":"[^"]*"' \
        | head -1 | sed 's/"executable":"\(.*\)"/\1/')
    [ -n "$exe" ] || { echo "build-kit: no test binary for $t" >&2; exit 1; }
    cp "$exe" "$kit/tests/$t"
done
rm -f "$json"
strip "$kit"/compositor "$kit"/gpu-report "$kit"/tests/*
cp scripts/gpu/run.sh "$kit/"
du -sh "$kit"
echo "build-kit: $kit is ready; on the GPU machine run: $kit/run.sh"
