#!/usr/bin/env bash
# Self-test of the kernel VM tier's harness: shows that a failure inside the
# VM reaches the caller (and so CI).
#   1. run.sh propagates the guest command's exit status (exit 7 -> 7).
#   2. test.sh --selftest runs a deliberately failing test in the guest
#      (tests/tests/kernel_selftest.rs with VM_SELFTEST_FAIL=1) next to a
#      passing one, and must exit non-zero and report "1 passed, 1 failed".
# Prints "harness self-test: ok" and exits 0 only if both hold.
# usage: scripts/vm/selftest.sh [--no-build]   (two VM boots, ~30 s cached)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/../.."
# Own output dir, so the real run's serial log and results in target/vm stay.
export VM_OUT=${VM_SELFTEST_OUT:-$PWD/target/vm-selftest}
fail() { echo "harness self-test: FAILED: $*"; exit 1; }

set +e
"$here/run.sh" -- sh -c 'test "$DMABUF_TEST_TIER" = vm && test -c /dev/udmabuf && exit 7; exit 3' >&2
st=$?
set -e
[ $st = 7 ] || fail "run.sh returned $st for a guest command that exits 7"
echo "harness self-test: guest exit status 7 propagated"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
"$here/test.sh" --selftest "$@" > "$out" 2>&1
st=$?
set -e
# Prefixed, so that CI (which reads the bare "N passed, N failed" line of the
# real run) never mistakes the self-test's counts for the tier's.
sed 's/^/selftest| /' "$out"
[ "$st" != 0 ] || fail "test.sh exited 0 although a test failed inside the VM"
grep -qx '1 passed, 1 failed' "$out" || fail "test.sh did not report '1 passed, 1 failed'"
grep -q 'vm_selftest_deliberate_failure ... FAILED' "$out" \
    || fail "the deliberate failure was not named in the report"
echo "harness self-test: deliberate failure in the VM -> test.sh exit status $st"
echo "harness self-test: ok"
