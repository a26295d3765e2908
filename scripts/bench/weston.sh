#!/usr/bin/env bash
# Weston 14 as a peer compositor for the side-by-side benchmark.
#
# Source it from a bench runner:
#
#   . scripts/bench/weston.sh
#   weston_install                       # -> $WESTON_PREFIX (default target/weston14)
#   weston_start "$WESTON_PREFIX" "$rt" weston-bench 1920 1080 60 "$log"
#   ... clients with XDG_RUNTIME_DIR="$rt" WAYLAND_DISPLAY=weston-bench ...
#   weston_stop
#
# or run it directly for a smoke test (install, start at 1920x1080@60, run
# target/debug/demo-client against it, stop):
#
#   bash scripts/bench/weston.sh smoke
#
# weston_install [PREFIX]
#   Puts Weston 14 (Debian's weston 14.0.2-1~bpo12+1 from bookworm-backports),
#   libweston-14-0, libdisplay-info2 and every other dependency that bookworm
#   proper cannot satisfy (libwayland-* 1.23: libweston-14 calls
#   wl_client_add_destroy_late_listener, new in libwayland 1.22) into PREFIX
#   with `apt-get download` + `dpkg -x`. Nothing is installed system-wide; the
#   system keeps Debian's weston 10. Idempotent: a complete prefix (stamp file
#   naming the same weston version) is left alone. Dependencies that only the
#   RDP backend needs (FreeRDP 3, in backports only) are skipped. Needs root
#   (or sudo) only if the apt lists lack the backports weston, for
#   `apt-get update`; bookworm-backports itself is added by
#   scripts/setup-host.sh. Sets WESTON_PREFIX (absolute).
#
# weston_start PREFIX RUNTIME_DIR SOCKET WIDTH HEIGHT REFRESH_HZ LOGFILE
#   Starts `weston --backend=headless --renderer=gl` (EGL surfaceless platform,
#   llvmpipe here) in the background with one WIDTHxHEIGHT output at
#   REFRESH_HZ (may be fractional; passed as mHz), desktop-shell without
#   panel and animations, listening on RUNTIME_DIR/SOCKET; Weston's stderr log
#   goes to LOGFILE (truncated). Returns once clients can connect: the socket
#   exists, the log says "Output '...' enabled", and (if wayland-info is
#   installed) a client round-trip succeeds; bounded by WESTON_START_TIMEOUT
#   seconds (default 30). Fails if Weston did not log "Using GL renderer".
#   Sets WESTON_PID, WESTON_SOCKET, WESTON_RUNTIME_DIR, WESTON_LOG,
#   WESTON_GL_RENDERER (the log's "GL renderer:" value) and WESTON_STARTUP_MS.
#   Optional: WESTON_EXTRA_ARGS (extra weston arguments, word-split),
#   WESTON_INI_EXTRA (text appended to the generated weston.ini; new sections
#   only: Weston reads the first [core]/[shell] it finds),
#   WESTON_REPAINT_WINDOW (ms, [core] repaint-window; Weston's default is 7).
#   Pacing caveat, measured here with weston-presentation-shm: the headless
#   backend arms a fixed 16 ms "finish frame" timer after each repaint and the
#   core then waits until refresh - repaint-window before the next one, so with
#   the default window the period is ~16 + 9.7 ms + render time = ~25.5 ms
#   (~39 Hz) whatever --refresh-rate says; WESTON_REPAINT_WINDOW=16 gives
#   ~17.4 ms (~57 Hz) at 60 Hz.
#
# weston_stop
#   SIGTERM to WESTON_PID, waits up to WESTON_STOP_TIMEOUT seconds (default
#   10), then SIGKILL; reaps it and clears WESTON_PID.
#
# Sourcing this file does not change shell options.

WESTON_DEB_VERSION="${WESTON_DEB_VERSION:-14.0.2-1~bpo12+1}"
WESTON_BENCH_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Packages only the RDP backend (rdp-backend.so) links; not needed headless.
WESTON_SKIP_DEPS_RE='^(libfreerdp.*|libwinpr.*)$'

_weston_log() { printf 'weston.sh: %s\n' "$*" >&2; }

_weston_abs() {
    case "$1" in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s/%s\n' "$PWD" "$1" ;;
    esac
}

# Highest version of package $1 offered by apt from a suite whose name does /
# does not ($2 = backports / proper) contain "-backports".
_weston_madison_versions() {
    local pkg=$1 which=$2
    apt-cache madison "$pkg" 2>/dev/null | awk -F'|' -v which="$which" '
        { gsub(/^ +| +$/, "", $2); bp = ($3 ~ /-backports/) }
        (which == "backports" && bp) || (which == "proper" && !bp) { print $2 }'
}

# dpkg op for a Debian relation operator.
_weston_op() {
    case "$1" in
        ">=") echo ge ;; "<=") echo le ;; "=") echo eq ;;
        ">>") echo gt ;; "<<") echo lt ;; *) echo "" ;;
    esac
}

# _weston_satisfies VERSION OP WANT: does VERSION satisfy "(OP WANT)"?
_weston_satisfies() {
    local have=$1 op=$2 want=$3
    [ -n "$have" ] || return 1
    [ -z "$op" ] && return 0
    dpkg --compare-versions "$have" "$(_weston_op "$op")" "$want"
}

# Prints the Depends and Pre-Depends clauses of PKG=VERSION, one per line.
_weston_depends() {
    apt-cache show "$1=$2" 2>/dev/null | awk '
        /^$/ { exit }
        /^(Pre-)?Depends:/ { sub(/^[^:]*: */, ""); n = split($0, a, /, */); for (i = 1; i <= n; i++) print a[i] }'
}

_weston_libdir() {
    local f
    for f in "$1"/usr/lib/*/libweston-14.so.0; do
        [ -e "$f" ] && { dirname "$f"; return 0; }
    done
    return 1
}

# Files a headless + GL + desktop-shell Weston loads; all must resolve.
_weston_check_links() {
    local prefix=$1 lib f missing=0
    lib=$(_weston_libdir "$prefix") || { _weston_log "no libweston-14.so.0 under $prefix"; return 1; }
    for f in "$prefix/usr/bin/weston" "$lib/weston/libexec_weston.so.0" "$lib/libweston-14.so.0" \
             "$lib/libweston-14/headless-backend.so" "$lib/libweston-14/gl-renderer.so" \
             "$lib/weston/desktop-shell.so" "$prefix/usr/libexec/weston-desktop-shell"; do
        if [ ! -e "$f" ]; then
            _weston_log "missing $f"; missing=1; continue
        fi
        if LD_LIBRARY_PATH="$lib:$lib/weston" ldd "$f" 2>&1 | grep -q 'not found'; then
            _weston_log "unresolved libraries in $f:"
            LD_LIBRARY_PATH="$lib:$lib/weston" ldd "$f" 2>&1 | grep 'not found' >&2
            missing=1
        fi
    done
    return $missing
}

weston_install() {
    local prefix stamp sudo="" work pkg ver clause alt name op want inst proper bp chosen
    prefix=$(_weston_abs "${1:-$WESTON_BENCH_REPO/target/weston14}")
    stamp="$prefix/.weston-bench-stamp"
    if [ -f "$stamp" ] && grep -qx "weston=$WESTON_DEB_VERSION" "$stamp" && _weston_check_links "$prefix"; then
        echo "weston_install: $prefix already holds weston $WESTON_DEB_VERSION ($(grep -c = "$stamp") packages); nothing to do"
        WESTON_PREFIX=$prefix
        return 0
    fi
    if [ -e "$prefix" ] && [ ! -f "$prefix/.weston-bench-prefix" ] && [ -n "$(ls -A "$prefix" 2>/dev/null)" ]; then
        _weston_log "$prefix exists and was not made by weston_install; refusing to replace it"
        return 1
    fi

    # apt must know the backports weston; refresh the lists only if it does not.
    if ! apt-cache madison weston 2>/dev/null | grep -qF "$WESTON_DEB_VERSION"; then
        if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
            _weston_log "bookworm-backports is not an apt source; run scripts/setup-host.sh first"
            return 1
        fi
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        echo "weston_install: apt lists lack weston $WESTON_DEB_VERSION; running ${sudo:+sudo }apt-get update"
        $sudo apt-get update -qq || return 1
        if ! apt-cache madison weston 2>/dev/null | grep -qF "$WESTON_DEB_VERSION"; then
            _weston_log "apt offers no weston $WESTON_DEB_VERSION even after apt-get update"
            return 1
        fi
    fi

    # Resolve: the three roots, then every dependency that neither the
    # installed system nor bookworm proper satisfies, from backports,
    # recursively.
    local -A want_ver=() seen=()
    local -a queue=() fetch=() skipped=() notinst=()
    want_ver[weston]=$WESTON_DEB_VERSION
    want_ver[libweston-14-0]=$WESTON_DEB_VERSION
    want_ver[libdisplay-info2]=$(_weston_madison_versions libdisplay-info2 backports | head -n1)
    if [ -z "${want_ver[libdisplay-info2]}" ]; then
        _weston_log "apt offers no libdisplay-info2 from bookworm-backports"; return 1
    fi
    queue=(weston libweston-14-0 libdisplay-info2)
    while [ ${#queue[@]} -gt 0 ]; do
        pkg=${queue[0]}; queue=("${queue[@]:1}")
        [ -n "${seen[$pkg]:-}" ] && continue
        seen[$pkg]=1
        ver=${want_ver[$pkg]}
        fetch+=("$pkg=$ver")
        while IFS= read -r clause; do
            [ -n "$clause" ] || continue
            local ok=0 cand="" cand_name="" first=""
            # Alternatives "a (>= 1) | b": the first one satisfiable wins.
            local IFS_save=$IFS; IFS='|'; local -a alts=($clause); IFS=$IFS_save
            for alt in "${alts[@]}"; do
                alt=$(echo "$alt" | sed 's/^ *//; s/ *$//')
                name=${alt%% *}; name=${name%%:*}
                op=""; want=""
                if [[ $alt =~ \(([<>=]+)\ *([^\)]+)\) ]]; then op=${BASH_REMATCH[1]}; want=${BASH_REMATCH[2]}; fi
                [ -z "$first" ] && first="$name${op:+ ($op $want)}"
                if [ -n "${want_ver[$name]:-}" ] && _weston_satisfies "${want_ver[$name]}" "$op" "$want"; then
                    ok=1; break          # already in the prefix set
                fi
                inst=$(dpkg-query -W -f='${Status} ${Version}\n' "$name" 2>/dev/null | awk '/install ok installed/ {print $4; exit}')
                if _weston_satisfies "$inst" "$op" "$want"; then ok=1; break; fi
                for proper in $(_weston_madison_versions "$name" proper); do
                    if _weston_satisfies "$proper" "$op" "$want"; then ok=2; break; fi
                done
                [ $ok -eq 2 ] && { notinst+=("$name (bookworm $proper, wanted by $pkg)"); break; }
                if [ -z "$cand" ]; then
                    for bp in $(_weston_madison_versions "$name" backports); do
                        if _weston_satisfies "$bp" "$op" "$want"; then cand=$bp; cand_name=$name; break; fi
                    done
                fi
            done
            [ $ok -ne 0 ] && continue
            if [ -z "$cand" ]; then
                _weston_log "no package satisfies '$clause' (needed by $pkg)"; return 1
            fi
            if [[ $cand_name =~ $WESTON_SKIP_DEPS_RE ]]; then
                skipped+=("$cand_name=$cand (wanted by $pkg; RDP backend only)")
                continue
            fi
            if [ -z "${want_ver[$cand_name]:-}" ]; then
                want_ver[$cand_name]=$cand
                queue+=("$cand_name")
            fi
        done < <(_weston_depends "$pkg" "$ver")
    done

    # Download into a directory _apt can write, extract into a fresh tree,
    # then swap it in.
    work=$(mktemp -d /tmp/weston-install.XXXXXX) || return 1
    chmod 0755 "$work"
    if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$work"; fi
    echo "weston_install: downloading ${#fetch[@]} packages: ${fetch[*]}"
    if ! (cd "$work" && apt-get download -q "${fetch[@]}" >/dev/null); then
        _weston_log "apt-get download failed"; rm -rf "$work"; return 1
    fi
    local tree="$prefix.partial.$$" deb
    rm -rf "$tree"; mkdir -p "$tree" || { rm -rf "$work"; return 1; }
    : > "$tree/.weston-bench-prefix"
    mkdir -p "$tree/debs"
    for deb in "$work"/*.deb; do
        dpkg -x "$deb" "$tree" || { _weston_log "dpkg -x $deb failed"; rm -rf "$work" "$tree"; return 1; }
        mv "$deb" "$tree/debs/"
    done
    rm -rf "$work"
    if ! _weston_check_links "$tree"; then
        _weston_log "the extracted tree $tree does not link; left in place for inspection"; return 1
    fi
    local lib; lib=$(_weston_libdir "$tree")
    local got; got=$(LD_LIBRARY_PATH="$lib:$lib/weston" "$tree/usr/bin/weston" --version 2>&1)
    case "$got" in
        *"weston 14."*) ;;
        *) _weston_log "unexpected 'weston --version': $got"; rm -rf "$tree"; return 1 ;;
    esac
    printf '%s\n' "${fetch[@]}" > "$tree/.weston-bench-stamp"
    if [ -e "$prefix" ]; then rm -rf "$prefix"; fi
    mkdir -p "$(dirname "$prefix")"
    mv "$tree" "$prefix" || return 1
    WESTON_PREFIX=$prefix
    echo "weston_install: extracted into $prefix (nothing installed system-wide): ${fetch[*]}"
    echo "weston_install: $got"
    [ ${#skipped[@]} -gt 0 ] && echo "weston_install: skipped (backports-only, RDP backend only): ${skipped[*]}"
    [ ${#notinst[@]} -gt 0 ] && echo "weston_install: not installed on this system but in bookworm (not fetched; only optional modules use them): ${notinst[*]}"
    return 0
}

# Alive and not a zombie (a zombie child of this shell still answers kill -0).
_weston_alive() {
    local pid=$1 state
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

_weston_now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# _weston_prepare PREFIX_LIBDIR PREFIX RUNTIME_DIR SOCKET
# Sets _WESTON_MAP (WESTON_MODULE_MAP for the prefix) and writes the
# benchmark's weston.ini into RUNTIME_DIR, its path in _WESTON_INI.
_weston_prepare() {
    local lib=$1 prefix=$2 rt=$3 socket=$4 m
    # All modules and helper binaries of the prefix, as name=path;name=path
    # (libweston's weston_module_path_from_env(): the name is the module's
    # file name, e.g. gl-renderer.so, or the helper's, e.g. weston-desktop-shell).
    _WESTON_MAP=""
    for m in "$lib"/libweston-14/*.so "$lib"/weston/*.so "$prefix"/usr/libexec/weston-*; do
        [ -e "$m" ] && _WESTON_MAP="$_WESTON_MAP${_WESTON_MAP:+;}$(basename "$m")=$m"
    done

    _WESTON_INI="$rt/$socket.weston.ini"
    cat > "$_WESTON_INI" <<INI
# Generated by scripts/bench/weston.sh for the benchmark.
[core]
idle-time=0
require-input=false
${WESTON_REPAINT_WINDOW:+repaint-window=$WESTON_REPAINT_WINDOW}

[shell]
panel-position=none
background-color=0xff202020
startup-animation=none
animation=none
close-animation=none
focus-animation=none
locking=false

[input-method]
# An empty path: no weston-keyboard input-method client is launched.
path=

${WESTON_INI_EXTRA:-}
INI

}

weston_start() {
    if [ $# -ne 7 ]; then
        _weston_log "usage: weston_start PREFIX RUNTIME_DIR SOCKET WIDTH HEIGHT REFRESH_HZ LOGFILE"; return 2
    fi
    local prefix rt=$2 socket=$3 width=$4 height=$5 hz=$6 logfile=$7 lib mhz ini map m t0 deadline
    prefix=$(_weston_abs "$1"); rt=$(_weston_abs "$rt"); logfile=$(_weston_abs "$logfile")
    if _weston_alive "${WESTON_PID:-}"; then
        _weston_log "a Weston (pid $WESTON_PID) is already running; weston_stop it first"; return 1
    fi
    lib=$(_weston_libdir "$prefix") || { _weston_log "no Weston 14 in $prefix (run weston_install)"; return 1; }
    mhz=$(awk -v hz="$hz" 'BEGIN { if (hz + 0 <= 0) exit 1; printf "%d", hz * 1000 + 0.5 }') \
        || { _weston_log "bad refresh rate '$hz'"; return 1; }
    mkdir -p "$rt" && chmod 0700 "$rt" || return 1
    mkdir -p "$(dirname "$logfile")" || return 1
    if [ -e "$rt/$socket" ]; then
        _weston_log "$rt/$socket already exists (another compositor, or a stale socket)"; return 1
    fi

    _weston_prepare "$lib" "$prefix" "$rt" "$socket" || return 1
    map=$_WESTON_MAP ini=$_WESTON_INI

    : > "$logfile"
    t0=$(_weston_now_ms)
    # shellcheck disable=SC2086  # WESTON_EXTRA_ARGS is word-split on purpose
    env -u WAYLAND_DISPLAY -u WAYLAND_SOCKET -u DISPLAY \
        XDG_RUNTIME_DIR="$rt" \
        LD_LIBRARY_PATH="$lib:$lib/weston${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        WESTON_MODULE_MAP="$map" \
        "$prefix/usr/bin/weston" --config="$ini" --backend=headless --renderer=gl \
        --width="$width" --height="$height" --refresh-rate="$mhz" \
        --socket="$socket" --idle-time=0 ${WESTON_EXTRA_ARGS:-} \
        </dev/null >>"$logfile" 2>&1 &
    WESTON_PID=$!
    WESTON_SOCKET=$socket
    WESTON_RUNTIME_DIR=$rt
    WESTON_LOG=$logfile

    deadline=$(( t0 + ${WESTON_START_TIMEOUT:-30} * 1000 ))
    local have_info=0 ready=0
    command -v wayland-info >/dev/null 2>&1 && have_info=1
    while [ "$(_weston_now_ms)" -lt "$deadline" ]; do
        if ! _weston_alive "$WESTON_PID"; then
            local rc=0; wait "$WESTON_PID" 2>/dev/null || rc=$?
            _weston_log "Weston exited (status $rc) during start-up; last log lines:"
            tail -n 25 "$logfile" >&2
            WESTON_PID=""
            return 1
        fi
        if [ -S "$rt/$socket" ] && grep -q "Output '.*' enabled" "$logfile"; then
            if [ $have_info -eq 0 ] ||
               XDG_RUNTIME_DIR="$rt" WAYLAND_DISPLAY="$socket" timeout 5 wayland-info >/dev/null 2>&1; then
                ready=1; break
            fi
        fi
        sleep 0.02
    done
    if [ $ready -ne 1 ]; then
        _weston_log "Weston not ready within ${WESTON_START_TIMEOUT:-30} s; last log lines:"
        tail -n 25 "$logfile" >&2
        weston_stop >/dev/null
        return 1
    fi
    WESTON_STARTUP_MS=$(( $(_weston_now_ms) - t0 ))

    if ! grep -q 'Using GL renderer' "$logfile"; then
        _weston_log "Weston did not log 'Using GL renderer' (pixman fallback?); stopping it"
        grep -iE 'renderer|EGL|pixman' "$logfile" >&2
        weston_stop >/dev/null
        return 1
    fi
    WESTON_GL_RENDERER=$(sed -n 's/^.*GL renderer: //p' "$logfile" | head -n1)
    case "$WESTON_GL_RENDERER" in
        *llvmpipe*) ;;
        *) _weston_log "warning: GL renderer is '$WESTON_GL_RENDERER', not llvmpipe" ;;
    esac
    local window; window=$(sed -n 's/^.*Output repaint window is \([0-9-]*\) ms.*$/\1/p' "$logfile" | head -n1)
    echo "weston_start: pid $WESTON_PID on $rt/$socket, ${width}x${height}@${hz} Hz (--refresh-rate=$mhz mHz, repaint window ${window:-?} ms), GL renderer: $WESTON_GL_RENDERER, ready in $WESTON_STARTUP_MS ms$([ $have_info -eq 1 ] && echo ' (wayland-info round-trip ok)')"
    return 0
}

weston_stop() {
    local pid=${WESTON_PID:-} deadline rc how=SIGTERM
    if [ -z "$pid" ]; then
        echo "weston_stop: no Weston running"; return 0
    fi
    if _weston_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        deadline=$(( $(_weston_now_ms) + ${WESTON_STOP_TIMEOUT:-10} * 1000 ))
        while _weston_alive "$pid" && [ "$(_weston_now_ms)" -lt "$deadline" ]; do sleep 0.02; done
        if _weston_alive "$pid"; then
            how=SIGKILL
            kill -KILL "$pid" 2>/dev/null
            while _weston_alive "$pid"; do sleep 0.02; done
        fi
    fi
    rc=0; wait "$pid" 2>/dev/null || rc=$?
    # After SIGKILL Weston cannot remove its socket and lock file.
    if [ -n "${WESTON_RUNTIME_DIR:-}" ] && [ -n "${WESTON_SOCKET:-}" ]; then
        rm -f "$WESTON_RUNTIME_DIR/$WESTON_SOCKET" "$WESTON_RUNTIME_DIR/$WESTON_SOCKET.lock"
    fi
    echo "weston_stop: pid $pid stopped with $how (exit status $rc)"
    WESTON_PID=""
    return 0
}

# ---------------------------------------------------------------------------
# Smoke test: bash scripts/bench/weston.sh smoke

# Counts pixels of three of demo-client's bar colours in a PNG (stdlib only).
_weston_png_bar_pixels() {
    python3 - "$1" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat = 8, []
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    pos += 12 + n
    if kind == b'IHDR':
        w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT':
        idat.append(body)
assert depth == 8 and ctype in (2, 6), (depth, ctype)
bpp = 3 if ctype == 2 else 4
raw, stride = zlib.decompress(b''.join(idat)), w * bpp
prev, p = bytearray(stride), 0
want = {(235, 235, 16): 'yellow', (16, 235, 235): 'cyan', (235, 16, 235): 'magenta'}
count = dict.fromkeys(want.values(), 0)
for _ in range(h):
    f, cur = raw[p], bytearray(raw[p + 1:p + 1 + stride])
    p += 1 + stride
    if f == 1:
        for x in range(bpp, stride):
            cur[x] = (cur[x] + cur[x - bpp]) & 255
    elif f == 2:
        cur = bytearray((a + b) & 255 for a, b in zip(cur, prev))
    elif f == 3:
        for x in range(stride):
            cur[x] = (cur[x] + ((cur[x - bpp] if x >= bpp else 0) + prev[x]) // 2) & 255
    elif f == 4:
        for x in range(stride):
            a = cur[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            cur[x] = (cur[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        k = (cur[x], cur[x + 1], cur[x + 2])
        if k in want:
            count[want[k]] += 1
    prev = cur
print(' '.join(f'{k}={v}' for k, v in count.items()))
PY
}

_weston_smoke() {
    set -euo pipefail
    local repo=$WESTON_BENCH_REPO client="$WESTON_BENCH_REPO/target/debug/demo-client"
    local work rt log sock=weston-bench-smoke rc=0 lib t0 t1
    weston_install
    work=$(mktemp -d /tmp/weston-smoke.XXXXXX)
    rt="$work/runtime"; log="$work/weston.log"
    trap 'weston_stop >/dev/null 2>&1 || true' EXIT
    # Smoke only: "proto" dumps every request/event into the log (evidence of
    # dma-buf imports and frame callbacks); --debug lets weston-screenshooter
    # use weston_capture_v1.
    WESTON_EXTRA_ARGS="--debug --logger-scopes=log,proto" \
        weston_start "$WESTON_PREFIX" "$rt" "$sock" 1920 1080 60 "$log"
    echo "--- Weston log, renderer lines:"
    grep -E 'Loading module|EGL version|EGL vendor|dmabuf support|GL version|GL vendor|GL renderer:|Using GL renderer|Output .* enabled|failed to' "$log" | grep -v '\[proto\]' || true

    if [ ! -x "$client" ]; then
        echo "--- $client does not exist; build it with: cargo build -p testkit --bin demo-client"
        echo "    (no other dma-buf client works here: weston-simple-dmabuf-egl/-feedback need a DRM render node for GBM)"
        weston_stop
        return 1
    fi
    echo "--- running: demo-client --frames 120 (TEST_BUFFER_PROVIDER=${TEST_BUFFER_PROVIDER:-memfd (default)})"
    t0=$(_weston_now_ms)
    XDG_RUNTIME_DIR="$rt" WAYLAND_DISPLAY="$sock" RUST_BACKTRACE=0 \
        timeout 120 "$client" --frames 120 >"$work/client.out" 2>&1 &
    local cpid=$! n i shot=""
    # While it runs: once Weston has sent 30 frame callbacks, take a screenshot.
    lib=$(_weston_libdir "$WESTON_PREFIX")
    for i in $(seq 1 500); do
        n=$(grep -c 'ev wl_callback@[0-9]*\.done' "$log" || true)
        [ "$n" -ge 30 ] && break
        _weston_alive "$cpid" || break
        sleep 0.01
    done
    if _weston_alive "$cpid"; then
        (cd "$work" && XDG_RUNTIME_DIR="$rt" WAYLAND_DISPLAY="$sock" LD_LIBRARY_PATH="$lib" \
            timeout 20 "$WESTON_PREFIX/usr/bin/weston-screenshooter" >/dev/null 2>&1) || true
        shot=$(ls "$work"/wayland-screenshot-*.png 2>/dev/null | head -n1 || true)
    fi
    wait "$cpid" || rc=$?
    t1=$(_weston_now_ms)
    echo "demo-client exit status: $rc ($(( t1 - t0 )) ms)"
    sed 's/^/  client: /' "$work/client.out" | head -n 20

    echo "--- Weston log: dma-buf evidence (proto scope; the client's PID only)"
    local cpid_w
    cpid_w=$(grep -m1 'rq zwp_linux_dmabuf_v1@[0-9]*\.create_params' "$log" | sed -n 's/.*(PID \([0-9]*\)).*/\1/p' || true)
    if [ -n "$cpid_w" ]; then
        local clog="$work/client-proto.log"
        grep "(PID $cpid_w)" "$log" > "$clog" || true
        grep -m3 -E 'linux_buffer_params_v1@[0-9]+\.(add|create_immed)' "$clog" | sed 's/^/  /' || true
        for k in 'rq zwp_linux_buffer_params_v1@[0-9]*\.create_immed' 'ev zwp_linux_buffer_params_v1@[0-9]*\.failed' \
                 'rq wl_surface@[0-9]*\.attach' 'rq wl_surface@[0-9]*\.commit' 'ev wl_callback@[0-9]*\.done' \
                 'ev wl_buffer@[0-9]*\.release' 'ev wl_display@1\.error'; do
            printf '  %-50s %s\n' "$k" "$(grep -c "$k" "$clog" || true)"
        done
        grep -E 'wl_display@1\.error' "$clog" | head -n 3 | sed 's/^/  /' || true
    else
        echo "  the client never sent zwp_linux_dmabuf_v1.create_params"
    fi
    grep -iE 'dmabuf|dma-buf|import' "$log" | grep -v '\[proto\]' | sed 's/^/  log: /' || true

    if [ -n "$shot" ]; then
        if command -v python3 >/dev/null; then
            echo "--- screenshot during the run: $shot; demo-client bar pixels: $(_weston_png_bar_pixels "$shot")"
        else
            echo "--- screenshot during the run: $shot"
        fi
    else
        echo "--- no screenshot taken (the client finished or failed first)"
    fi
    trap - EXIT
    weston_stop
    echo "smoke: Weston log $log; start-up ${WESTON_STARTUP_MS} ms; demo-client exit status $rc"
    return "$rc"
}

# weston_exec PREFIX SOCKET WIDTH HEIGHT REFRESH_HZ
#   Replaces the shell with the same Weston as weston_start, in the
#   foreground, on $XDG_RUNTIME_DIR/SOCKET; its log goes to stderr. For
#   callers that need Weston's own pid (bench-compare measures the process
#   it started).
weston_exec() {
    if [ $# -ne 5 ]; then
        _weston_log "usage: weston_exec PREFIX SOCKET WIDTH HEIGHT REFRESH_HZ"; return 2
    fi
    local prefix socket=$2 width=$3 height=$4 hz=$5 lib mhz rt=${XDG_RUNTIME_DIR:?XDG_RUNTIME_DIR must be set}
    prefix=$(_weston_abs "$1")
    lib=$(_weston_libdir "$prefix") || { _weston_log "no Weston 14 in $prefix (run weston_install)"; return 1; }
    mhz=$(awk -v hz="$hz" 'BEGIN { if (hz + 0 <= 0) exit 1; printf "%d", hz * 1000 + 0.5 }') \
        || { _weston_log "bad refresh rate '$hz'"; return 1; }
    _weston_prepare "$lib" "$prefix" "$rt" "$socket" || return 1
    # shellcheck disable=SC2086  # WESTON_EXTRA_ARGS is word-split on purpose
    exec env -u WAYLAND_DISPLAY -u WAYLAND_SOCKET -u DISPLAY \
        LD_LIBRARY_PATH="$lib:$lib/weston${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        WESTON_MODULE_MAP="$_WESTON_MAP" \
        "$prefix/usr/bin/weston" --config="$_WESTON_INI" --backend=headless --renderer=gl \
        --width="$width" --height="$height" --refresh-rate="$mhz" \
        --socket="$socket" --idle-time=0 ${WESTON_EXTRA_ARGS:-} </dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case "${1:-}" in
        smoke) _weston_smoke ;;
        install) shift; weston_install "$@" ;;
        exec) shift; weston_exec "$@" ;;
        *) echo "usage: bash $0 smoke | install [PREFIX] | exec PREFIX SOCKET WIDTH HEIGHT REFRESH_HZ   (or source it: weston_install, weston_start, weston_stop)" >&2; exit 2 ;;
    esac
fi
