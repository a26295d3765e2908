#!/usr/bin/env bash
# Runs Debian's WLCS (Wayland conformance suite, package `wlcs`) against the
# compositor through wlcs/ (libwlcs_integration.so, the server-integration
# ABI over the headless backend).
#
# WLCS skips by itself every test whose protocol the integration's
# descriptor does not list, so "every group that covers a protocol we
# implement" is simply every group. Tests known to fail are excluded by
# wlcs/expected-failures.txt (one gtest pattern per line, each with its
# reason); they are run separately and reported, but do not fail this script.
#
# Prints the groups (test suites) run and the pass/fail/skip counts; exits
# non-zero if any test outside the expected failures failed or none passed.
#   scripts/wlcs.sh [--no-build] [extra gtest args, e.g. --gtest_filter=XdgToplevel*]
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
if [ "${1:-}" = "--no-build" ]; then build=0; shift; fi

WLCS=${WLCS:-/usr/lib/x86_64-linux-gnu/wlcs/wlcs}
if [ ! -x "$WLCS" ]; then
    echo "wlcs: $WLCS missing (apt-get install wlcs; scripts/setup-host.sh does)" >&2
    exit 1
fi
target_dir=${CARGO_TARGET_DIR:-target}
# With the compositor's test hooks, as every build for tests (scripts/test.sh).
if [ "$build" = 1 ]; then cargo build -p wlcs-integration --locked --features compositor/test-hooks; fi
so="$PWD/$target_dir/debug/libwlcs_integration.so"

out=${WLCS_OUT:-$target_dir/wlcs}
mkdir -p "$out"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
chmod 0700 "$XDG_RUNTIME_DIR"

expected=$(grep -v '^\s*#' wlcs/expected-failures.txt | awk 'NF {print $1}' | paste -sd: -)

echo "== WLCS: $WLCS with $so"
rc=0
timeout "${WLCS_TIMEOUT:-1800}" "$WLCS" "$so" --gtest_filter="*${expected:+-$expected}" "$@" \
    --gtest_output="xml:$out/wlcs.xml" >"$out/wlcs.log" 2>&1 || rc=$?

summarise() {  # $1: log
    local log=$1
    echo "groups run: $(grep -E '^\[ RUN      \]' "$log" | sed -E 's/^\[ RUN      \] ([^.]+)\..*/\1/' | sort -u | paste -sd' ' -)"
    passed=$(grep -cE '^\[       OK \]' "$log" || true)
    failed=$({ grep -E '^\[  FAILED  \] [A-Za-z].* \([0-9]+ ms\)$' "$log" || true; } | awk '{sub(/,$/, "", $4); print $4}' | sort -u | wc -l)
    skipped=$(grep -cE '^\[     SKIP \]' "$log" || true)
}
summarise "$out/wlcs.log"
echo "WLCS: $passed passed, $failed failed, $skipped skipped (log: $out/wlcs.log)"
if [ "$failed" -gt 0 ]; then
    echo "unexpected failures:"; grep -E '^\[  FAILED  \] [A-Za-z].* \([0-9]+ ms\)$' "$out/wlcs.log" | awk '{sub(/,$/, "", $4); print "  " $4}' | sort -u
fi

if [ -n "$expected" ] && [ "${WLCS_RUN_EXPECTED:-0}" = 1 ]; then
    erc=0
    timeout "${WLCS_TIMEOUT:-1800}" "$WLCS" "$so" --gtest_filter="$expected" >"$out/wlcs-expected.log" 2>&1 || erc=$?
    epassed=$(grep -cE '^\[       OK \]' "$out/wlcs-expected.log" || true)
    efailed=$({ grep -E '^\[  FAILED  \] [A-Za-z].* \([0-9]+ ms\)$' "$out/wlcs-expected.log" || true; } | awk '{sub(/,$/, "", $4); print $4}' | sort -u | wc -l)
    echo "WLCS expected failures (wlcs/expected-failures.txt): $efailed failed, $epassed now pass (log: $out/wlcs-expected.log)"
fi

if [ "$rc" -ne 0 ] || [ "$failed" -gt 0 ] || [ "$passed" -eq 0 ]; then
    echo "WLCS: FAILED (wlcs exit $rc)" >&2
    exit 1
fi
echo "WLCS: OK"
