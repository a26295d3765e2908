#!/usr/bin/env bash
# The side-by-side benchmark, from a clean clone, in one command:
#
#   scripts/bench.sh [--runs N] [--seconds S] [--only SCENARIO-SUBSTRING] [--no-setup] [--skip-import]
#                    [--baseline REV]
#
# 1. installs what it needs (scripts/setup-host.sh: lavapipe, fonts; Weston 14
#    from bookworm-backports into target/weston14 with scripts/bench/weston.sh,
#    nothing system-wide),
# 2. builds, in release, our compositor, the client workload (bench-client)
#    and the driver (bench-compare),
# 3. runs the identical bench-client against our compositor and against
#    Weston 14 (headless, GL renderer on llvmpipe), same output size and
#    refresh, and prints per scenario CPU per presented frame of the whole
#    compositor process, frames per second, commit-to-present latency and
#    memory, with the ratio ours ÷ Weston (table on stdout;
#    target/bench/bench.json and target/bench/bench.png).
#    With --baseline REV, our compositor built at git revision REV (in
#    target/bench-baseline) runs as a third compositor between the two,
#    and the table adds ours ÷ baseline: the way to measure a change.
# 4. runs the in-process measures (`compositor --bin bench`: import cost,
#    CPU fallback against memcpy, compositor-thread cost per frame).
#
# Both compositors render on this machine's CPU (lavapipe, llvmpipe).
# Weston runs with repaint-window 16 ms: its headless backend otherwise paces
# at ~39 Hz instead of 60 (see scripts/bench/weston.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

setup=1 import=1 pass=() baseline=
while [ $# -gt 0 ]; do
    case "$1" in
        --no-setup) setup=0 ;;
        --skip-import) import=0 ;;
        --runs|--seconds|--only) pass+=("$1" "$2"); shift ;;
        --baseline) baseline=$2; shift ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ $setup = 1 ]; then
    bash scripts/setup-host.sh
fi
# Its own process: weston.sh is written for shells without errexit.
bash scripts/bench/weston.sh install target/weston14
weston_prefix=$PWD/target/weston14

cargo build --release --locked -p compositor --bin compositor --bin bench
cargo build --release --locked -p testkit --bin bench-client --bin bench-compare

headless="--backend headless --size {width}x{height} --refresh {refresh} --socket {socket}"
peers=()
if [ -n "$baseline" ]; then
    # The tree at REV, exported (no worktree left behind), built in its own
    # target directory.
    rev=$(git rev-parse --verify "$baseline^{commit}")
    dir=$PWD/target/bench-baseline
    rm -rf "$dir/src" && mkdir -p "$dir/src"
    git archive --format=tar "$rev" | tar -x -C "$dir/src"
    (cd "$dir/src" && CARGO_TARGET_DIR="$dir/target" cargo build --release --locked -p compositor --bin compositor)
    echo "baseline: $rev"
    peers+=(--compositor "baseline=$dir/target/release/compositor $headless")
fi

target/release/bench-compare \
    --compositor "ours=target/release/compositor $headless" \
    "${peers[@]}" \
    --compositor "weston14=env WESTON_REPAINT_WINDOW=16 bash scripts/bench/weston.sh exec $weston_prefix {socket} {width} {height} {refresh}" \
    --client target/release/bench-client --out target/bench "${pass[@]}"

if [ $import = 1 ]; then
    echo
    echo "## In-process measures (ours only)"
    target/release/bench
fi
