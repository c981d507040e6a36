#!/usr/bin/env bash
# run.sh - end-to-end throughput/latency of seglossd against the FastAPI + PyTorch service a
# Python team would deploy (pyservice.py), on the same request bodies, over loopback HTTP.
#
# Usage: tests/bench/compare/run.sh [PATH/TO/seglossd]      (default: build/seglossd of this repo)
#
# Builds nothing: build seglossd first (make -j2). Environment knobs (defaults in brackets):
#   COMPARE_SECONDS            length of each measured wrk run, seconds           [15]
#   COMPARE_WARMUP             unmeasured wrk run before each measured one, s     [2]
#   COMPARE_WRK_THREADS        wrk threads                                        [2]
#   COMPARE_SMALL_CONNECTIONS  open connections for the 1x64x64 body              [8]
#   COMPARE_LARGE_CONNECTIONS  open connections for the 8x512x512 body            [4]
#   COMPARE_TOLERANCE          max |difference| of any number between the two     [1e-4]
#
# Exit status: 0 done; 1 the services disagree, a server failed or wrk saw errors; 2 a missing
# package or seglossd binary (the apt-get line or the make command to run is printed).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
SEGLOSSD=${1:-$ROOT/build/seglossd}
# Debian's python: the one python3-torch & co. are installed for (a pyenv python3 may be first
# on PATH and has none of them).
PY=/usr/bin/python3

SECS=${COMPARE_SECONDS:-15}
WARMUP=${COMPARE_WARMUP:-2}
WRK_THREADS=${COMPARE_WRK_THREADS:-2}
SMALL_CONNS=${COMPARE_SMALL_CONNECTIONS:-8}
LARGE_CONNS=${COMPARE_LARGE_CONNECTIONS:-4}
TOL=${COMPARE_TOLERANCE:-1e-4}

die() { echo "run.sh: $*" >&2; exit 1; }

for v in "$SECS" "$WRK_THREADS" "$SMALL_CONNS" "$LARGE_CONNS"; do
    case $v in '' | *[!0-9]* | 0) die "durations, threads and connections must be positive integers (got '$v')" ;; esac
done
case $WARMUP in '' | *[!0-9]*) die "COMPARE_WARMUP must be an integer >= 0 (got '$WARMUP')" ;; esac

# ---- prerequisites ---------------------------------------------------------------------------
# Required: what the brief's Python team has. Optional: python3-uvloop and python3-httptools are
# what `pip install uvicorn[standard]` adds and what uvicorn's docs recommend for production;
# when present, uvicorn is run with them (faster event loop and HTTP parser), so Python is not
# handicapped by the pure-Python h11 parser. Which ones were used is printed with the results.
REQUIRED="python3-torch python3-fastapi python3-uvicorn python3-numpy wrk"
OPTIONAL="python3-uvloop python3-httptools"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
command -v dpkg-query >/dev/null 2>&1 || { echo "run.sh: needs Debian (dpkg-query) for the package check" >&2; exit 2; }
missing=""
for p in $REQUIRED; do installed "$p" || missing="$missing $p"; done
if [ -n "$missing" ] || [ ! -x "$PY" ]; then
    echo "run.sh: missing Debian packages:${missing:- python3}. Run (as root):" >&2
    echo "  apt-get update && apt-get install -y $REQUIRED $OPTIONAL" >&2
    exit 2
fi
if [ ! -x "$SEGLOSSD" ]; then
    echo "run.sh: no seglossd at $SEGLOSSD; build it with: make -C $ROOT -j2 (or pass its path)" >&2
    exit 2
fi
SEGLOSSD=$(cd "$(dirname "$SEGLOSSD")" && pwd)/$(basename "$SEGLOSSD")

UVICORN_OPTS="--loop asyncio --http h11"
if installed python3-uvloop && installed python3-httptools; then
    UVICORN_OPTS="--loop uvloop --http httptools"
fi

# ---- servers, cleaned up on any exit ---------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/segloss-compare.XXXXXX")
SEG_PID=""
PY_PID=""
cleanup() {
    # Only the two servers this script started, by pid. seglossd drains on SIGTERM (nothing is
    # in flight by now, so it exits at once); uvicorn shuts down on SIGTERM.
    for p in $SEG_PID $PY_PID; do kill "$p" 2>/dev/null || true; done
    for p in $SEG_PID $PY_PID; do wait "$p" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== environment"
echo "date      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "host      $(uname -sr), $(nproc) of $(nproc --all) cores usable, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
echo "load avg  $(cut -d' ' -f1-3 /proc/loadavg) (anything else busy on these cores skews both columns)"
echo "seglossd  $SEGLOSSD: $("$SEGLOSSD" --version 2>&1 | head -1), sha256 $(sha256sum "$SEGLOSSD" | cut -c1-16)"
echo "packages  $(for p in $REQUIRED $OPTIONAL python3-pydantic python3-starlette libjansson4 zlib1g; do
    dpkg-query -W -f='${Package}=${Version} ' "$p" 2>/dev/null || true; done)"
echo "python    $($PY -c 'import sys, torch, fastapi, uvicorn, numpy; print(sys.version.split()[0], "torch", torch.__version__, "fastapi", fastapi.__version__, "uvicorn", uvicorn.__version__, "numpy", numpy.__version__)')"
echo "uvicorn   1 worker, $UVICORN_OPTS, torch.set_num_threads(1)"
echo "seglossd  default threads (one compute worker per core), --access-log 0"

"$PY" "$HERE/payload.py" "$TMP"

# seglossd picks a free port itself (--port 0) and prints it: no race with other processes.
"$SEGLOSSD" --port 0 --bind 127.0.0.1 --access-log 0 >"$TMP/seglossd.out" 2>"$TMP/seglossd.err" &
SEG_PID=$!
SEG_PORT=""
for _ in $(seq 100); do
    SEG_PORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$TMP/seglossd.out")
    [ -n "$SEG_PORT" ] && break
    kill -0 "$SEG_PID" 2>/dev/null || break
    sleep 0.1
done
[ -n "$SEG_PORT" ] || { cat "$TMP/seglossd.out" "$TMP/seglossd.err" >&2; die "seglossd did not start"; }

# uvicorn 0.17 does not report the port it got for --port 0, so ask the kernel for a free one
# and hand it over; the tiny window in which another process could take it only makes the
# start fail loudly below, never measures the wrong server.
PY_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086  # UVICORN_OPTS is a list of flags
"$PY" -m uvicorn --app-dir "$HERE" pyservice:app --host 127.0.0.1 --port "$PY_PORT" --workers 1 \
    --no-access-log --log-level warning $UVICORN_OPTS >"$TMP/uvicorn.log" 2>&1 &
PY_PID=$!
# Importing torch takes a few seconds: wait for /healthz rather than a fixed sleep.
if ! "$PY" - "$PY_PORT" "$PY_PID" <<'EOF'; then
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
for _ in range(600):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
        sys.exit(0)
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(1)
        time.sleep(0.1)
sys.exit(1)
EOF
    cat "$TMP/uvicorn.log" >&2
    die "uvicorn did not start on port $PY_PORT"
fi
SEG_URL=http://127.0.0.1:$SEG_PORT
PY_URL=http://127.0.0.1:$PY_PORT
echo "servers   seglossd $SEG_URL (pid $SEG_PID), python $PY_URL (pid $PY_PID)"

# ---- 1. same numbers? ------------------------------------------------------------------------
# Timing two services only means something if they compute the same thing. edge.json is checked
# but not timed: it has an image where both masks are empty (the 0/0 convention).
echo
echo "== agreement (tolerance $TOL)"
if ! "$PY" "$HERE/check.py" "$SEG_URL" "$PY_URL" "$TOL" \
    "$TMP/small.json" "$TMP/large.json" "$TMP/edge.json"; then
    die "FAIL: seglossd and pyservice.py answer different numbers; not benchmarking"
fi

# The same large arrays uncompressed and as zstd: seglossd only (the Python service reads gzip
# and zlib); its answers must be large.json's, every number equal (elapsed_ms aside).
if ! "$PY" - "$SEG_URL" "$TMP/large.json" "$TMP/large_none.json" "$TMP/large_zstd.json" <<'EOF'; then
import json, sys, urllib.request
url, files = sys.argv[1], sys.argv[2:]
def post(path):
    req = urllib.request.Request(url + "/v1/score", data=open(path, "rb").read(),
                                 headers={"Content-Type": "application/json"})
    doc = json.load(urllib.request.urlopen(req, timeout=120))
    doc.pop("elapsed_ms", None)
    return doc
ref = post(files[0])
for f in files[1:]:
    if post(f) != ref:
        sys.exit(f"seglossd answers {f} otherwise than {files[0]}")
print("seglossd  large_none.json and large_zstd.json answered exactly as large.json")
EOF
    die "FAIL: the uncompressed or zstd body is answered otherwise"
fi

# ---- 2. wrk ----------------------------------------------------------------------------------
# Latency in ms from wrk's "50%  1.23ms" style (us, ms, s, m units).
to_ms() {
    awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 } else if (v ~ /ms$/) { sub(/ms$/, "", v) }
           else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } else if (v ~ /m$/) { sub(/m$/, "", v); v *= 60000 }
           printf "%.2f", v }'
}

# bench NAME URL BODY CONNS: a warm-up run (discarded), then the measured run into $TMP/NAME.wrk.
# Same wrk threads, connections and duration for both servers. --timeout 60s: a slow answer
# is measured, not dropped as a wrk timeout (wrk's default is 2 s).
bench() {
    local name=$1 url=$2 body=$3 conns=$4 out=$TMP/$1.wrk
    if [ "$WARMUP" -gt 0 ]; then
        BODY_FILE=$body wrk -t"$WRK_THREADS" -c"$conns" -d"${WARMUP}s" --timeout 60s \
            -s "$TMP/post.lua" "$url/v1/score" >/dev/null
    fi
    BODY_FILE=$body wrk -t"$WRK_THREADS" -c"$conns" -d"${SECS}s" --timeout 60s --latency \
        -s "$TMP/post.lua" "$url/v1/score" >"$out"
    kill -0 "$SEG_PID" 2>/dev/null || die "seglossd died during $name"
    kill -0 "$PY_PID" 2>/dev/null || die "uvicorn died during $name"
    local bad errs
    bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    errs=$(awk '/Socket errors:/ { sub(/.*Socket errors: /, ""); print }' "$out")
    if [ -n "$bad" ] && [ "$bad" != 0 ]; then cat "$out" >&2; die "$name: $bad answers were not 2xx"; fi
    if [ -n "$errs" ]; then echo "run.sh: warning: $name: socket errors: $errs" >&2; fi
    sleep 1 # let the previous server's last work finish before the next run starts
}
rps() { awk '/^Requests\/sec:/ { print $2 }' "$TMP/$1.wrk"; }
reqs() { awk '/requests in/ { print $1 }' "$TMP/$1.wrk"; }
pct() { awk -v p="$2" '$1 == p { print $2 }' "$TMP/$1.wrk" | to_ms; }

echo
echo "== wrk: ${SECS}s measured after ${WARMUP}s warm-up, -t$WRK_THREADS, connections: small $SMALL_CONNS, large $LARGE_CONNS"
for payload in small large; do
    conns=$SMALL_CONNS
    [ "$payload" = large ] && conns=$LARGE_CONNS
    echo "  $payload: seglossd ..."
    bench "seg-$payload" "$SEG_URL" "$TMP/$payload.json" "$conns"
    echo "  $payload: python ..."
    bench "py-$payload" "$PY_URL" "$TMP/$payload.json" "$conns"
done

# the large arrays as the other compressions: seglossd only
for payload in large_none large_zstd; do
    echo "  $payload: seglossd ..."
    bench "seg-$payload" "$SEG_URL" "$TMP/$payload.json" "$LARGE_CONNS"
done

echo
echo "== results (ratio = seglossd req/s / python req/s; latency over the measured run)"
printf '%-7s %-16s %9s %5s | %11s %11s %7s | %19s %19s | %13s\n' \
    payload shape body conns "seglossd r/s" "python r/s" ratio \
    "seglossd p50/p99 ms" "python p50/p99 ms" "requests s/py"
for payload in small large; do
    if [ "$payload" = small ]; then shape=1x64x64 conns=$SMALL_CONNS; else shape=8x512x512 conns=$LARGE_CONNS; fi
    size=$(wc -c <"$TMP/$payload.json" | awk '{ b = $1; if (b >= 1048576) printf "%.1fMiB", b / 1048576; else printf "%.1fKiB", b / 1024 }')
    s=$(rps "seg-$payload") p=$(rps "py-$payload")
    ratio=$(awk -v s="$s" -v p="$p" 'BEGIN { if (p > 0) printf "%.2fx", s / p; else print "-" }')
    printf '%-7s %-16s %9s %5s | %11s %11s %7s | %19s %19s | %13s\n' \
        "$payload" "$shape" "$size" "$conns" "$s" "$p" "$ratio" \
        "$(pct "seg-$payload" 50%) / $(pct "seg-$payload" 99%)" \
        "$(pct "py-$payload" 50%) / $(pct "py-$payload" 99%)" \
        "$(reqs "seg-$payload")/$(reqs "py-$payload")"
done
for payload in large_none large_zstd; do
    size=$(wc -c <"$TMP/$payload.json" | awk '{ printf "%.1fMiB", $1 / 1048576 }')
    printf '%-7s %-16s %9s %5s | %11s %11s %7s | %19s %19s | %13s\n' \
        "large/${payload#large_}" "8x512x512" "$size" "$LARGE_CONNS" "$(rps "seg-$payload")" - - \
        "$(pct "seg-$payload" 50%) / $(pct "seg-$payload" 99%)" - "$(reqs "seg-$payload")/-"
done

# ---- 3. reference: in-process time of torch ----------------------------------------------------
# What the Python service spends outside HTTP on the large batch, one thread, servers idle; to
# compare with seglossd's own elapsed_ms (printed by the agreement check: parse + decode + score).
echo
echo "== in-process (no HTTP), large body, pyservice.py's code on one torch thread"
"$PY" "$HERE/pyservice.py" --time "$TMP/large.json" --repeat 10
echo "load avg  $(cut -d' ' -f1-3 /proc/loadavg) at the end"
