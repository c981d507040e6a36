#!/usr/bin/env bash
# run.sh - the wire rows of issue 18 (items 4 and 5): req/s, p50 and minor page faults per
# request of seglossd on bodies.py's bodies, with wrk over loopback, for one or more builds.
#
# Usage: tests/bench/wire/run.sh SEGLOSSD [SEGLOSSD...]     (e.g. an older build to compare)
# Knobs: WIRE_SECONDS (8), WIRE_CONNECTIONS (2). Needs wrk and /usr/bin/python3 with numpy.
# Faults are the server's minflt (/proc/PID/stat) over the measured run divided by its requests.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SECS=${WIRE_SECONDS:-8}
CONNS=${WIRE_CONNECTIONS:-2}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/segloss-wire.XXXXXX")
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
/usr/bin/python3 "$HERE/bodies.py" "$TMP"
row() { # row SEGLOSSD BODY CONNS [ENCODING] [CONTENT-TYPE]
    local s=$1 body=$2 conns=$3 enc=${4:-} ctype=${5:-application/json}
    "$s" --port 0 --bind 127.0.0.1 --access-log 0 >"$TMP/out" 2>"$TMP/err" &
    PID=$!
    local port=""
    for _ in $(seq 100); do
        port=$(sed -n 's|.*127\.0\.0\.1:\([0-9]*\).*|\1|p' "$TMP/out")
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$TMP/err" >&2; exit 1; }
    {
        echo "local f = assert(io.open(\"$TMP/$body\", \"rb\"))"
        echo 'wrk.method = "POST"; wrk.body = f:read("*a"); f:close()'
        echo "wrk.headers[\"Content-Type\"] = \"$ctype\""
        [ -n "$enc" ] && echo "wrk.headers[\"Content-Encoding\"] = \"$enc\""
    } >"$TMP/post.lua"
    local url=http://127.0.0.1:$port/v1/score
    wrk -t1 -c"$conns" -d2s --timeout 60s -s "$TMP/post.lua" "$url" >/dev/null
    local f0 f1 n
    f0=$(awk '{ print $10 }' "/proc/$PID/stat")
    wrk -t1 -c"$conns" -d"${SECS}s" --timeout 60s --latency -s "$TMP/post.lua" "$url" >"$TMP/wrk"
    f1=$(awk '{ print $10 }' "/proc/$PID/stat")
    n=$(awk '/requests in/ { print $1 }' "$TMP/wrk")
    printf '%-16s %-6s %5s %10s %10s %12s %s\n' "$body" "${enc:-none}" "$conns" \
        "$(awk '/^Requests\/sec/ { print $2 }' "$TMP/wrk")" "$(awk '$1 == "50%" { print $2 }' "$TMP/wrk")" \
        "$(( (f1 - f0) / (n > 0 ? n : 1) ))" "$(grep -h 'Non-2xx' "$TMP/wrk" || true)"
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""
}
for s in "$@"; do
    echo "== $s ($(uptime | sed 's/.*load/load/'))"
    printf '%-16s %-6s %5s %10s %10s %12s\n' body enc conns "req/s" p50 faults/req
    row "$s" f32_npy.json "$CONNS"
    row "$s" f16_npy.json "$CONNS"
    row "$s" bf16_raw.json "$CONNS"
    row "$s" plain.json.gz "$CONNS" gzip
    row "$s" city.json 1
    row "$s" city.multipart 1 "" "multipart/form-data; boundary=segloss-wire-bench-7f3a9c"
done
