#!/usr/bin/env python3
"""test_compare.py - `segloss compare` and `segloss score --baseline` (issue 20).

Outside numbers: the Wilcoxon p-values are SciPy's scipy.stats.wilcoxon on the same differences
(Debian's python3-scipy); the bootstrap interval comes from the generator that compare.c
documents (splitmix64 -> xoshiro256**, rejection below 2^64 mod n, numpy's linear percentile),
written again here from its description; the other answers are obvious by construction
(identical runs: every delta 0; one image broken: it tops the list) or hand counts.

Usage: test_compare.py --segloss BUILD/segloss --seglossd BUILD/seglossd [--golden DIR]"""

import argparse
import html.parser
import json
import warnings
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

T = harness.Tally("compare")
SEGLOSS = None
WORK = None
M64 = (1 << 64) - 1


# ---- the documented generator, written again from compare.c's description ------------------


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class Xoshiro:
    def __init__(self, seed):
        self.s = []
        st = seed
        for _ in range(4):
            st, z = splitmix64(st)
            self.s.append(z)

    def next(self):
        s = self.s
        r = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return r

    def index(self, n):
        floor = (1 << 64) % n
        while True:
            x = self.next()
            if x >= floor:
                return x % n


def bootstrap_ci(d, resamples, seed):
    g = Xoshiro(seed)
    n = len(d)
    means = []
    for _ in range(resamples):
        s = 0.0
        for _ in range(n):
            s += d[g.index(n)]
        means.append(s / n)
    return np.percentile(means, 2.5), np.percentile(means, 97.5)


# ---- helpers ----------------------------------------------------------------------------------


def run(args, timeout=120):
    p = subprocess.run([SEGLOSS, *args], capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def score_doc(ids, metrics, losses=None, mode="binary", better=None):
    """A document shaped as segloss score --json writes it (format, ids, per-image values)."""
    doc = {"format": "segloss-score", "format_version": 1, "images": len(ids), "mode": mode,
           "image_ids": ids, "metrics": {}, "losses": {},
           "conventions": {"include_background": True},
           "better": {"metrics": {}, "losses": {}}}
    for k, v in metrics.items():
        doc["metrics"][k] = {"mean": 0, "per_image": v, "undefined": 0}
        doc["better"]["metrics"][k] = (better or {}).get(k, "higher")
    for k, v in (losses or {}).items():
        doc["losses"][k] = {"value": 0, "per_image": v}
        doc["better"]["losses"][k] = "lower"
    return doc


def write(name, doc):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def compare(base, cand, *extra):
    rc, out, err = run(["compare", base, cand, "--json", *extra])
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, None, err + out


def close(a, b, rel=1e-12):
    return a is not None and abs(a - b) <= rel * max(1.0, abs(b))


# ---- the statistics against SciPy and the generator -------------------------------------------


def test_statistics():
    try:
        from scipy import stats
    except ImportError:
        T.check(False, "statistics: SciPy, the Wilcoxon p-values' outside source (Debian: "
                "apt-get install python3-scipy)")
        return

    # SciPy warns when it leaves the exact distribution for zeros: that is the case tested
    warnings.simplefilter("ignore", UserWarning)

    rng = np.random.default_rng(20)
    sets = {
        # n <= 50, no zeros or ties: SciPy's exact distribution
        "small exact": (rng.normal(0, 1, 12), {}),
        "exact n=50": (rng.normal(0.2, 1, 50), {}),
        # zeros: dropped (zero_method "wilcox"), then the normal approximation
        "zeros": (np.concatenate([rng.normal(0.1, 1, 20), np.zeros(5)]), {}),
        # ties of |d|, n <= 50: the normal approximation with the tie correction (SciPy 1.13's
        # "auto" takes it; 1.10's takes "exact" on a truncated rank sum, so method= is named)
        "ties": (np.round(rng.normal(0, 1, 30), 1), {"method": "approx"}),
        "ties and zeros": (np.array([0.5, -0.5, 0.5, 0, 0.25, -0.25, 1, 1, 0, 0.75, 0.5, -1]),
                           {}),
        "large n": (rng.normal(-0.05, 0.3, 400), {}),
        "all one way": (np.abs(rng.normal(0, 1, 9)) + 0.01, {}),
    }
    resamples, seed = 500, 7
    for name, (d, kw) in sets.items():
        base = rng.uniform(0, 1, len(d))
        cand = base + d
        dd = cand - base  # the differences exactly as the C code forms them
        ids = [f"img{i:03d}" for i in range(len(d))]
        b = write(f"b-{name}.json", score_doc(ids, {"dice": list(base)}))
        # the candidate in another order: matched by id
        order = rng.permutation(len(d))
        c = write(f"c-{name}.json",
                  score_doc([ids[i] for i in order], {"dice": [float(cand[i]) for i in order]}))
        rc, doc, err = compare(b, c, "--resamples", str(resamples), "--seed", str(seed))
        if not T.check(rc == 0 and doc, f"stats {name}: compare ran", err):
            continue
        e = doc["metrics"]["dice"]
        want_p = stats.wilcoxon(dd, **kw).pvalue
        T.check(close(e["delta"]["p"], want_p, 1e-9), f"stats {name}: p = SciPy's {want_p:.6g}",
                f"got {e['delta']['p']}")
        lo, hi = bootstrap_ci(list(dd), resamples, seed)
        T.check(close(e["delta"]["ci_low"], lo, 1e-12) and close(e["delta"]["ci_high"], hi, 1e-12),
                f"stats {name}: bootstrap interval = the documented generator's [{lo:.6g}, {hi:.6g}]",
                f"got {e['delta']['ci_low']}, {e['delta']['ci_high']}")
        T.check(close(e["delta"]["mean"], float(np.mean(dd)), 1e-12), f"stats {name}: mean",
                f"{e['delta']['mean']} vs {np.mean(dd)}")
        T.check((e["better"], e["worse"], e["equal"]) ==
                (int((dd > 0).sum()), int((dd < 0).sum()), int((dd == 0).sum())),
                f"stats {name}: better/worse/equal counts")
    # the default: 10,000 resamples, seed 1
    d = rng.normal(0, 1, 15)
    ids = [str(i) for i in range(15)]
    base = rng.uniform(0, 1, 15)
    b = write("b-default.json", score_doc(ids, {"dice": list(base)}))
    c = write("c-default.json", score_doc(ids, {"dice": list(base + d)}))
    rc, doc, err = compare(b, c)
    if T.check(rc == 0 and doc, "defaults: compare ran", err):
        lo, hi = bootstrap_ci(list((base + d) - base), 10000, 1)
        got = doc["metrics"]["dice"]["delta"]
        T.check(close(got["ci_low"], lo) and close(got["ci_high"], hi),
                "defaults: 10000 resamples, seed 1", f"{got} vs {lo} {hi}")


def test_hand_made():
    ids = ["a", "b", "c", "d", "e"]
    dice = [0.9, 0.8, 0.85, None, 0.7]
    hd = [2.0, 3.0, 1.0, 4.0, None]
    b = write("h-base.json", score_doc(ids, {"dice": dice, "hd": hd}, better={"hd": "lower"}))
    # identical runs: every delta 0, nothing fails
    rc, doc, err = compare(b, b, "--gate", "dice.delta.ci_low>=-0.01", "--gate", "dice.worse==0",
                           "--gate", "hd.delta.mean==0")
    if T.check(rc == 0 and doc, "identical: exit 0", err):
        e = doc["metrics"]["dice"]
        T.check(e["delta"]["mean"] == 0 and e["delta"]["ci_low"] == 0 and e["delta"]["ci_high"] == 0,
                "identical: every delta 0", json.dumps(e))
        T.check(e["delta"]["p"] is None, "identical: no p (every difference is zero)")
        T.check((e["pairs"], e["left_out"], e["equal"], e["worse"]) == (4, 1, 4, 0),
                "identical: 4 pairs, 1 left out (null), 4 equal", json.dumps(e))
        T.check(e["worst"] == [] and all(g["passed"] for g in doc["gates"]),
                "identical: no drops, every gate passes")
    # one image broken: it tops the list (dice down, hd up: both worse)
    cdice = [0.91, 0.1, 0.84, 0.5, 0.7]
    chd = [2.0, 9.0, 1.5, 4.0, 3.0]
    c = write("h-cand.json", score_doc(ids, {"dice": cdice, "hd": chd}, better={"hd": "lower"}))
    rc, doc, err = compare(b, c, "--gate", "dice.worse<=0", "--worst", "2")
    if T.check(rc == 1 and doc, "broken: the gate fails, exit 1", f"rc {rc} {err}"):
        e = doc["metrics"]["dice"]
        T.check([w["id"] for w in e["worst"]] == ["b", "c"], "broken: b tops dice's drops, c next",
                json.dumps(e["worst"]))
        T.check(close(e["worst"][0]["baseline"], 0.8) and close(e["worst"][0]["candidate"], 0.1),
                "broken: the worst entry's baseline and candidate values")
        # pairs a, b, c, e: deltas .01, -.7, -.01, 0 -> better 1, worse 2, equal 1; d left out
        T.check((e["better"], e["worse"], e["equal"], e["left_out"]) == (1, 2, 1, 1),
                "broken: dice counts 1/2/1, 1 left out", json.dumps(e))
        h = doc["metrics"]["hd"]
        T.check(h["better_is"] == "lower" and [w["id"] for w in h["worst"]] == ["b", "c"]
                and (h["worse"], h["equal"], h["left_out"]) == (2, 2, 1),
                "broken: hd (lower is better): b and c worse", json.dumps(h))
    # mismatched ids: an error naming the id (exit 2, as other input errors)
    c2 = write("h-other.json", score_doc(["a", "b", "c", "d", "x"], {"dice": cdice}))
    rc, doc, err = compare(b, c2)
    T.check(rc == 2 and "'e'" in err and "h-base.json" in err, "mismatched ids: exit 2 naming e",
            err)
    c3 = write("h-fewer.json", score_doc(["a", "b", "c", "d", "e", "f"], {"dice": cdice + [1]}))
    rc, doc, err = compare(b, c3)
    T.check(rc == 2 and "'f'" in err and "h-fewer.json" in err, "an extra id: exit 2 naming f",
            err)
    # not a score output
    plain = write("h-plain.json", {"metrics": {}})
    rc, doc, err = compare(plain, b)
    T.check(rc == 2 and "format" in err and "h-plain.json" in err, "no format field: exit 2",
            err)
    nover = score_doc(ids, {"dice": dice})
    nover["format_version"] = 99
    rc, doc, err = compare(write("h-v99.json", nover), b)
    T.check(rc == 2 and "format_version" in err, "another format_version: exit 2", err)
    noids = score_doc(ids, {"dice": dice})
    del noids["image_ids"]
    rc, doc, err = compare(write("h-noids.json", noids), b)
    T.check(rc == 2 and "--no-per-image" in err, "no image ids: exit 2 saying why", err)
    # bad gates
    for gate in ("dice.delta.median>0", "nothing.delta.mean>0", "dice.delta.mean>>1",
                 "dice.per_class[0].delta.mean>0", "dice.worse<=x"):
        rc, doc, err = compare(b, c, "--gate", gate)
        T.check(rc == 2 and gate.split(">")[0].split("<")[0] in err, f"bad gate {gate}: exit 2",
                f"rc {rc} {err}")
    rc, out, err = run(["compare", b, c, "--resamples", "5"])
    T.check(rc == 2 and "--resamples" in err, "--resamples 5: exit 2", err)
    rc, out, err = run(["compare", b])
    T.check(rc == 2 and "two files" in err, "one file: exit 2", err)
    # JUnit: a test case per gate
    junit = os.path.join(WORK, "c.xml")
    rc, out, err = run(["compare", b, c, "--gate", "dice.delta.ci_low>=-0.01", "--gate",
                        "hd.equal>=0", "--junit", junit])
    try:
        root = ET.parse(junit).getroot()
        cases = root.findall(".//testcase")
        names = [x.get("name") for x in cases]
        fails = [x.get("name") for x in cases if x.find("failure") is not None]
        T.check(rc == 1 and names == ["compare", "dice.delta.ci_low>=-0.01", "hd.equal>=0"]
                and fails == ["dice.delta.ci_low>=-0.01"],
                "junit: a case per gate, the failing one failed", f"{rc} {names} {fails}")
    except (OSError, ET.ParseError) as e:
        T.check(False, "junit: written and parses", str(e))
    # the table names the worst image
    T.check("largest drops of metrics.dice" in out and "\nb " in out, "table: drops listed", out)


def test_multiclass_hand():
    # per-image rows of 3 classes; the image value is the mean of defined classes
    ids = ["p", "q", "r", "s"]
    b = [[0.5, 0.6, None], [0.7, 0.8, 0.9], [0.2, 0.4, 0.6], [1.0, 1.0, 1.0]]
    c = [[0.6, 0.6, 0.2], [0.7, 0.5, 0.9], [0.3, 0.4, None], [1.0, 1.0, 1.0]]
    bf = write("m-b.json", score_doc(ids, {"dice": b}, mode="multiclass"))
    cf = write("m-c.json", score_doc(ids, {"dice": c}, mode="multiclass"))
    rc, doc, err = compare(bf, cf, "--gate", "dice.per_class[2].left_out==2")
    if not T.check(rc == 0 and doc, "multiclass hand: exit 0", err):
        return
    e = doc["metrics"]["dice"]
    pc = e["per_class"]
    # class 0: deltas .1, 0, .1, 0 -> mean .05; class 1: 0, -.3, 0, 0; class 2: pairs q, s only
    T.check(close(pc[0]["delta"]["mean"], ((0.6 - 0.5) + 0 + (0.3 - 0.2) + 0) / 4),
            "multiclass hand: class 0 mean delta")
    T.check(close(pc[1]["delta"]["mean"], (0.5 - 0.8) / 4) and pc[1]["worse"] == 1,
            "multiclass hand: class 1")
    T.check(pc[2]["pairs"] == 2 and pc[2]["left_out"] == 2, "multiclass hand: class 2 leaves 2 out")
    img = [np.mean([0.6, 0.6, 0.2]) - np.mean([0.5, 0.6]), np.mean([0.7, 0.5, 0.9]) - 0.8,
           np.mean([0.3, 0.4]) - 0.4, 0.0]
    T.check(close(e["delta"]["mean"], float(np.mean(img)), 1e-12),
            "multiclass hand: the mean of per-image means of defined classes",
            f"{e['delta']['mean']} vs {np.mean(img)}")


# ---- through a real seglossd -----------------------------------------------------------------


class Page(html.parser.HTMLParser):
    """The parts of a report page the comparison adds: the sections' ids, the comparison table's
    rows (data-key -> data-value list), and the thumbnails' data-id per section, in order."""

    def __init__(self):
        super().__init__()
        self.sections, self.rows, self.thumbs = [], {}, {}
        self.row = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        elif tag == "tr" and "data-key" in a and self.sections[-1:] == ["comparison"]:
            self.row = a["data-key"]
            self.rows.setdefault(self.row, [])
        elif tag == "td" and self.row and "data-value" in a:
            v = a["data-value"]
            self.rows[self.row].append(None if v == "null" else float(v))
        elif tag == "figure" and self.sections:
            self.thumbs.setdefault(self.sections[-1], []).append(a.get("data-id"))

    def handle_endtag(self, tag):
        if tag in ("tr", "table"):
            self.row = None


def check_page(path, base, table):
    """The --html report of the broken run: its comparison section and the drops drawn."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        T.check(False, "server html: the report was written", str(e))
        return
    pg = Page()
    pg.feed(text)
    T.check(pg.sections == ["worst", "comparison", "drops"],
            "server html: sections worst, comparison, drops", str(pg.sections))
    T.check(pg.thumbs.get("drops", [None])[0] == "7" and len(pg.thumbs.get("drops", [])) <= 3,
            "server html: image 7 drawn first of the drops (at most --worst 3)",
            str(pg.thumbs.get("drops")))
    row = pg.rows.get("metrics.dice")
    b = json.load(open(base))["metrics"]["dice"]["per_image"]
    # the broken image's dice is 0 now (an empty prediction of a non-empty target), the others
    # are unchanged: the mean difference is -b[7] / n, 11 equal, 1 worse
    n = len(b)
    T.check(row is not None and close(row[2], -b[7] / n, 1e-12) and row[6:9] == [0, 1, n - 1],
            "server html: the dice row (mean delta -b7/n, 0 better, 1 worse, n-1 equal)",
            f"{row} vs {-b[7] / n}")


def test_server(url):
    rng = np.random.default_rng(3)
    n, h, w = 12, 16, 16
    tgt = (rng.random((n, h, w)) > 0.6).astype(np.uint8)
    flip = rng.random((n, h, w)) > 0.9
    pred = np.where(flip, 1 - tgt, tgt).astype(np.uint8)
    broken = pred.copy()
    broken[7] = 0
    d = WORK
    np.save(os.path.join(d, "t.npy"), tgt)
    np.save(os.path.join(d, "p.npy"), pred)
    np.save(os.path.join(d, "pb.npy"), broken)
    common = ["--url", url, "--target", os.path.join(d, "t.npy"), "--set",
              "prediction_type=labels", "--metric", "dice", "--metric",
              "hausdorff:percentile=95,as=hd95", "--loss", "dice", "--no-progress"]
    rc, out, err = run(["score", "--pred", os.path.join(d, "p.npy"), *common, "--json"])
    base = os.path.join(d, "base.json")
    with open(base, "w") as f:
        f.write(out)
    doc = json.loads(out) if rc == 0 else {}
    T.check(rc == 0 and doc.get("format") == "segloss-score" and doc.get("format_version") == 1
            and doc["better"]["metrics"] == {"dice": "higher", "hd95": "lower"}
            and doc["better"]["losses"] == {"dice": "lower"},
            "server: score --json says its format and which way is better", err)
    # identical: score again with --baseline
    rc, out, err = run(["score", "--pred", os.path.join(d, "p.npy"), *common, "--baseline", base,
                        "--gate", "dice.delta.ci_low>=-0.01", "--gate", "hd95.worse==0",
                        "--gate", "dice.mean>=0.5", "--json"])
    doc = json.loads(out) if rc == 0 else None
    if T.check(doc, "server identical: --baseline exit 0", f"{rc} {err}"):
        cmpd = doc["comparison"]
        T.check(all(v["delta"]["mean"] == 0 and v["worse"] == 0 for s in ("metrics", "losses")
                    for v in cmpd[s].values()), "server identical: every delta 0, none worse")
        T.check([g["passed"] for g in doc["gates"]] == [True, True, True],
                "server identical: comparison and score gates pass")
    # image 7 broken: it tops the list; the non-inferiority gate fails
    junit = os.path.join(d, "s.xml")
    page = os.path.join(d, "r.html")
    rc, out, err = run(["score", "--pred", os.path.join(d, "pb.npy"), *common, "--baseline", base,
                        "--gate", "dice.delta.ci_low>=-0.01", "--gate", "dice.mean>=0",
                        "--junit", junit, "--html", page, "--worst", "3"])
    check_page(page, base, out)
    T.check(rc == 1 and "gate failed: dice.delta.ci_low>=-0.01" in err,
            "server broken: the non-inferiority gate fails, exit 1", f"{rc} {err}")
    lines = out.splitlines()
    try:
        at = lines.index("largest drops of metrics.dice")
        T.check(lines[at + 2].split()[0] == "7", "server broken: image 7 tops the drops", out)
    except ValueError:
        T.check(False, "server broken: the table lists the drops", out)
    try:
        names = [x.get("name") for x in ET.parse(junit).getroot().findall(".//testcase")]
        T.check(names == ["score", "dice.delta.ci_low>=-0.01", "dice.mean>=0"],
                "server broken: junit has a case per gate", str(names))
    except (OSError, ET.ParseError) as e:
        T.check(False, "server broken: junit written", str(e))
    # segloss compare on the two files
    rc, out, err = run(["score", "--pred", os.path.join(d, "pb.npy"), *common, "--json"])
    cand = os.path.join(d, "cand.json")
    with open(cand, "w") as f:
        f.write(out)
    rc, doc, err = compare(base, cand, "--worst", "1")
    if T.check(rc == 0 and doc, "server compare: exit 0", err):
        b, c = json.load(open(base)), json.load(open(cand))
        want = np.array(c["metrics"]["dice"]["per_image"]) - np.array(b["metrics"]["dice"]["per_image"])
        e = doc["metrics"]["dice"]
        T.check([x["id"] for x in e["worst"]] == ["7"] and close(e["delta"]["mean"], want.mean()),
                "server compare: 7 worst, the mean of the files' differences")
    # a comparison gate without --baseline; a baseline that is not a score output
    rc, out, err = run(["score", "--pred", os.path.join(d, "p.npy"), *common, "--gate",
                        "dice.delta.mean>=0"])
    T.check(rc == 2 and "--baseline" in err, "server: a comparison gate needs --baseline", err)
    rc, out, err = run(["score", "--pred", os.path.join(d, "p.npy"), *common, "--baseline",
                        os.path.join(d, "t.npy")])
    T.check(rc == 2 and "--baseline" in err, "server: a --baseline that is not JSON: exit 2", err)
    # other image ids: directories with one name changed
    for name, arr in (("pd", pred), ("td", tgt)):
        os.makedirs(os.path.join(d, name), exist_ok=True)
        for i in range(n):
            np.save(os.path.join(d, name, f"im{i:02d}.npy"), arr[i])
    os.rename(os.path.join(d, "pd", "im03.npy"), os.path.join(d, "pd", "zz.npy"))
    os.rename(os.path.join(d, "td", "im03.npy"), os.path.join(d, "td", "zz.npy"))
    rc, out, err = run(["score", "--url", url, "--pred", os.path.join(d, "pd"), "--target",
                        os.path.join(d, "td"), "--set", "prediction_type=labels", "--metric",
                        "dice", "--metric", "hausdorff:percentile=95,as=hd95", "--loss", "dice",
                        "--baseline", os.path.join(d, "cand.json")])
    T.check(rc == 2 and "not in" in err and ("'7'" in err or "'zz'" in err or "'0'" in err),
            "server: other ids than the baseline's: exit 2 naming one", err)
    # empty masks with empty "nan": image 0's target and baseline prediction are empty (Dice
    # null), the candidate predicts pixels there (Dice 0): that pair is left out and counted
    te, pe = tgt.copy(), pred.copy()
    te[0] = 0
    pe[0] = 0
    pe2 = pe.copy()
    pe2[0, :4, :4] = 1
    for name, arr in (("te.npy", te), ("pe.npy", pe), ("pe2.npy", pe2)):
        np.save(os.path.join(d, name), arr)
    em = ["--url", url, "--target", os.path.join(d, "te.npy"), "--set", "prediction_type=labels",
          "--set", "empty=nan", "--metric", "dice", "--no-progress"]
    rc, out, err = run(["score", "--pred", os.path.join(d, "pe.npy"), *em, "--json"])
    with open(os.path.join(d, "eb.json"), "w") as f:
        f.write(out)
    rc, out, err = run(["score", "--pred", os.path.join(d, "pe2.npy"), *em, "--baseline",
                        os.path.join(d, "eb.json"), "--gate", "dice.left_out==1", "--json"])
    doc = json.loads(out) if rc in (0, 1) and out else {}
    e = doc.get("comparison", {}).get("metrics", {}).get("dice", {})
    T.check(rc == 0 and e.get("left_out") == 1 and e.get("pairs") == n - 1
            and e.get("equal") == n - 1 and e.get("delta", {}).get("mean") == 0,
            "server empty masks: the null pair left out and counted, the rest equal",
            f"{rc} {err} {json.dumps(e)[:400]}")

    # multiclass through the server: per-class differences
    c = 3
    tm = rng.integers(0, c, (n, h, w)).astype(np.uint8)
    pm = np.where(rng.random((n, h, w)) > 0.8, rng.integers(0, c, (n, h, w)), tm).astype(np.uint8)
    pm2 = pm.copy()
    pm2[2][pm2[2] == 1] = 0
    np.save(os.path.join(d, "tm.npy"), tm)
    # logits [N, C, H, W]: 4 for the labelled class, 0 elsewhere (argmax is the label)
    for name, lab in (("pm.npy", pm), ("pm2.npy", pm2)):
        np.save(os.path.join(d, name), (4 * np.eye(c)[lab]).transpose(0, 3, 1, 2).astype(np.float32))
    mc = ["--url", url, "--target", os.path.join(d, "tm.npy"), "--set", "mode=multiclass",
          "--metric", "dice", "--no-progress", "--json"]
    rc1, o1, e1 = run(["score", "--pred", os.path.join(d, "pm.npy"), *mc])
    rc2, o2, e2 = run(["score", "--pred", os.path.join(d, "pm2.npy"), *mc])
    if not T.check(rc1 == 0 and rc2 == 0, "server multiclass: scored", e1 + e2):
        return
    with open(os.path.join(d, "mb.json"), "w") as f:
        f.write(o1)
    with open(os.path.join(d, "mc.json"), "w") as f:
        f.write(o2)
    rc, doc, err = compare(os.path.join(d, "mb.json"), os.path.join(d, "mc.json"), "--gate",
                           "dice.per_class[1].worse==1")
    if T.check(rc == 0 and doc, "server multiclass: compare exit 0, class 1 worse once", err):
        b = json.loads(o1)["metrics"]["dice"]["per_image"]
        cc = json.loads(o2)["metrics"]["dice"]["per_image"]
        for k in range(c):
            dk = [y[k] - x[k] for x, y in zip(b, cc) if x[k] is not None and y[k] is not None]
            T.check(close(doc["metrics"]["dice"]["per_class"][k]["delta"]["mean"],
                          float(np.mean(dk))), f"server multiclass: class {k} mean difference")
        T.check([x["id"] for x in doc["metrics"]["dice"]["worst"]][:1] == ["2"],
                "server multiclass: image 2 tops the drops")


def main():
    global SEGLOSS, WORK
    ap = argparse.ArgumentParser()
    ap.add_argument("--segloss", required=True)
    ap.add_argument("--seglossd", required=True)
    ap.add_argument("--golden")
    opts = ap.parse_args()
    SEGLOSS = os.path.abspath(opts.segloss)
    WORK = tempfile.mkdtemp(prefix="segloss-compare-test-")
    server = None
    t0 = time.monotonic()
    try:
        for name, fn in (("statistics", test_statistics), ("hand_made", test_hand_made),
                         ("multiclass_hand", test_multiclass_hand)):
            if harness.selected("clients/compare/" + name):
                try:
                    fn()
                except Exception:
                    T.check(False, f"{name}: the test ran", traceback.format_exc())
        if harness.selected("clients/compare/server"):
            server = harness.Server(opts.seglossd)
            try:
                test_server(server.url)
            except Exception:
                T.check(False, "server: the test ran", traceback.format_exc())
    finally:
        if server:
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"# {time.monotonic() - t0:.1f} s")
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
