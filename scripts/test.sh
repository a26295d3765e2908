#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run calls it).
#
# 1. Installs the host tier's packages (idempotent: scripts/setup-host.sh).
# 2. Host tier: builds every binary and runs the whole workspace test suite on
#    this machine's Vulkan device (lavapipe on CI) with memfd stand-ins for
#    dma-bufs, all with the compositor's test hooks (--features
#    compositor/test-hooks: the environment variables some tests drive it
#    with, compositor/src/test_hooks.rs). Tests that need the kernel VM tier
#    are reported as ignored with their reason here; they run in step 3.
#    Then the proof that a release build has none of the hooks
#    (scripts/check-test-hooks.sh), WLCS over wlcs/'s integration library
#    (scripts/wlcs.sh), and the loom model of the reservation state machine
#    (its own target directory: cfg(loom) rebuilds the importer's
#    dependencies).
# 3. Kernel VM tier (unless --host-only): boots the bookworm-backports 6.12
#    kernel under qemu and runs the VM tests against real udmabuf dma-bufs,
#    sync_files and vgem fences (scripts/vm/test.sh), then the harness
#    self-test (scripts/vm/selftest.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

host_only=0
for arg in "$@"; do
    case "$arg" in
        --host-only) host_only=1 ;;
        *) echo "usage: $0 [--host-only]" >&2; exit 2 ;;
    esac
done

bash scripts/setup-host.sh
export TEST_ARTIFACTS_DIR="${TEST_ARTIFACTS_DIR:-$PWD/target/test-artifacts}"

# Every build for tests has the compositor's test hooks; scripts/run-demo.sh
# and release builds do not.
features=(--features compositor/test-hooks)

echo "== host tier: build (with the compositor's test hooks)"
cargo build --workspace --bins --locked "${features[@]}"
echo "== host tier: tests (mismatch images go to $TEST_ARTIFACTS_DIR)"
cargo test --workspace --locked "${features[@]}"
echo "== host tier: leak soak counts (tests/tests/leak_soak.rs)"
cat "$TEST_ARTIFACTS_DIR/leak-soak.txt"

echo "== fuzzing: 60 s per target from the seed corpus (scripts/fuzz.sh)"
bash scripts/fuzz.sh --seconds 60

echo "== test hooks: a release build has none (scripts/check-test-hooks.sh)"
bash scripts/check-test-hooks.sh

echo "== WLCS (Wayland conformance suite; groups run and pass count below)"
bash scripts/wlcs.sh

echo "== loom model of the reservation state machine (importer/tests/loom_reservation.rs)"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p importer --test loom_reservation --release --locked

if [ "$host_only" = 1 ]; then
    echo "== kernel VM tier: skipped (--host-only)"
    exit 0
fi
echo "== kernel VM tier (real 6.12 kernel under qemu: udmabuf, dma-heap, sync_file, vgem)"
bash scripts/vm/test.sh   # its cargo build is a no-op after the host tier; it records the test binaries
echo "== kernel VM tier: harness self-test (a deliberate failure inside the VM must fail the harness)"
bash scripts/vm/selftest.sh --no-build
