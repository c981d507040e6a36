#!/bin/sh
# readme.sh - runs every example of README.md that talks to the server, as written, each in an
# empty folder of its own, against a live seglossd, and checks what it answers against hand
# calculations written here. The only change made to a block is its port (127.0.0.1:8080 becomes
# the test server's). The environment is what the README tells a user to set up: build/ on PATH
# (the segloss command), clients/python on PYTHONPATH, a python3 with numpy.
#
# Every ```sh, ```python and ```js block of the README must be run here: a block that is not is
# a failure (Docker, nginx, Kubernetes and CI examples are untagged or yaml blocks).
# Blocks that need numpy are skipped without it, the JavaScript block without node.
# Usage: tests/e2e/readme.sh BUILD_DIR   (prints "readme: N passed, M failed[, K skipped]")
build=${1:-build}
top=$(pwd)
absbuild=$(cd "$build" && pwd)
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
skip() { echo "skip readme: $1"; skipped=$((skipped + 1)); }
summary() {
    if [ $skipped -gt 0 ]; then
        echo "readme: $passed passed, $failed failed, $skipped skipped"
    else
        echo "readme: $passed passed, $failed failed"
    fi
}

# ---- the blocks -------------------------------------------------------------------------------
# $dir/blocks/N.LANG holds the N-th sh/python/js block; $dir/blocks/index has "N<TAB>LANG<TAB>
# heading" (the nearest ## or ### heading above it).
mkdir "$dir/blocks" "$dir/bin"
: >"$dir/used"
awk -v out="$dir/blocks" '
    /^```/ {
        if (!code) {
            code = 1
            lang = substr($0, 4)
            keep = (lang == "sh" || lang == "python" || lang == "js")
            if (keep) {
                n++
                f = out "/" n "." lang
                printf "%d\t%s\t%s\n", n, lang, sec > (out "/index")
                printf "" > f
            }
        } else {
            if (keep) {
                close(f)
            }
            code = 0
            keep = 0
        }
        next
    }
    !code && /^##+ / { sec = $0; sub(/^#+ /, "", sec) }
    code && keep { print > f }
' README.md

# block SECTION K LANG: the number of the K-th LANG block under the heading starting with SECTION.
block() {
    awk -F '\t' -v s="$1" -v k="$2" -v l="$3" \
        'index($3, s) == 1 && $2 == l && ++c == k { print $1; exit }' "$dir/blocks/index"
}

# numpy, and python3 on PATH meaning that interpreter (the blocks call "python3")
py=
for cand in /usr/bin/python3 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import numpy' 2>/dev/null; then
        py=$(command -v "$cand")
        break
    fi
done
[ -n "$py" ] && ln -s "$py" "$dir/bin/python3"
# any python3 reads JSON for the checks
pyj=${py:-$(command -v python3)}
to=
command -v timeout >/dev/null 2>&1 && to="timeout 120"

# run N [FILE]: runs block N (then FILE's lines, if given, in the same program) in the empty
# folder $dir/run.N; its stdout and stderr go to $dir/out.N. Returns the block's status.
run() {
    n=$1
    if [ -z "$n" ]; then
        echo "no such block in README.md" >"$dir/out."
        return 1
    fi
    lang=$(awk -F '\t' -v n="$n" '$1 == n { print $2 }' "$dir/blocks/index")
    case $lang in
    sh) ext=sh cmd=sh ;;
    python) ext=py cmd=python3 ;;
    js) ext=mjs cmd=node ;;
    esac
    script="$dir/script.$n.$ext"
    sed "s/127\.0\.0\.1:8080/127.0.0.1:$port/g" "$dir/blocks/$n.$lang" >"$script"
    [ -n "$2" ] && cat "$2" >>"$script"
    echo "$n" >>"$dir/used"
    mkdir "$dir/run.$n"
    # the clone's var/ of make run (the server's data directory)
    ln -s "$dir/var" "$dir/run.$n/var"
    # shellcheck disable=SC2086 # $to is a command and its argument, or nothing
    (cd "$dir/run.$n" && PATH="$dir/bin:$absbuild:$PATH" PYTHONPATH="$top/clients/python" \
        $to "$cmd" "$script") >"$dir/out.$n" 2>&1
}

# check NAME FILE [ARG]...: runs the Python on stdin with FILE (a block's output) and the ARGs
# as its arguments; ok when it exits 0.
check() {
    name=$1
    shift
    if [ -z "$pyj" ]; then
        skip "$name (no python3 to check it)"
    elif "$pyj" - "$@" >"$dir/check.out" 2>&1; then
        ok "$name"
    else
        bad "$name: $(head -c 400 "$1") / $(tail -c 400 "$dir/check.out")"
    fi
}

"$build/seglossd" --port 0 --data-dir "$dir/var" >"$dir/out" 2>"$dir/err" &
pid=$!
port=
for _ in $(seq 1 100); do
    port=$(sed -n 's/^seglossd listening on http:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' "$dir/out")
    [ -n "$port" ] && break
    sleep 0.05
done
if [ -z "$port" ]; then
    bad "seglossd did not start"
    summary
    exit 1
fi

# ---- make run PORT=... (the first block, run from the clone: not started here) ------------------
if make -n run PORT=18123 BUILD="$build" 2>/dev/null | grep -q "seglossd --port 18123 --data-dir var$"; then
    ok "make run PORT=18123 starts seglossd --port 18123 --data-dir var"
else
    bad "make run PORT=... does not pass the port: $(make -n run PORT=18123 BUILD="$build" 2>&1 | tail -n 3)"
fi

# ---- Scoring from the shell -----------------------------------------------------------------
S="Scoring from the shell"
# 1: combo and focal on probabilities. By hand: CE = -(ln .5 + ln .6 + ln .8 + ln .9)/4, Dice
# loss = 1 - 2(.5 + .6)/(1.4 + 2); focal (alpha .25, gamma 2) = (.25 .5^2 (-ln .5) + .25 .4^2
# (-ln .6) + .75 .2^2 (-ln .8) + .75 .1^2 (-ln .9))/4; p >= .5 is the mask: Dice, IoU, F2 = 1.
# (float32 inputs: 1e-7 of the float64 values)
n=$(block "$S" 1 sh)
run "$n"
check "shell example 1 (combo CE + Dice, focal, metrics), by hand" "$dir/out.$n" <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
ce = -(math.log(.5) + math.log(.6) + math.log(.8) + math.log(.9)) / 4
dice = 1 - 2 * (.5 + .6) / (1.4 + 2)
focal = (.25 * .25 * -math.log(.5) + .25 * .16 * -math.log(.6) + .75 * .04 * -math.log(.8)
         + .75 * .01 * -math.log(.9)) / 4
assert abs(r["losses"]["combo"]["value"] - (ce + dice)) < 1e-6, r["losses"]
assert abs(r["losses"]["focal_g2"]["value"] - focal) < 1e-7, r["losses"]
for m in ("dice", "iou", "fbeta"):
    assert r["metrics"][m]["mean"] == 1 and r["metrics"][m]["per_image"] == [1], r["metrics"]
PY

# 2: multiclass. Softmax CE with class weights [1, 2, 2] over pixels of classes 0 and 1 is
# (l0 + 2 l1) / 3; both argmaxes are right, so every class's Dice is 1 (class 2 is empty in
# both: the "one" convention); "lovasz_softmax" is a bare name.
n=$(block "$S" 2 sh)
run "$n"
check "shell example 2 (multiclass, bare lovasz_softmax), by hand" "$dir/out.$n" <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
lse = lambda *v: math.log(sum(math.exp(x) for x in v))
l0 = -(2.0 - lse(2.0, 0.1, -1.0))
l1 = -(1.5 - lse(0.5, 1.5, 0.0))
assert r["mode"] == "multiclass" and r["classes"] == 3, r
assert abs(r["losses"]["cross_entropy"]["value"] - (l0 + 2 * l1) / 3) < 1e-12, r["losses"]
assert "lovasz_softmax" in r["losses"], r["losses"]
assert r["metrics"]["dice"]["per_class"] == [1, 1, 1] and r["metrics"]["dice"]["mean"] == 1
assert r["metrics"]["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 0]]
PY

# 3: the weight map as JSON: two 1-pixel instances; every background pixel has d1 + d2 = 6, so
# 1 + 10 exp(-36/50) (Ronneberger et al. 2015, w_c = 1), and 1 on the instances.
n=$(block "$S" 3 sh)
run "$n"
check "weight-map example (JSON): 1 + 10 exp(-36/50) on the background" "$dir/out.$n" <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
b = 1 + 10 * math.exp(-36 / 50)
assert r["shape"] == [1, 1, 7], r
want = [1, b, b, b, b, b, 1]
assert all(abs(g - w) < 1e-6 * w for g, w in zip(r["data"], want)), r["data"]
PY

# 4: the weight map from mask_spec.json into weights.npy, with --fail-with-body. Expected by
# brute force from Ronneberger's formula: w = 1 + 10 exp(-(d1 + d2)^2 / 50) on the background,
# d1 <= d2 the Euclidean distances to the nearest pixel of each of the two blobs; 1 on a blob.
n=$(block "$S" 4 sh)
if [ -z "$py" ]; then
    skip "weight-map file example (no python3 with numpy)"
else
    run "$n"
    cat >"$dir/wm.py" <<'PY'
import math, sys
import numpy as np
out = open(sys.argv[1]).read()
w = np.load(sys.argv[2])
blobs = [[(1, 1), (1, 2), (2, 1), (2, 2)], [(2, 5), (3, 5)]]
fg = {p for b in blobs for p in b}
want = np.ones((1, 5, 7))
for y in range(5):
    for x in range(7):
        if (y, x) not in fg:
            d = sorted(min(math.hypot(y - by, x - bx) for by, bx in b) for b in blobs)
            want[0, y, x] = 1 + 10 * math.exp(-(d[0] + d[1]) ** 2 / 50)
assert w.dtype == np.float32 and w.shape == (1, 5, 7), (w.dtype, w.shape)
assert np.allclose(w, want, rtol=1e-6, atol=0), (w, want)
# pixel [2, 3]: 1 from the left blob, 2 from the right one
assert abs(want[0, 2, 3] - (1 + 10 * math.exp(-9 / 50))) < 1e-12
assert out.strip() == "float32 (1, 5, 7) 9.352702", out
PY
    check "weight-map file example: weights.npy by brute force, 9.352702 printed" "$dir/out.$n" \
        "$dir/run.$n/weights.npy" <"$dir/wm.py"
    # the same curl and python lines on a bad file: curl exits 22, python does not run, and
    # weights.npy holds the problem+json naming the key
    mkdir "$dir/wmbad"
    sed -n '/^curl/,$p' "$dir/script.$n.sh" >"$dir/wmbad.sh"
    echo '{"target": [[[1, 0, 1]]], "w0": -1}' >"$dir/wmbad/mask_spec.json"
    (cd "$dir/wmbad" && PATH="$dir/bin:$PATH" sh "$dir/wmbad.sh") >"$dir/wmbad.out" 2>&1
    rc=$?
    if [ $rc -eq 22 ] && ! grep -q float32 "$dir/wmbad.out" && grep -q '"detail":"w0' "$dir/wmbad/weights.npy"; then
        ok "weight-map file example on a bad file: curl exits 22, weights.npy says why"
    else
        bad "weight-map file example on a bad file: rc=$rc $(head -c 300 "$dir/wmbad.out") $(head -c 300 "$dir/wmbad/weights.npy")"
    fi
fi

# ---- Sending files: multipart/form-data -------------------------------------------------------
# numpy writes pred.npy (gzip'd) and mask.npy; the seed's numbers read as logits. By hand, on
# the float32 values: CE = mean of softplus(-x) on the mask and softplus(x) off it; Dice loss
# (smooth 1e-5) on p = sigmoid(x); every x >= 0, so the hard prediction is all 1: Dice 2*2/(4+2),
# IoU 2/4.
n=$(block "Sending files" 1 sh)
if [ -z "$py" ]; then
    skip "multipart example (no python3 with numpy)"
else
    run "$n"
    check "multipart example (npy.gz and npy parts, bare cross_entropy), by hand" "$dir/out.$n" <<'PY'
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
assert abs(r["metrics"]["dice"]["mean"] - 2 / 3) < 1e-15 and r["metrics"]["iou"]["mean"] == 0.5, r
assert abs(ce - 0.6135) < 5e-5  # the README's rounded value
PY
fi

# ---- Scoring a Kaggle RLE submission row ------------------------------------------------------
# Pixels {1-3, 10-14} against {1-4, 11-14}: TP 7, FP 1, FN 1, so Dice 14/16 and IoU 7/9.
n=$(block "Scoring a Kaggle RLE" 1 sh)
run "$n"
check "Kaggle RLE example: Dice 14/16, IoU 7/9" "$dir/out.$n" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["metrics"]["dice"]["mean"] == 14 / 16, r
assert abs(r["metrics"]["iou"]["mean"] - 7 / 9) < 1e-15, r
PY

# ---- The peers' conventions, by name ----------------------------------------------------------
# Image 0: DeepMind's test_on_2_pixels_2mm_away (surface_distance_test.py: surface Dice 0.5 at
# 1 mm, Hausdorff 2); segloss's nsd counts the two boundary pixels, 2 mm apart: 0. Image 1: both
# masks empty: surface Dice and nsd 1 (segloss's rule), MONAI Hausdorff NaN -> null, its
# mean_channel reduction 0 (nothing defined, monai/metrics/utils.py do_metric_reduction);
# sensitivity with zero_division "nan" 0/0 -> null, Hit Rate (recall) 1 by `empty`; global recall
# from the summed counts TP 0, FN 1: 0.
n=$(block "The peers' conventions" 1 sh)
run "$n"
check "peer conventions example: DeepMind surface Dice 0.5, nsd 0, MONAI NaN and reductions" \
    "$dir/out.$n" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
assert m["surface_dice"]["per_image"] == [0.5, 1] and m["surface_dice"]["mean"] == 0.75, m
assert m["nsd"]["per_image"] == [0, 1], m
hd = m["hausdorff"]
assert hd["per_image"] == [2, None] and hd["undefined"] == 1 and hd["infinite"] == 0, hd
assert hd["reduced"] == [2, 0], hd
assert m["sensitivity"]["per_image"] == [0, None] and m["sensitivity"]["undefined"] == 1, m
assert m["Hit Rate"]["per_image"] == [0, 1] and m["Hit Rate"]["global"] == 0, m
PY

# ---- Seeing a scoring as a page ------------------------------------------------------------------
# The Kaggle example's two images: image 0 Dice 14/16, image 1 (prediction = target) Dice 1, so
# the mean is (14/16 + 1) / 2 = 0.9375 and the worst image (rank 1) is image 0.
n=$(block "Seeing a scoring as a page" 1 sh)
run "$n"
check "report example: an HTML page, Dice mean 0.9375, image 0 the worst" "$dir/out.$n" \
    "$dir/run.$n/report.html" <<'PY'
import sys
from html.parser import HTMLParser
out = open(sys.argv[1]).read().splitlines()
assert out == ['<figure class="thumb" data-index="0"', '<figure class="thumb" data-index="1"'], out
class P(HTMLParser):
    def __init__(self):
        super().__init__()
        self.key, self.values, self.ranks = None, {}, []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-key" in a:
            self.key = a["data-key"]
        if tag == "td" and "value" in a.get("class", "").split() and self.key:
            self.values[self.key] = a["data-value"]
        if tag == "figure":
            self.ranks.append((a["data-rank"], a["data-index"]))
page = open(sys.argv[2]).read()
assert page.startswith("<!DOCTYPE html>"), page[:100]
p = P()
p.feed(page)
assert float(p.values["metrics.dice.mean"]) == 0.9375, p.values
assert float(p.values["metrics.iou.mean"]) == (7 / 9 + 1) / 2, p.values
assert p.ranks == [("1", "0"), ("2", "1")], p.ranks
PY

# ---- Gate a model in CI: the segloss command ----------------------------------------------------
# Two Kaggle CSVs: Dice 14/16 and 1, IoU 7/9 and 1 (hand calculation in the README), global from
# the summed counts TP 10, FP 1, FN 1; both gates hold, so exit 0.
n=$(block "Gate a model in CI" 1 sh)
if run "$n" && grep -Eq '^dice +0\.937500 +0\.909091 +0$' "$dir/out.$n" &&
    grep -Eq '^iou +0\.888889 +0\.833333 +0$' "$dir/out.$n" &&
    grep -Eq '^iou\.min>=0\.75 +0\.777778 pass$' "$dir/out.$n"; then
    ok "CLI example: Dice mean 15/16, global 20/22, both gates hold (exit 0)"
else
    bad "CLI example: $(head -c 600 "$dir/out.$n")"
fi

# ---- Compare with the last good model ---------------------------------------------------------
# By hand (the README's text): Dice per image main 14/16, 1, 1, 1 and branch 1, 4/5, 1, 1; the
# differences +0.125, -0.2, 0, 0: mean -0.01875, 1 better, 1 worse, 2 equal, img_0002 the largest
# drop (1 -> 0.8). Wilcoxon without the zeros: ranks 1 (+) and 2 (-), W+ = 1, normal
# approximation (there were zeros): z = (1 - 1.5) / sqrt(2*3*5/24) and p = erfc(|z|/sqrt 2) =
# 0.654721. Every bootstrap mean is a mean of 4 of the differences: within [-0.2, 0.125].
n=$(block "Compare with the last good model" 1 sh)
if run "$n"; then
    o="$dir/out.$n"
    if grep -Eq '^dice \(higher is better\) +4 +0 +-0\.018750 +-0\.[0-9]+ +0\.[0-9]+ +0\.655 +1 +1 +2$' "$o" &&
        grep -Eq '^img_0002 +1\.000000 +0\.800000 +-0\.200000$' "$o" &&
        grep -Eq '^dice\.delta\.mean>=-0\.05 +-0\.018750 pass$' "$o" &&
        grep -Eq '^dice\.worse<=1 +1\.000000 pass$' "$o" &&
        "$pyj" - "$dir/run.$n/baseline.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["format"] == "segloss-score" and d["format_version"] == 1, d
assert d["image_ids"] == ["img_0001", "img_0002", "img_0003", "img_0004"], d["image_ids"]
assert [round(v, 12) for v in d["metrics"]["dice"]["per_image"]] == [0.875, 1, 1, 1], d
PY
    then
        lo=$(awk '/^dice \(higher is better\)/ { print $(NF-5) }' "$o")
        hi=$(awk '/^dice \(higher is better\)/ { print $(NF-4) }' "$o")
        if awk -v l="$lo" -v h="$hi" 'BEGIN { exit !(l >= -0.2 && l <= -0.01875 && h >= -0.01875 && h <= 0.125) }'; then
            ok "Compare example: mean -0.01875, p 0.655, img_0002 dropped most, gates hold"
        else
            bad "Compare example: the interval [$lo, $hi] is not within [-0.2, 0.125] around the mean"
        fi
    else
        bad "Compare example: $(head -c 900 "$o")"
    fi
else
    bad "Compare example: the block failed: $(tail -c 600 "$dir/out.$n")"
fi

# ---- From JavaScript ------------------------------------------------------------------------
n=$(block "From JavaScript" 1 js)
if command -v node >/dev/null 2>&1; then
    # the package as `npm install path/to/clients/js` puts it: node_modules/segloss, a link
    # beside the script (node resolves a package from the importing file's folder)
    mkdir -p "$dir/node_modules" && ln -sfn "$top/clients/js" "$dir/node_modules/segloss"
    run "$n"
    check "JavaScript example prints CE + Dice, by hand" "$dir/out.$n" <<'PY'
import math, sys
v = float(open(sys.argv[1]).read().split()[0])
ce = -(math.log(.5) + math.log(.6) + math.log(.8) + math.log(.9)) / 4
assert abs(v - (ce + 1 - 2.2 / 3.4)) < 1e-6, v
PY
else
    echo "$n" >>"$dir/used"
    skip "JavaScript example (no node)"
fi

# ---- From Python ----------------------------------------------------------------------------
if [ -z "$py" ]; then
    for k in 1 2 3; do
        block "From Python" $k python >>"$dir/used"
    done
    block "Without the client" 1 python >>"$dir/used"
    skip "the Python examples (no python3 with numpy)"
else
    # 1: the client: CE + Dice as in the first shell example, and a Dice of 1
    n=$(block "From Python" 1 python)
    run "$n"
    check "Python client example prints CE + Dice and Dice [1], by hand" "$dir/out.$n" <<'PY'
import math, sys
lines = open(sys.argv[1]).read().split("\n")
ce = -(math.log(.5) + math.log(.6) + math.log(.8) + math.log(.9)) / 4
assert abs(float(lines[0]) - (ce + 1 - 2.2 / 3.4)) < 1e-6, lines
assert lines[1] == "[1]", lines
PY
    # 2: a Client: focal as in the first shell example, the weight map as in the third, the
    # catalog's losses, health
    n=$(block "From Python" 2 python)
    run "$n"
    check "Python Client example: focal, weight map, catalog, health" "$dir/out.$n" <<'PY'
import ast, math, sys
lines = open(sys.argv[1]).read().split("\n")
focal = (.25 * .25 * -math.log(.5) + .25 * .16 * -math.log(.6) + .75 * .04 * -math.log(.8)
         + .75 * .01 * -math.log(.9)) / 4
assert abs(float(lines[0]) - focal) < 1e-7, lines
b = 1 + 10 * math.exp(-36 / 50)
w = [float(v) for v in lines[1].strip("[] ").split()]
assert len(w) == 7 and all(abs(g - t) < 1e-6 * t for g, t in zip(w, [1, b, b, b, b, b, 1])), lines
losses = {"cross_entropy", "weighted_cross_entropy", "balanced_cross_entropy", "focal",
          "distance_weighted_cross_entropy", "dice", "jaccard", "tversky", "generalized_dice",
          "mcc", "lovasz_hinge", "lovasz_softmax", "combo"}
assert set(ast.literal_eval(lines[2])) == losses, lines
assert lines[3] == "True True", lines
PY
    # 3: an error answer raised as SeglossError, printed as the README shows
    n=$(block "From Python" 3 python)
    run "$n"
    check "Python error example prints the 422 naming losses[0].gamma" "$dir/out.$n" <<'PY'
import sys
out = open(sys.argv[1]).read()
want = "422 Unprocessable Content: losses[0].gamma: -1 is out of range (must be >= 0)\n"
assert out == want, out
PY
    # Without the client: the block, then a numpy re-computation of what it printed
    n=$(block "Without the client" 1 python)
    cat >"$dir/nocl.py" <<'PY'

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
    if run "$n" "$dir/nocl.py" && grep -q "numpy agrees" "$dir/out.$n"; then
        ok "Python example without the client, checked against numpy"
    else
        bad "Python example without the client: $(tail -c 400 "$dir/out.$n")"
    fi
fi

# ---- Run a challenge ---------------------------------------------------------------------------
# By hand: Kaggle runs are 1-based and column-major; in 2x2 images "1 2" is the left column and
# "1 1" its top pixel. The public image a: Dice 2*1/(1+2) = 2/3 = 0.666667 (and 0.6666666666666666
# in full in the CSV). team-a is alone: rank 1. The quota: 1 of 5 today.
n=$(block "Run a challenge" 1 sh)
if run "$n"; then
    o="$dir/out.$n"
    if grep -q "configuration created" "$o" && grep -q "reference of 2 images (1 public, 1 private)" "$o" &&
        grep -Eq "^  metrics.dice.mean +0.666667$" "$o" && grep -q "^public rank 1$" "$o" &&
        grep -q "^quota: 1 of 5 today" "$o" && grep -Eq "^1 +team-a +0.666667 +1 " "$o" &&
        grep -Eq "^1,team-a,[0-9a-f]{16},[0-9T:Z-]+,0.6666666666666666" "$o"; then
        ok "Run a challenge: submit, leaderboard and its CSV show Dice 2/3 for team-a"
    else
        bad "Run a challenge: $(tail -c 600 "$o")"
    fi
else
    bad "Run a challenge: the block failed: $(tail -c 600 "$dir/out.$n")"
fi

# ---- Leaderboard pages (after "Run a challenge": its challenge squares, team-a alone) ---------
n=$(block "Leaderboard pages" 1 sh)
if run "$n" && [ "$(cat "$dir/out.$n")" = '<tr data-participant="team-a" data-rank="1"' ] &&
    grep -q '<td class="num score" data-key="metrics.dice.mean" data-value="0.66666666666666' \
        "$dir/run.$n/squares.html"; then
    ok "Leaderboard pages example: team-a at rank 1 with Dice 2/3"
else
    bad "Leaderboard pages example: $(head -c 600 "$dir/out.$n")"
fi

# ---- every block was run ----------------------------------------------------------------------
total=$(wc -l <"$dir/blocks/index")
while IFS="$(printf '\t')" read -r n lang sec; do
    if ! grep -qx "$n" "$dir/used"; then
        bad "README block $n (\`\`\`$lang under \"$sec\") is not run by tests/e2e/readme.sh"
    fi
done <"$dir/blocks/index"
if [ "$total" -ge 12 ]; then
    ok "README.md has $total sh/python/js blocks, each accounted for above"
else
    bad "only $total sh/python/js blocks found in README.md (the extraction broke?)"
fi

summary
[ $failed -eq 0 ]
