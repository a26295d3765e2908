#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with coverage instrumentation (on
# stable Rust: sancov passes, no sanitizer) and runs each for a bounded
# time or number of executions, starting from the seed corpus in
# fuzz/corpus/<target>. New inputs go to $FUZZ_OUT/corpus/<target>, not
# into the repository; a crash leaves its input in $FUZZ_OUT/artifacts/
# and fails the script.
#
# usage: scripts/fuzz.sh [--seconds N | --runs N] [--build-only | --no-build] [TARGET...]
#   default: the host targets, 60 s each (what CI runs on the host)
#   --runs N: stop each target after N executions (the long run in docs/robustness.md)
#   --build-only / --no-build: only build, or run what the last build left
#     (the kernel VM tier builds on the host and runs drm_syncobj in the guest)
# Targets: dmabuf_desc, dmabuf_params, surface_commits, color_representation (host), and
# drm_syncobj, which needs a render node with syncobj timelines (the kernel
# VM tier runs it: scripts/vm/test.sh).
# Environment: FUZZ_OUT (default target/fuzz) for corpus, artifacts and logs.
set -euo pipefail
cd "$(dirname "$0")/.."

limit=(-max_total_time=60)
targets=()
build=1 run=1
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) limit=(-max_total_time="$2"); shift 2 ;;
        --runs) limit=(-runs="$2"); shift 2 ;;
        --build-only) run=0; shift ;;
        --no-build) build=0; shift ;;
        -*) echo "usage: $0 [--seconds N | --runs N] [--build-only | --no-build] [TARGET...]" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=(dmabuf_desc dmabuf_params surface_commits color_representation)

out=${FUZZ_OUT:-$PWD/target/fuzz}
# The binaries' directory, named after the host triple (read back with --no-build,
# where rustc may not be on PATH).
bins=target/fuzz/bin-dir
if [ $build = 1 ]; then
    # The instrumentation must not reach build scripts and proc macros (they
    # would need libFuzzer's symbols): hence the explicit --target.
    triple=$(rustc -vV | sed -n 's/^host: //p')
    export CARGO_TARGET_DIR=$PWD/target/fuzz
    export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
    echo "== fuzz: building ${targets[*]} ($triple, coverage-instrumented release)"
    cargo build --release --locked --manifest-path fuzz/Cargo.toml --target "$triple" $(printf -- '--bin %s ' "${targets[@]}")
    echo "$CARGO_TARGET_DIR/$triple/release" > "$bins"
fi
[ $run = 1 ] || exit 0
[ -s "$bins" ] || { echo "fuzz: nothing built yet (run without --no-build)" >&2; exit 2; }
bin_dir=$(cat "$bins")

status=0
for t in "${targets[@]}"; do
    corpus=$out/corpus/$t
    artifacts=$out/artifacts/$t/
    mkdir -p "$corpus" "$artifacts"
    echo "== fuzz: $t (${limit[*]}, seeds fuzz/corpus/$t)"
    log=$out/$t.log
    set +e
    "$bin_dir/$t" "${limit[@]}" -rss_limit_mb=4096 -max_len=4096 \
        -artifact_prefix="$artifacts" -print_final_stats=1 "$corpus" "fuzz/corpus/$t" > "$log" 2>&1
    rc=$?
    set -e
    grep -E "^(#[0-9]+ +(INITED|DONE)|stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs)" "$log" || true
    if [ $rc -ne 0 ]; then
        echo "fuzz: FAILED: $t exited with $rc; the end of $log:"
        tail -40 "$log"
        status=1
    fi
    if ls "$artifacts" | grep -qE '^(crash|leak|timeout|oom)-'; then
        echo "fuzz: FAILED: $t left $(ls "$artifacts" | tr '\n' ' ') in $artifacts"
        status=1
    fi
done
exit $status
