#!/usr/bin/env bash
# Proves that a release build of the compositor has none of its test hooks.
#
# The hooks (compositor/src/test_hooks.rs) read environment variables only
# when the compositor is built with its cargo feature `test-hooks`; without
# it the variable names are not compiled in. This script
#   1. takes the hook variable names from compositor/src/test_hooks.rs itself
#      (its "COMPOSITOR_..." string literals; there must be at least one), so
#      the list is written once;
#   2. builds the release binary without features
#      (cargo build --release --locked -p compositor --bin compositor) and
#      fails if target/release/compositor contains any of the names;
#   3. as a control that the search can find them, requires that the test
#      build (target/debug/compositor, built by the same command as
#      scripts/test.sh's host tier, with --features compositor/test-hooks)
#      contains every name.
# Prints one line with the result; exits non-zero on any failure.
#   scripts/check-test-hooks.sh [--no-build]   (--no-build: use the binaries as they are)
set -euo pipefail
cd "$(dirname "$0")/.."

build=1
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
    esac
done

fail() { echo "test hooks: FAILED: $*"; exit 1; }

source_file=compositor/src/test_hooks.rs
[ -f "$source_file" ] || fail "$source_file is missing"
mapfile -t names < <(grep -o '"COMPOSITOR_[A-Z0-9_]*"' "$source_file" | tr -d '"' | sort -u)
[ "${#names[@]}" -gt 0 ] || fail "no \"COMPOSITOR_...\" variable name found in $source_file"

target_dir=${CARGO_TARGET_DIR:-target}
release=$target_dir/release/compositor
debug=$target_dir/debug/compositor
if [ "$build" = 1 ]; then
    cargo build --release --locked -p compositor --bin compositor
    # A no-op after scripts/test.sh's host-tier build (the same command).
    cargo build --workspace --bins --locked --features compositor/test-hooks
fi
[ -x "$release" ] || fail "$release was not built"
[ -x "$debug" ] || fail "$debug was not built"

in_release=()
not_in_debug=()
for name in "${names[@]}"; do
    if grep -qaF -- "$name" "$release"; then in_release+=("$name"); fi
    if ! grep -qaF -- "$name" "$debug"; then not_in_debug+=("$name"); fi
done
if [ "${#in_release[@]}" -gt 0 ]; then
    fail "the release binary $release contains the test hook name(s) ${in_release[*]} (built without --features test-hooks)"
fi
if [ "${#not_in_debug[@]}" -gt 0 ]; then
    fail "control: the test build $debug lacks ${not_in_debug[*]}: was it built with --features compositor/test-hooks? (the search cannot be trusted otherwise)"
fi
echo "test hooks: OK: the release binary $release has none of ${names[*]}; the test build $debug has all ${#names[@]}"
