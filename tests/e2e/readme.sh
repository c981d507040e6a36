#!/bin/sh
# readme.sh - runs the README's curl and Python examples against a live seglossd, so that the
# README stays true. The Python example needs numpy; without it that check is skipped.
# Usage: tests/e2e/readme.sh BUILD_DIR   (prints "readme: N passed, M failed[, K skipped]")
build=${1:-build}
dir=$(mktemp -d)
passed=0
failed=0
skipped=0
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
ok() { echo "ok   readme: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL readme: $1"; failed=$((failed + 1)); }

"$build/seglossd" --port 0 >"$dir/out" 2>"$dir/err" &
pid=$!
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/^seglossd listening on http:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/out")
    [ -n "$port" ] && break
    sleep 0.05
done
if [ -z "$port" ]; then
    bad "seglossd did not start"
    echo "readme: $passed passed, $failed failed"
    exit 1
fi

# The curl blocks: each from a line starting "curl -s" to the closing "}'".
curl_block() {
    awk -v want="$1" '/^curl -s/ { n++ } n == want && !done { print } n == want && /^}'"'"'/ { done = 1 }' \
        README.md | sed "s/127.0.0.1:8080/127.0.0.1:$port/"
}
curl_block 1 >"$dir/curl.sh"
if sh "$dir/curl.sh" >"$dir/curl.json" 2>&1 &&
    grep -q '"combo":{"value":0.7360603770697316' "$dir/curl.json" &&
    grep -q '"focal_g2":{"value":0.01780980761611' "$dir/curl.json"; then
    # focal by hand (alpha 0.25, gamma 2): (0.25*0.25*ln 2 + 0.25*0.16*-ln 0.6
    # + 0.75*0.04*-ln 0.8 + 0.75*0.01*-ln 0.9) / 4 = 0.0178098
    ok "curl example answers the seed's CE + Dice = 0.7360603770697316 and focal 0.0178098"
else
    bad "curl example: $(head -c 300 "$dir/curl.json")"
fi
# The multiclass block, checked against a hand calculation: softmax CE with class weights
# [1, 2, 2] over pixels of classes 0 and 1 is (l0 + 2 l1) / 3; both argmaxes are right, so
# every class's Dice is 1 (class 2 is empty in both: the "one" convention).
curl_block 2 >"$dir/curl2.sh"
sh "$dir/curl2.sh" >"$dir/curl2.json" 2>&1
if ! command -v python3 >/dev/null 2>&1; then
    echo "skip readme: multiclass curl example (no python3 to check it)"
    skipped=$((skipped + 1))
elif python3 - "$dir/curl2.json" <<'PY' >"$dir/mc.out" 2>&1; then
import json, math, sys
r = json.load(open(sys.argv[1]))
lse = lambda *v: math.log(sum(math.exp(x) for x in v))
l0 = -(2.0 - lse(2.0, 0.1, -1.0))
l1 = -(1.5 - lse(0.5, 1.5, 0.0))
assert r["mode"] == "multiclass" and r["classes"] == 3, r
assert abs(r["losses"]["cross_entropy"]["value"] - (l0 + 2 * l1) / 3) < 1e-12, r["losses"]
assert r["metrics"]["dice"]["per_class"] == [1, 1, 1] and r["metrics"]["dice"]["mean"] == 1
assert r["metrics"]["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
PY
    ok "multiclass curl example, checked by hand"
else
    bad "multiclass curl example: $(head -c 300 "$dir/curl2.json") $(tail -c 300 "$dir/mc.out")"
fi

# The weight-map example: the first curl line of /v1/weight-map and its continuation line.
grep -A1 '^curl -s http://127.0.0.1:8080/v1/weight-map' README.md | head -n 2 |
    sed "s/127.0.0.1:8080/127.0.0.1:$port/" >"$dir/wm.sh"
if sh "$dir/wm.sh" >"$dir/wm.json" 2>&1 &&
    grep -q '"data":\[1,5.8675227,5.8675227,5.8675227,5.8675227,5.8675227,1\]' "$dir/wm.json"; then
    ok "weight-map example answers 1 + 10 exp(-36/50) on the background"
else
    bad "weight-map example: $(head -c 300 "$dir/wm.json")"
fi

# The Kaggle RLE block (the curl block that sends "format": "rle"): Dice 14/16, IoU 7/9.
awk '/^curl -s/ { n++; keep = 0; buf = "" } n { buf = buf $0 "\n" } /"format": "rle"/ { keep = 1 }
     keep && /^}'"'"'/ { printf "%s", buf; exit }' README.md |
    sed "s/127.0.0.1:8080/127.0.0.1:$port/" >"$dir/rle.sh"
if sh "$dir/rle.sh" >"$dir/rle.json" 2>&1 &&
    grep -q '"dice":{"mean":0.875' "$dir/rle.json" &&
    grep -q '"iou":{"mean":0.7777777777777778' "$dir/rle.json"; then
    ok "Kaggle RLE example answers Dice 14/16 and IoU 7/9"
else
    bad "Kaggle RLE example: $(head -c 300 "$dir/rle.json")"
fi

# The CLI block (the first sh block of "Gate a model in CI"), run in the temp dir: two Kaggle
# CSVs, Dice 14/16 and 1, IoU 7/9 and 1 (hand calculation in the README), both gates hold.
awk '/^## Gate a model in CI/ { on = 1 } on && /^```sh$/ { code = 1; next } code && /^```$/ { exit }
     code { print }' README.md |
    sed -e "s/127.0.0.1:8080/127.0.0.1:$port/" -e "s#build/segloss#$(cd "$build" && pwd)/segloss#" \
        >"$dir/cli.sh"
if (cd "$dir" && sh cli.sh) >"$dir/cli.out" 2>&1 &&
    grep -Eq '^dice +0\.937500 +0\.909091 +0$' "$dir/cli.out" &&
    grep -Eq '^iou +0\.888889 +0\.833333 +0$' "$dir/cli.out" &&
    grep -Eq '^iou\.min>=0\.75 +0\.777778 pass$' "$dir/cli.out"; then
    ok "CLI example: Dice mean 15/16, global 20/22, both gates hold (exit 0)"
else
    bad "CLI example: $(head -c 600 "$dir/cli.out")"
fi

# The JavaScript block, run by Node when it is there.
if command -v node >/dev/null 2>&1; then
    sed -n '/^```js$/,/^```$/p' README.md | sed '1d;$d' |
        sed "s/127.0.0.1:8080/127.0.0.1:$port/" >"$dir/example.mjs"
    if node "$dir/example.mjs" >"$dir/js.out" 2>&1 &&
        grep -q '^0.73606037706973' "$dir/js.out"; then
        ok "JavaScript example prints the seed's 0.736"
    else
        bad "JavaScript example: $(head -c 300 "$dir/js.out")"
    fi
else
    echo "skip readme: JavaScript example (no node)"
    skipped=$((skipped + 1))
fi

# The Python block, then a numpy re-computation of what it printed.
py=
for cand in /usr/bin/python3 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import numpy' 2>/dev/null; then
        py=$cand
        break
    fi
done
if [ -z "$py" ]; then
    echo "skip readme: Python example (no python3 with numpy)"
    skipped=$((skipped + 1))
else
    # the block of "Without the client", the raw urllib way
    awk '/^### Without the client/ { on = 1 } on && /^```python$/ { code = 1; next }
         code && /^```$/ { exit } code { print }' README.md |
        sed "s/127.0.0.1:8080/127.0.0.1:$port/" >"$dir/example.py"
    cat >>"$dir/example.py" <<'PY'

# checks (not in the README): the same numbers from numpy, float64
x = logits.astype(np.float64)
yy = target.astype(np.float64)
ce = np.mean(np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0) - x * yy)
p = 1 / (1 + np.exp(-x))
dice = np.mean([1 - (2 * (p[i] * yy[i]).sum() + 1e-5) / (p[i].sum() + yy[i].sum() + 1e-5)
                for i in range(len(x))])
h = x >= 0
dm = [2 * (h[i] & (yy[i] > 0)).sum() / (h[i].sum() + yy[i].sum()) for i in range(len(x))]
assert abs(result["losses"]["cross_entropy"]["value"] - ce) < 1e-9, ce
assert abs(result["losses"]["dice"]["value"] - dice) < 1e-9, dice
assert np.allclose(result["metrics"]["dice"]["per_image"], dm, rtol=0, atol=1e-12), dm
print("numpy agrees")
PY
    if "$py" "$dir/example.py" >"$dir/py.out" 2>&1 && grep -q "numpy agrees" "$dir/py.out"; then
        ok "Python example, checked against numpy"
    else
        bad "Python example: $(tail -c 400 "$dir/py.out")"
    fi
fi
# The first block of "From Python" (the client, clients/python/segloss.py): the seed's worked
# example, CE + Dice = 0.736, and a Dice of 1 (p >= 0.5 is the mask exactly).
if [ -n "$py" ]; then
    awk '/^## From Python/ { on = 1 } on && /^```python$/ { code = 1; next } code && /^```$/ { exit }
         code { print }' README.md | sed "s/127.0.0.1:8080/127.0.0.1:$port/" >"$dir/client.py"
    if PYTHONPATH=clients/python "$py" "$dir/client.py" >"$dir/client.out" 2>&1 &&
        grep -q '^0.736060377069731' "$dir/client.out" && grep -q '^\[1\]$' "$dir/client.out"; then
        ok "Python client example prints the seed's 0.736 and Dice [1]"
    else
        bad "Python client example: $(head -c 300 "$dir/client.out")"
    fi
fi

# The multipart block, run where numpy writes its two files (the seed's numbers, read as
# logits); CE and Dice (smooth 1e-5) checked by hand.
if [ -n "$py" ]; then
    (cd "$dir" && "$py" -c '
import gzip, io, numpy as np
b = io.BytesIO(); np.save(b, np.array([[[0.5, 0.6], [0.2, 0.1]]], np.float32))
open("pred.npy.gz", "wb").write(gzip.compress(b.getvalue()))
np.save("mask.npy", np.array([[[1, 1], [0, 0]]], np.uint8))')
    awk '/^## Sending files/ { on = 1 } on && /^```sh$/ { code = 1; next } code && /^```$/ { exit }
         code { print }' README.md | sed "s/127.0.0.1:8080/127.0.0.1:$port/" >"$dir/mp.sh"
    (cd "$dir" && sh mp.sh) >"$dir/mp.json" 2>&1
    if "$py" - "$dir/mp.json" <<'PY' >"$dir/mp.out" 2>&1; then
import json, math, sys
r = json.load(open(sys.argv[1]))
x = [0.5, 0.6000000238418579, 0.20000000298023224, 0.10000000149011612]  # float32 values
y = [1, 1, 0, 0]
ce = sum(math.log1p(math.exp(-abs(v))) + max(v, 0) - v * t for v, t in zip(x, y)) / 4
p = [1 / (1 + math.exp(-v)) for v in x]
dice = 1 - (2 * (p[0] + p[1]) + 1e-5) / (sum(p) + 2 + 1e-5)
# float32 logits go through the float32 SIMD pass (README "Numerics": ~1e-7 relative)
assert abs(r["losses"]["cross_entropy"]["value"] - ce) < 1e-6 * abs(ce), r
assert abs(r["losses"]["dice"]["value"] - dice) < 1e-6 * abs(dice), r
PY
        ok "multipart example (npy.gz and npy parts), checked by hand"
    else
        bad "multipart example: $(head -c 300 "$dir/mp.json") $(tail -c 300 "$dir/mp.out")"
    fi
fi

if [ $skipped -gt 0 ]; then
    echo "readme: $passed passed, $failed failed, $skipped skipped"
else
    echo "readme: $passed passed, $failed failed"
fi
[ $failed -eq 0 ]
