#!/usr/bin/env bash
# The project's run command (README "Run it"): installs what the host needs,
# builds, and runs the compositor headless with the demo client, writing the
# composited output as a PNG (default out/demo.png; pass another path).
# Extra compositor options go after the path, e.g.: scripts/run-demo.sh x.png --size 1920x1080
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/demo.png}"
shift || true
bash scripts/setup-host.sh
# A plain build, as a user gets it: no test hooks (scripts/test.sh builds
# with --features compositor/test-hooks).
cargo build --workspace --bins --locked
mkdir -p "$(dirname "$out")"
runtime="$(mktemp -d)"
trap 'rm -rf "$runtime"' EXIT
XDG_RUNTIME_DIR="$runtime" ./target/debug/compositor --size 800x600 --screenshot "$out" --stats "${out%.png}.stats.json" "$@" \
    -- ./target/debug/demo-client --frames 120
echo "wrote $out (import paths: ${out%.png}.stats.json)"
