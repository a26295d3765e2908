#!/usr/bin/env bash
# Instructions per frame of our compositor's event loop, counted by
# valgrind's callgrind: a measure for comparing two builds of ours where
# the side-by-side bench's CPU time is too noisy (this machine's speed
# drifts by a quarter within minutes; an instruction count does not).
#
#   scripts/bench/instructions.sh [--rev REV] [--short S] [--long S] [bench-client args...]
#
# Builds the compositor in release (at REV, exported into
# target/instructions/src, when given; else the working tree) into
# target/instructions, with rustix on its libc backend (its own vDSO
# lookup does not run under valgrind), runs it under callgrind twice
# against target/release/bench-client with the given arguments (default:
# --surfaces 64 --damage small), once for S_short and once for S_long
# seconds (default 5 and 15), and prints the event loop's instructions per
# presented frame: the difference of the two runs over the difference of
# their frames, so start-up (Vulkan, the client's buffers) drops out.
# Also lists the functions with the most instructions per frame.
#
# An instruction count is not CPU time: the kernel's share (wake-ups,
# socket writes) is not in it, nor are cache misses or lavapipe's
# threads. It says whether a change to our own code made a frame cheaper.
# Needs valgrind (apt-get install valgrind).
set -euo pipefail
cd "$(dirname "$0")/../.."

rev= short=5 long=15
while [ $# -gt 0 ]; do
    case "$1" in
        --rev) rev=$2; shift 2 ;;
        --short) short=$2; shift 2 ;;
        --long) long=$2; shift 2 ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || set -- --surfaces 64 --damage small
command -v valgrind > /dev/null || { echo "instructions.sh: valgrind missing" >&2; exit 1; }

out=$PWD/target/instructions
mkdir -p "$out"
src=$PWD
if [ -n "$rev" ]; then
    src=$out/src
    rm -rf "$src" && mkdir -p "$src"
    git archive --format=tar "$(git rev-parse --verify "$rev^{commit}")" | tar -x -C "$src"
fi
(cd "$src" && CARGO_TARGET_DIR="$out/target" RUSTFLAGS="--cfg rustix_use_libc" \
    cargo build --release --locked -p compositor --bin compositor)
cargo build --release --locked -p testkit --bin bench-client

runtime=$(mktemp -d)
trap 'rm -rf "$runtime"' EXIT

# run SECONDS: callgrind output in $out/run-SECONDS.cg, frames on stdout.
run() {
    local seconds=$1 socket=instructions-$1 pid frames
    shift
    XDG_RUNTIME_DIR=$runtime valgrind --tool=callgrind --separate-threads=no \
        --callgrind-out-file="$out/run-$seconds.cg" \
        "$out/target/release/compositor" --backend headless --size 1920x1080 --refresh 60 \
        --socket "$socket" > "$out/run-$seconds.log" 2>&1 &
    pid=$!
    for _ in $(seq 600); do [ -S "$runtime/$socket" ] && break; sleep 0.1; done
    [ -S "$runtime/$socket" ] || { echo "instructions.sh: compositor did not start (see $out/run-$seconds.log)" >&2; exit 1; }
    frames=$(XDG_RUNTIME_DIR=$runtime WAYLAND_DISPLAY=$socket target/release/bench-client "$@" \
        --seconds "$seconds" | tail -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["presented"])')
    kill -INT "$pid"
    wait "$pid" || true
    echo "$frames"
}

frames_short=$(run "$short" "$@")
frames_long=$(run "$long" "$@")
python3 - "$out/run-$short.cg" "$out/run-$long.cg" "$((frames_long - frames_short))" <<'EOF'
import re, subprocess, sys

def inclusive(path):
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                          capture_output=True, text=True, check=True).stdout
    counts = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(?:\?\?\?:)?(.*?)(?: \[[^\]]*\])?$", line)
        if m:
            counts[m.group(2)] = counts.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return counts

short, long, frames = inclusive(sys.argv[1]), inclusive(sys.argv[2]), int(sys.argv[3])
if frames <= 0:
    sys.exit("instructions.sh: the long run presented no more frames than the short one")
per = {k: (long.get(k, 0) - short.get(k, 0)) / frames for k in set(short) | set(long)}
loop = next((v for k, v in per.items() if k.startswith("calloop::loop_logic::EventLoop") and k.endswith("::run")), None)
print(f"event loop: {loop:.0f} instructions per presented frame ({frames} frames between the runs)")
top = sorted(((v, k) for k, v in per.items() if loop and v < loop * 0.999), reverse=True)[:25]
for v, k in top:
    print(f"{v:10.0f}  {k[:140]}")
EOF
