#!/usr/bin/python3
"""test_cli.py - the `segloss` command-line client against a real seglossd.

    python3 tests/clients/test_cli.py --segloss build/segloss --seglossd build/seglossd \
        --golden tests/golden/cases

Prints "ok ..." / "FAIL ..." lines and closes with `cli: N passed, M failed` (exit 1 on a failure).
SEGLOSS_TEST selects groups by their names "clients/cli/GROUP" (tests/tally.py selected).

Every expected value comes from outside the CLI: the golden cases' `expect`, the server's answer to
ONE direct JSON request holding all images (inline .npy), or a calculation written here.

Groups:
  golden       every 200 /v1/score golden case whose arrays decode to numpy, as .npy files + --spec
               (also some as .npy.gz; --batch-size 1 where the losses allow it, else exit 2)
  aggregation  seeded random data sets (binary with ignore_index, multiclass without background and
               with class weights, multilabel, 3-D, empty masks with empty "nan", the surface
               conventions: surfels, directions, MONAI/DeepMind empty rules with their `infinite`
               counts by hand, chessboard/taxicab, per-class tolerances), N = 7 in 3
               batches, equal to one request with all 7 images; other batch sizes, --compress,
               per_image false, 32 metrics, a 422 in batch 2; N = 64 in 4 batches
  dirs         directories paired by name (.npy and .npy.gz, two shapes, a dtype change, [C,H,W]
               files, an unpaired id)
  dirs_multiclass  [C, H, W] prediction files; a float64 file among float32 ones starts a batch
  memory       128 images of 256x256 in batches of 8: peak RSS well under the data size
  csv          Kaggle RLE CSV files with --shape (union of rows, empty rows, an unpaired id)
  gates        passing, failing (exit 1, named with the number), null, malformed and unknown gates
  output       --json, the table, the progress bar (on a pty only), --junit, --no-per-image
  errors       a 422, nothing listening (backoff), a silent server (--timeout), 429 retried
               (seglossd's --max-per-ip), 503 retried (harness.Saturated), health, usage errors,
               $SEGLOSS_URL
  report       --html: stacked files in 3 batches, a Fortran-order .npy.gz, directories with a
               failing gate (exit 1, report written), Kaggle CSV; aggregate rows equal --json,
               the worst ids in order by hand-computed Dice, thumbnails decoded (PNG) pixel by
               pixel against the TP/FP/FN/TN colours; --report-worst and the spec's report_worst;
               a bad path, a server error (no report)
  parallel     --parallel 4/6/12 against --parallel 1: byte-identical --json, table, --junit and
               --html on multi-image golden cases (one batch per image), a directory of three
               shapes and two dtypes (per-image Dice counted here), 40 multiclass images in 14
               batches (equal to one request); a failing batch in the middle named as one by one;
               429s (--max-per-ip 2) retried per request; bad values; peak RSS bounded
  soft_targets binary float32 targets in [0, 1] and cross_entropy label_smoothing/smooth_factor
               (binary on soft and on hard uint8 targets, the latter on the fused float32 pass, and
               multiclass with class weights) in 3 batches: equal to one request and
               to the peers' formulas (PyTorch, Keras, smp) computed here; focal refused (exit 2)
"""

import argparse
import base64
import fcntl
import gzip
import html.parser
import io
import json
import math
import os
import re
import select
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import traceback
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "browser"))
import png  # noqa: E402

T = harness.Tally("cli")
SEGLOSS = None
WORK = None

# tolerances of the aggregation comparisons: losses are sums of floating-point terms in another
# order (relative 1e-9); metrics come from integer counts (exact up to the last bits)
LOSS_RTOL, LOSS_ATOL = 1e-9, 1e-12
METRIC_RTOL, METRIC_ATOL = 1e-12, 1e-12


# ---- helpers --------------------------------------------------------------------------------


def run(args, timeout=60, env=None):
    """Runs segloss with args; returns (exit status, stdout, stderr, seconds). stdin, stdout and
    stderr are not terminals."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(
            [SEGLOSS, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        err = (e.stderr or b"").decode("utf-8", "replace")
        return None, out, err + f"\n[test: killed after {timeout} s]", time.monotonic() - t0
    return (
        p.returncode,
        p.stdout.decode("utf-8", "replace"),
        p.stderr.decode("utf-8", "replace"),
        time.monotonic() - t0,
    )


def cmdline(args):
    return "segloss " + shlex.join(args)


def short(text, n=600):
    text = text.strip()
    return text if len(text) <= n else text[:n] + "..."


def run_json(args, timeout=60):
    """Runs segloss with --json appended; returns (rc, parsed stdout or None, stdout, stderr)."""
    rc, out, err, _ = run([*args, "--json"], timeout=timeout)
    doc = None
    try:
        doc = json.loads(out)
    except ValueError:
        pass
    return rc, doc, out, err


def save(path, a):
    """np.save to path; gzip-compressed when path ends in .gz. Keeps Fortran order."""
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    data = buf.getvalue()
    if path.endswith(".gz"):
        data = gzip.compress(data, 6)
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f)
    return path


def npy_inline(a):
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return {"format": "npy", "data": base64.b64encode(buf.getvalue()).decode()}


def direct(url, spec, pred, target):
    """The server's answer to ONE JSON request with every image (inline .npy)."""
    body = dict(spec)
    body["prediction"] = npy_inline(pred)
    body["target"] = npy_inline(target)
    status, ans = harness.post_json(url + "/v1/score", body)
    if status != 200:
        raise RuntimeError(f"direct request answered {status}: {ans}")
    return ans


def compare_entries(tag, got, want, cmd, loss_tol=(LOSS_RTOL, LOSS_ATOL),
                    metric_tol=(METRIC_RTOL, METRIC_ATOL)):
    """One check per loss and metric of want (the direct answer): every field the server gives
    (value, per_image, mean, global, per_class, matrix, undefined) must match."""
    if not T.check(isinstance(got, dict), f"{tag}: the CLI answered JSON", cmd):
        return
    for sec, (rtol, atol) in (("losses", loss_tol), ("metrics", metric_tol)):
        g = got.get(sec)
        w = want.get(sec, {})
        if not T.check(isinstance(g, dict), f"{tag}: {sec} present", f"{cmd}: got {short(json.dumps(got))}"):
            continue
        T.check(
            set(g) == set(w),
            f"{tag}: {sec} keys are {sorted(w)}",
            f"{cmd}: got keys {sorted(g)}",
        )
        for key in w:
            m = harness.mismatch(g.get(key), w[key], rtol, atol, f"{sec}.{key}")
            if key not in g:
                m = f"{sec}.{key} missing"
            T.check(m is None, f"{tag}: {sec}.{key} equals the single request", f"{cmd}: {m}")


def blobs(rng, shape, passes=3):
    """Smooth random fields (unit variance per image): masks from them have real shapes."""
    f = rng.normal(size=shape)
    for _ in range(passes):
        f = (f + np.roll(f, 1, -1) + np.roll(f, -1, -1) + np.roll(f, 1, -2) + np.roll(f, -1, -2)) / 5
    axes = (-2, -1)
    f = (f - f.mean(axis=axes, keepdims=True)) / f.std(axis=axes, keepdims=True)
    return f




def pooling_loss(spec):
    """Whether a loss spec pools the whole batch (cannot be combined from batches)."""
    name = spec.get("name")
    if name == "combo":
        return any(pooling_loss(t) for t in spec.get("terms", []))
    if name in ("dice", "jaccard", "tversky", "generalized_dice", "lovasz_hinge"):
        return spec.get("per_image", True) is False
    if name == "mcc":  # smp MCCLoss pools the batch unless per_image is true
        return spec.get("per_image", False) is not True
    if name == "lovasz_softmax":
        return spec.get("per_image", False) is not True
    if name == "balanced_cross_entropy":
        return spec.get("beta") == "auto"
    return False


class Probe:
    """/metrics of one server read over ONE kept-alive connection from another loopback address,
    so that a per-IP limit on 127.0.0.1 neither refuses the questions nor counts them, and the
    open-connections gauge counts exactly one connection of ours."""

    def __init__(self, url, source="127.0.0.2"):
        import http.client

        host, port = url.split("//")[1].split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=10,
                                               source_address=(source, 0))

    def metric(self, series):
        self.conn.request("GET", "/metrics")
        for line in self.conn.getresponse().read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return None

    def wait(self, series, pred, timeout=30):
        """Polls until pred(value of series) holds; returns whether it did in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.metric(series) or 0.0):
                return True
            time.sleep(0.01)
        return False

    def close(self):
        self.conn.close()


# ---- 1. golden cases ------------------------------------------------------------------------


def golden_files(case, d, gz=(False, False)):
    req = case["request"]
    pred = harness.to_numpy(req["prediction"])
    tgt = harness.to_numpy(req["target"])
    pp = save(os.path.join(d, "pred.npy" + (".gz" if gz[0] else "")), pred)
    tp = save(os.path.join(d, "target.npy" + (".gz" if gz[1] else "")), tgt)
    rest = {k: v for k, v in req.items() if k not in ("prediction", "target")}
    sp = write_json(os.path.join(d, "spec.json"), rest)
    return pp, tp, sp, pred


def golden_usable(case):
    e = case["expect"]
    req = case["request"]
    return (
        e.get("status") == 200
        and "weight_map" not in e
        and "prediction" in req
        and "target" in req
        and harness.to_numpy(req["prediction"]) is not None
        and harness.to_numpy(req["target"]) is not None
    )


def check_golden_answer(tag, case, doc, cmd):
    e = case["expect"]
    rtol, atol = case.get("rtol", 1e-5), case.get("atol", 1e-6)
    for sec in ("losses", "metrics"):
        if sec not in e:
            continue
        m = harness.mismatch(doc.get(sec) if isinstance(doc, dict) else None, e[sec], rtol, atol, sec)
        T.check(m is None, f"{tag}: {sec} match the golden expect", f"{cmd}: {m}")


GZ_CASES = {
    "ce_ignore_index": (True, True),
    "enc_npy_fortran_deflate": (True, False),
    "mc_dice_bg0": (True, True),
    "ml_ce_dice": (False, True),
    "surface_metrics": (True, True),
    "metrics_empty_nan": (True, True),
}


def test_golden(url, golden_dir):
    cases = [c for c in harness.golden_cases(golden_dir) if golden_usable(c)]
    T.check(len(cases) >= 40, f"golden: {len(cases)} usable /v1/score cases", "too few")
    files = {}
    for case in cases:
        cid = case["id"]
        d = tempfile.mkdtemp(prefix=cid + "-", dir=WORK)
        pp, tp, sp, pred = golden_files(case, d)
        files[cid] = (pp, tp, sp)
        args = ["score", "--url", url, "--pred", pp, "--target", tp, "--spec", sp]
        rc, doc, out, err = run_json(args)
        cmd = cmdline(args + ["--json"])
        if T.check(rc == 0 and doc is not None, f"golden {cid}: exit 0 with JSON",
                   f"{cmd}: rc={rc} stderr={short(err)} stdout={short(out, 200)}"):
            check_golden_answer(f"golden {cid}", case, doc, cmd)

        if cid in GZ_CASES:
            dz = tempfile.mkdtemp(prefix=cid + "-gz-", dir=WORK)
            pz, tz, sz, _ = golden_files(case, dz, GZ_CASES[cid])
            args = ["score", "--url", url, "--pred", pz, "--target", tz, "--spec", sz]
            rc, doc, out, err = run_json(args)
            cmd = cmdline(args + ["--json"])
            if T.check(rc == 0 and doc is not None, f"golden {cid} (.npy.gz): exit 0 with JSON",
                       f"{cmd}: rc={rc} stderr={short(err)}"):
                check_golden_answer(f"golden {cid} (.npy.gz)", case, doc, cmd)

        n = pred.shape[0]
        if n < 2:
            continue
        pools = [l.get("as", l.get("name")) for l in case["request"].get("losses", []) if pooling_loss(l)]
        args = ["score", "--url", url, "--pred", pp, "--target", tp, "--spec", sp, "--batch-size", "1"]
        rc, doc, out, err = run_json(args)
        cmd = cmdline(args + ["--json"])
        fortran = pred.flags["F_CONTIGUOUS"] and not pred.flags["C_CONTIGUOUS"]
        if pools:
            T.check(
                rc == 2 and re.search(r"combin|batch-size|per_image", err, re.I) is not None,
                f"golden {cid} --batch-size 1: exit 2, {pools} cannot be combined from batches",
                f"{cmd}: rc={rc} stderr={short(err)}",
            )
        elif fortran:
            T.check(
                rc == 2 and "ortran" in err,
                f"golden {cid} --batch-size 1: Fortran-order file with N > batch size: exit 2",
                f"{cmd}: rc={rc} stderr={short(err)}",
            )
        else:
            if T.check(rc == 0 and doc is not None, f"golden {cid} --batch-size 1: exit 0 with JSON",
                       f"{cmd}: rc={rc} stderr={short(err)}"):
                T.check(doc.get("batches") == n, f"golden {cid} --batch-size 1: {n} batches",
                        f"{cmd}: batches={doc.get('batches')}")
                check_golden_answer(f"golden {cid} --batch-size 1", case, doc, cmd)
    return files


# ---- 2. aggregation -------------------------------------------------------------------------


def build_spec(spec_file_obj, flags):
    """The spec the CLI should send: the --spec file's keys, then --set, losses/metrics of the
    file first and then the --loss/--metric ones. flags: (option, text, meaning) triples where
    meaning is a loss/metric object or (key, value) for --set."""
    spec = json.loads(json.dumps(spec_file_obj or {}))
    losses = list(spec.pop("losses", []))
    metrics = list(spec.pop("metrics", []))
    args = []
    for opt, text, meaning in flags:
        args += [opt, text]
        if opt == "--set":
            spec[meaning[0]] = meaning[1]
        elif opt == "--loss":
            losses.append(meaning)
        elif opt == "--metric":
            metrics.append(meaning)
    spec["losses"] = losses
    spec["metrics"] = metrics if metrics else ["dice", "iou"]
    return spec, args


BINARY_LOSSES = [
    ("--loss", "cross_entropy", {"name": "cross_entropy"}),
    ("--loss", "focal:alpha=0.25,gamma=2", {"name": "focal", "alpha": 0.25, "gamma": 2}),
    ("--loss", "dice:per_image=true,smooth=1e-5", {"name": "dice", "per_image": True, "smooth": 1e-5}),
    ("--loss", "jaccard", {"name": "jaccard"}),
    ("--loss", "tversky:beta=0.7,as=tv07", {"name": "tversky", "beta": 0.7, "as": "tv07"}),
    ("--loss", "lovasz_hinge", {"name": "lovasz_hinge"}),
    ("--loss", "weighted_cross_entropy:beta=3", {"name": "weighted_cross_entropy", "beta": 3}),
    ("--loss", "balanced_cross_entropy:beta=auto_per_image",
     {"name": "balanced_cross_entropy", "beta": "auto_per_image"}),
    ("--loss", "cross_entropy:reduction=sum,as=ce_sum", {"name": "cross_entropy", "reduction": "sum", "as": "ce_sum"}),
    ("--loss", "distance_weighted_cross_entropy:w0=5,sigma=3",
     {"name": "distance_weighted_cross_entropy", "w0": 5, "sigma": 3}),
]

ALL_METRICS = [
    ("--metric", "dice", {"name": "dice"}),
    ("--metric", "iou", {"name": "iou"}),
    ("--metric", "precision", {"name": "precision"}),
    ("--metric", "recall", {"name": "recall"}),
    ("--metric", "mcc", {"name": "mcc"}),
    ("--metric", "fbeta:beta=2,as=f2", {"name": "fbeta", "beta": 2, "as": "f2"}),
    ("--metric", "confusion", {"name": "confusion"}),
    ("--metric", "hausdorff:percentile=95", {"name": "hausdorff", "percentile": 95}),
    ("--metric", "assd", {"name": "assd"}),
    ("--metric", "nsd:tolerance=1.5", {"name": "nsd", "tolerance": 1.5}),
    ("--metric", "specificity", {"name": "specificity"}),
    ("--metric", "accuracy", {"name": "accuracy"}),
    ("--metric", "balanced_accuracy", {"name": "balanced_accuracy"}),
]


def dataset_binary(rng, n=7, h=20, w=24):
    f = blobs(rng, (n, h, w))
    tgt = (f > 0.3).astype(np.uint8)
    pred = (2.5 * (f - 0.3) + rng.normal(scale=0.9, size=f.shape)).astype(np.float32)
    tgt[rng.random(tgt.shape) < 0.05] = 255
    tgt[2 % n, :5, :7] = 255  # a block of ignored pixels: images count different pixel numbers
    tgt[n - 2, :, :3] = 255
    return pred, tgt


def dataset_multiclass(rng, n=7, c=4, h=18, w=22):
    f = blobs(rng, (n, c, h, w))
    f[:, 0] += 0.8
    tgt = f.argmax(axis=1).astype(np.uint8)
    pred = (2.0 * f + rng.normal(scale=1.0, size=f.shape)).astype(np.float32)
    tgt[rng.random(tgt.shape) < 0.03] = 255
    tgt[4, 3:9, 2:6] = 255
    return pred, tgt


def dataset_multilabel(rng, n=7, c=3, h=18, w=20):
    f = blobs(rng, (n, c, h, w))
    tgt = (f > 0.2).astype(np.uint8)
    pred = (2.5 * (f - 0.2) + rng.normal(scale=0.9, size=f.shape)).astype(np.float32)
    return pred, tgt


def dataset_empty(rng, n=7, h=16, w=16):
    """Binary with empty masks: 1, 3, 4, 5 both empty (image 3..5 = the whole second batch),
    2 nothing predicted, 6 nothing to find."""
    f = blobs(rng, (n, h, w))
    tgt = (f > 0.3).astype(np.uint8)
    pred = (2.5 * (f - 0.3) + rng.normal(scale=0.7, size=f.shape)).astype(np.float32)
    for i in (1, 3, 4, 5):
        tgt[i] = 0
        pred[i] = -4.0
    pred[2] = -3.0
    tgt[6] = 0
    pred[6, 4:9, 5:10] = 3.0
    return pred, tgt


def dataset_mc_absent(rng, n=7, c=3, h=12, w=12):
    """Multiclass where class 2 is absent from target and prediction in images 0..5: with empty
    "nan" its per_class value is null in the first two batches and defined in the third."""
    f = blobs(rng, (n, c, h, w))
    f[:6, 2] = -10.0
    tgt = f.argmax(axis=1).astype(np.uint8)
    pred = (2.0 * f + rng.normal(scale=0.5, size=f.shape)).astype(np.float32)
    pred[:6, 2] = -20.0
    return pred, tgt


def aggregation_sets(rng):
    sets = []
    p, t = dataset_binary(rng)
    sets.append((
        "binary+ignore", p, t,
        {"losses": [{"name": "combo", "terms": [{"name": "cross_entropy"},
                                                 {"name": "dice", "weight": 0.5}]}],
         "spacing": [0.8, 1.25]},
        [("--set", "ignore_index=255", ("ignore_index", 255))] + BINARY_LOSSES + ALL_METRICS,
    ))
    p, t = dataset_multiclass(rng)
    cw = [0.5, 1, 2, 4]
    sets.append((
        "multiclass", p, t,
        {"losses": [{"name": "combo", "as": "ce_dice",
                     "terms": [{"name": "cross_entropy", "class_weights": cw},
                               {"name": "dice", "weight": 2}]}]},
        [("--set", "include_background=false", ("include_background", False)),
         ("--set", "ignore_index=255", ("ignore_index", 255)),
         ("--loss", "cross_entropy:class_weights=[0.5,1,2,4]", {"name": "cross_entropy", "class_weights": cw}),
         ("--loss", "focal:gamma=2", {"name": "focal", "gamma": 2}),
         ("--loss", "focal:alpha=[0.1,0.2,0.3,0.4],gamma=1.5,as=focal_a",
          {"name": "focal", "alpha": [0.1, 0.2, 0.3, 0.4], "gamma": 1.5, "as": "focal_a"}),
         ("--loss", "dice", {"name": "dice"}),
         ("--loss", "dice:smooth=1e-5,class_weights=[1,2,3,4],as=dice_cw",
          {"name": "dice", "smooth": 1e-5, "class_weights": [1, 2, 3, 4], "as": "dice_cw"}),
         ("--loss", "jaccard:smooth=1", {"name": "jaccard", "smooth": 1}),
         ("--loss", "tversky:fp_weight=0.3,fn_weight=0.7", {"name": "tversky", "fp_weight": 0.3, "fn_weight": 0.7}),
         ("--loss", "lovasz_softmax:per_image=true", {"name": "lovasz_softmax", "per_image": True})]
        + ALL_METRICS,
    ))
    p, t = dataset_multilabel(rng)
    sets.append((
        "multilabel", p, t,
        {"mode": "multilabel",
         "losses": [{"name": "combo", "terms": [{"name": "cross_entropy", "weight": 0.7},
                                                 {"name": "jaccard", "weight": 0.3}]}]},
        [("--loss", "cross_entropy", {"name": "cross_entropy"}),
         ("--loss", "focal", {"name": "focal"}),
         ("--loss", "dice", {"name": "dice"}),
         ("--loss", "jaccard", {"name": "jaccard"}),
         ("--loss", "tversky:beta=0.3", {"name": "tversky", "beta": 0.3}),
         ("--loss", "lovasz_hinge", {"name": "lovasz_hinge"})]
        + ALL_METRICS,
    ))
    p, t = dataset_empty(rng)
    sets.append((
        "binary empty=nan", p, t, None,
        [("--set", "empty=nan", ("empty", "nan")),
         ("--loss", "cross_entropy", {"name": "cross_entropy"}),
         ("--loss", "dice", {"name": "dice"})]
        + ALL_METRICS[:7]
        + [("--metric", "hausdorff:percentile=95,empty_distance=nan",
            {"name": "hausdorff", "percentile": 95, "empty_distance": "nan"}),
           ("--metric", "assd:empty_distance=nan", {"name": "assd", "empty_distance": "nan"}),
           ("--metric", "nsd", {"name": "nsd"})],
    ))
    p, t = dataset_mc_absent(rng)
    sets.append((
        "multiclass empty=nan", p, t, {"empty": "nan"},
        [("--loss", "dice", {"name": "dice"}),
         ("--loss", "cross_entropy", {"name": "cross_entropy"})]
        + ALL_METRICS[:7]
        + [("--metric", "hausdorff:empty_distance=nan", {"name": "hausdorff", "empty_distance": "nan"}),
           ("--metric", "nsd", {"name": "nsd"})],
    ))
    p, t = dataset_3d(rng)
    sets.append((
        "3-D volumes", p, t, {"spacing": [2.0, 1.0, 0.5]},
        [("--loss", "cross_entropy", {"name": "cross_entropy"}),
         ("--loss", "dice", {"name": "dice"}),
         ("--metric", "dice", {"name": "dice"}),
         ("--metric", "iou", {"name": "iou"}),
         ("--metric", "mcc", {"name": "mcc"}),
         ("--metric", "hausdorff:percentile=95", {"name": "hausdorff", "percentile": 95}),
         ("--metric", "nsd:tolerance=2", {"name": "nsd", "tolerance": 2})],
    ))
    p = np.full((7, 10, 12), -3.0, dtype=np.float32)
    t = np.zeros((7, 10, 12), dtype=np.uint8)
    sets.append((
        "all empty, empty=nan", p, t, {"empty": "nan"},
        [("--loss", "dice", {"name": "dice"}),
         ("--metric", "dice", {"name": "dice"}),
         ("--metric", "mcc", {"name": "mcc"}),
         ("--metric", "precision", {"name": "precision"}),
         ("--metric", "hausdorff:empty_distance=nan", {"name": "hausdorff", "empty_distance": "nan"})],
    ))
    # multilabel without channel 0, with ignored pixels that differ per image and channel (the
    # pixel losses' denominators leave channel 0 out), a loss's own include_background and a
    # combo's own one (its terms inherit it); a generator of its own leaves the sets above as
    # they were
    p, t = dataset_multilabel(np.random.default_rng(20261207))
    for i in range(t.shape[0]):
        t[i, 0, : i + 1, :] = 255
        t[i, 2, 0, : 2 * i] = 255
    sets.append((
        "multilabel include_background=false", p, t,
        {"mode": "multilabel",
         "losses": [{"name": "combo", "as": "dice_focal_bg", "include_background": True,
                     "terms": [{"name": "focal", "alpha": None}, {"name": "dice", "smooth": 1e-5}]},
                    {"name": "combo", "terms": [{"name": "cross_entropy", "weight": 0.7},
                                               {"name": "dice", "weight": 0.3}]}]},
        [("--set", "include_background=false", ("include_background", False)),
         ("--set", "ignore_index=255", ("ignore_index", 255)),
         ("--loss", "cross_entropy", {"name": "cross_entropy"}),
         ("--loss", "focal:alpha=null", {"name": "focal", "alpha": None}),
         ("--loss", "focal:include_background=true,as=focal_bg",
          {"name": "focal", "include_background": True, "as": "focal_bg"}),
         ("--loss", "weighted_cross_entropy:beta=3", {"name": "weighted_cross_entropy", "beta": 3}),
         ("--loss", "balanced_cross_entropy:beta=0.3", {"name": "balanced_cross_entropy", "beta": 0.3}),
         ("--loss", "dice", {"name": "dice"}),
         ("--loss", "lovasz_hinge", {"name": "lovasz_hinge"})]
        + ALL_METRICS,
    ))
    # issue 17's surface conventions: DeepMind's surfels, directed distances, the MONAI/DeepMind
    # empty rules (+inf travels as null and is counted in `infinite`), chessboard/taxicab and
    # per-class tolerances; generators of their own leave the sets above as they were
    p, t = dataset_empty(np.random.default_rng(20261217))
    sets.append(("binary surface conventions, empty masks", p, t, {"spacing": [1.5, 0.75]},
                 SURFACE_METRICS))
    p, t = dataset_multiclass(np.random.default_rng(20261218))
    tol = [0.5, 1, 2, 1.5]
    sets.append((
        "multiclass surface tolerances per class", p, t, {"ignore_index": 255},
        [("--metric", "surface_dice:tolerance=[0.5,1,2,1.5]", {"name": "surface_dice", "tolerance": tol}),
         ("--metric", "surface_overlap:tolerance=[0.5,1,2,1.5],direction=pred_to_target",
          {"name": "surface_overlap", "tolerance": tol, "direction": "pred_to_target"}),
         ("--metric", "nsd:tolerance=[0.5,1,2,1.5],distance_metric=taxicab",
          {"name": "nsd", "tolerance": tol, "distance_metric": "taxicab"}),
         ("--metric", "hausdorff:empty_rule=monai,percentile=95",
          {"name": "hausdorff", "empty_rule": "monai", "percentile": 95}),
         ("--metric", "hausdorff:empty_rule=monai,reduction=mean_batch,as=hd_mb",
          {"name": "hausdorff", "empty_rule": "monai", "reduction": "mean_batch", "as": "hd_mb"}),
         ("--metric", "hausdorff:empty_rule=monai,reduction=sum_channel,as=hd_sc",
          {"name": "hausdorff", "empty_rule": "monai", "reduction": "sum_channel", "as": "hd_sc"}),
         ("--metric", "surface_dice:tolerance=[0.5,1,2,1.5],reduction=mean,as=sdice_mean",
          {"name": "surface_dice", "tolerance": tol, "reduction": "mean", "as": "sdice_mean"})],
    ))
    return sets


SURFACE_METRICS = [
    ("--metric", "surface_dice:tolerance=1", {"name": "surface_dice", "tolerance": 1}),
    ("--metric", "surface_dice:empty_rule=deepmind,as=sdice_dm",
     {"name": "surface_dice", "empty_rule": "deepmind", "as": "sdice_dm"}),
    ("--metric", "surface_overlap:direction=target_to_pred,empty_rule=deepmind,as=ov_t2p",
     {"name": "surface_overlap", "direction": "target_to_pred", "empty_rule": "deepmind", "as": "ov_t2p"}),
    ("--metric", "surface_overlap:direction=pred_to_target,as=ov_p2t",
     {"name": "surface_overlap", "direction": "pred_to_target", "as": "ov_p2t"}),
    ("--metric", "hausdorff:empty_rule=monai,as=hd_monai", {"name": "hausdorff", "empty_rule": "monai", "as": "hd_monai"}),
    ("--metric", "hausdorff:empty_rule=deepmind,surfaces=surfels,percentile=95,as=hd95_dm",
     {"name": "hausdorff", "empty_rule": "deepmind", "surfaces": "surfels", "percentile": 95, "as": "hd95_dm"}),
    ("--metric", "hausdorff:direction=pred_to_target,distance_metric=chessboard,as=hd_p2t_cb",
     {"name": "hausdorff", "direction": "pred_to_target", "distance_metric": "chessboard", "as": "hd_p2t_cb"}),
    ("--metric", "assd:empty_rule=monai,distance_metric=taxicab,as=asd_monai_tc",
     {"name": "assd", "empty_rule": "monai", "distance_metric": "taxicab", "as": "asd_monai_tc"}),
    ("--metric", "assd:empty_rule=deepmind,surfaces=surfels,direction=target_to_pred,as=asd_dm_t2p",
     {"name": "assd", "empty_rule": "deepmind", "surfaces": "surfels", "direction": "target_to_pred",
      "as": "asd_dm_t2p"}),
    ("--metric", "nsd:empty_rule=monai,distance_metric=chessboard,as=nsd_monai_cb",
     {"name": "nsd", "empty_rule": "monai", "distance_metric": "chessboard", "as": "nsd_monai_cb"}),
    # MONAI's reductions with +inf among the values: a batch without an empty mask has a finite
    # `reduced`, one with an empty mask a null; combined, they equal one request
    ("--metric", "hausdorff:empty_rule=monai,reduction=mean,as=hd_monai_mean",
     {"name": "hausdorff", "empty_rule": "monai", "reduction": "mean", "as": "hd_monai_mean"}),
    ("--metric", "hausdorff:empty_rule=monai,reduction=mean_channel,as=hd_monai_mc",
     {"name": "hausdorff", "empty_rule": "monai", "reduction": "mean_channel", "as": "hd_monai_mc"}),
    ("--metric", "assd:empty_rule=monai,reduction=sum_batch,as=asd_monai_sb",
     {"name": "assd", "empty_rule": "monai", "reduction": "sum_batch", "as": "asd_monai_sb"}),
    ("--metric", "nsd:empty_rule=monai,reduction=mean,as=nsd_monai_mean",
     {"name": "nsd", "empty_rule": "monai", "reduction": "mean", "as": "nsd_monai_mean"}),
    ("--metric", "surface_dice:reduction=none,as=sdice_none",
     {"name": "surface_dice", "reduction": "none", "as": "sdice_none"}),
]


def check_surface_empty_counts(tag, doc, pred, tgt, cmd):
    """The empty rules' counts by hand from the masks (logits > 0 predicted): MONAI (its
    hausdorff_distance.py / surface_distance.py) gives +inf when exactly one mask is empty and NaN
    when both are; DeepMind's compute_robust_hausdorff gives +inf when either is; its
    compute_average_surface_distance target->prediction gives +inf when only the prediction is
    empty (no surface to reach) and 0/0 = NaN when the target is; its surface Dice is NaN only
    when both are empty. Each null is in `undefined`, each +inf also in `infinite`."""
    pe = [not (pred[i] > 0).any() for i in range(len(pred))]
    te = [not (tgt[i] == 1).any() for i in range(len(tgt))]
    both = sum(a and b for a, b in zip(pe, te))
    one = sum(a != b for a, b in zip(pe, te))
    only_pred = sum(a and not b for a, b in zip(pe, te))
    only_tgt = sum(b and not a for a, b in zip(pe, te))
    T.check(both >= 1 and only_pred >= 1 and only_tgt >= 1, f"{tag}: the data has every empty case",
            f"both {both}, prediction only {only_pred}, target only {only_tgt}")
    m = doc.get("metrics", {})
    want = {
        "hd_monai": (both + one, one),
        "asd_monai_tc": (both + one, one),
        "hd95_dm": (both + one, both + one),
        "asd_dm_t2p": (both + one, only_pred),
        "sdice_dm": (both, None),
        "nsd_monai_cb": (both, None),
        "surface_dice": (0, None),  # the segloss rule: both empty 1, one empty 0
    }
    for key, (undef, inf) in want.items():
        e = m.get(key, {})
        got = (e.get("undefined"), e.get("infinite"))
        T.check(got == (undef, inf), f"{tag}: {key} undefined = {undef}, infinite = {inf}",
                f"{cmd}: got {got}")
    # MONAI do_metric_reduction keeps +inf (only NaN is left out; a mean of nothing is 0): with
    # one binary class, mean_channel is each image's value: null (+inf) where exactly one mask is
    # empty, 0 where both are (NaN left out), finite otherwise; the mean is +inf -> null
    mc = m.get("hd_monai_mc", {}).get("reduced")
    want_mc = [None if a != b else 0.0 if a else "finite" for a, b in zip(pe, te)]
    got_mc = None if not isinstance(mc, list) else [
        v if v is None or (a and b) else "finite" for v, a, b in zip(mc, pe, te)]
    T.check(got_mc == want_mc, f"{tag}: hd_monai_mc reduced is null exactly where one mask is empty",
            f"{cmd}: got {mc}")
    T.check("reduced" in m.get("hd_monai_mean", {}) and m["hd_monai_mean"]["reduced"] is None,
            f"{tag}: hd_monai_mean reduced is null (+inf)", f"{cmd}: got {m.get('hd_monai_mean')}")


def dataset_3d(rng, n=7, d=6, h=10, w=12):
    f = blobs(rng, (n, d, h, w))
    f = (f + np.roll(f, 1, 1) + np.roll(f, -1, 1)) / 3
    f = (f - f.mean()) / f.std()
    tgt = (f > 0.3).astype(np.uint8)
    pred = (2.5 * (f - 0.3) + rng.normal(scale=0.7, size=f.shape)).astype(np.float32)
    return pred[:, None], tgt  # [N, 1, D, H, W] prediction, [N, D, H, W] target


def check_top(tag, doc, want, n, batches, cmd, ids=None):
    T.check(doc.get("images") == n, f"{tag}: images = {n}", f"{cmd}: {doc.get('images')}")
    T.check(doc.get("batches") == batches, f"{tag}: batches = {batches}", f"{cmd}: {doc.get('batches')}")
    for k in ("mode", "classes", "shape"):
        T.check(doc.get(k) == want.get(k), f"{tag}: {k} = {want.get(k)}", f"{cmd}: {doc.get(k)!r}")
    m = harness.mismatch(doc.get("conventions"), want.get("conventions"), 0, 0, "conventions")
    T.check(m is None, f"{tag}: conventions as the server's", f"{cmd}: {m}")
    ids = ids if ids is not None else [str(i) for i in range(n)]
    T.check(doc.get("image_ids") == ids, f"{tag}: image_ids", f"{cmd}: {doc.get('image_ids')}")


def test_aggregation(url):
    rng = np.random.default_rng(20240611)
    results = {}
    for name, pred, tgt, spec_obj, flags in aggregation_sets(rng):
        try:
            aggregation_set(url, results, name, pred, tgt, spec_obj, flags)
        except Exception:
            T.check(False, f"aggregation {name}: the test ran", traceback.format_exc())
    if "binary+ignore" in results:
        try:
            more_aggregation(url, results)
        except Exception:
            T.check(False, "aggregation (more): the test ran", traceback.format_exc())
    try:
        confusion_aggregation(url)
    except Exception:
        T.check(False, "aggregation (confusion family): the test ran", traceback.format_exc())
    return results


def aggregation_set(url, results, name, pred, tgt, spec_obj, flags):
    d = tempfile.mkdtemp(prefix="agg-", dir=WORK)
    pp = save(os.path.join(d, "pred.npy"), pred)
    tp = save(os.path.join(d, "target.npy"), tgt)
    spec, fargs = build_spec(spec_obj, flags)
    want = direct(url, spec, pred, tgt)
    args = ["score", "--url", url, "--pred", pp, "--target", tp, "--batch-size", "3", *fargs]
    if spec_obj is not None:
        args += ["--spec", write_json(os.path.join(d, "spec.json"), spec_obj)]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = f"aggregation {name} (7 images, --batch-size 3)"
    results[name] = (pp, tp, args, spec, want, pred, tgt)
    if not T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON",
                   f"{cmd}: rc={rc} stderr={short(err)}"):
        return
    check_top(tag, doc, want, 7, 3, cmd)
    compare_entries(tag, doc, want, cmd)
    if name.startswith("binary surface conventions"):
        check_surface_empty_counts(tag, doc, pred, tgt, cmd)


def more_aggregation(url, results):
    # the binary set again: compressed and uncompressed bodies, other batch sizes
    pp, tp, args, spec, want, pred, tgt = results["binary+ignore"]
    for extra, batches in ((["--batch-size", "3", "--compress", "gzip"], 3),
                           (["--batch-size", "3", "--compress", "none"], 3),
                           (["--batch-size", "2"], 4), (["--batch-size", "7"], 1), ([], 1)):
        a = [x for x in args]
        i = a.index("--batch-size")
        del a[i:i + 2]
        a += extra
        rc, doc, out, err = run_json(a)
        cmd = cmdline(a + ["--json"])
        tag = f"aggregation binary+ignore {' '.join(extra) or '(default batch size)'}"
        if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
            T.check(doc.get("batches") == batches, f"{tag}: batches = {batches}", f"{cmd}: {doc.get('batches')}")
            compare_entries(tag, doc, want, cmd)

    # top-level per_image false: the CLI still aggregates over the images, the answer has no lists
    pp, tp, args, spec, want, pred, tgt = results["binary+ignore"]
    want_np = direct(url, dict(spec, per_image=False), pred, tgt)
    a = args + ["--set", "per_image=false"]
    rc, doc, out, err = run_json(a)
    cmd = cmdline(a + ["--json"])
    tag = "aggregation binary+ignore --set per_image=false"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        compare_entries(tag, doc, want_np, cmd)
        left = [k for sec in ("losses", "metrics") for k, v in doc.get(sec, {}).items() if "per_image" in v]
        T.check(not left, f"{tag}: no per_image lists", f"{cmd}: {left}")

    # a --spec file with bare loss names (each its defaults), a combo with bare terms, in 3 batches
    sb = {"ignore_index": 255, "losses": ["cross_entropy", "dice",
                                          {"name": "combo", "terms": ["cross_entropy", "jaccard"]}],
          "metrics": ["dice", "iou"]}
    want_b = direct(url, sb, pred, tgt)
    d = tempfile.mkdtemp(prefix="agg-bare-", dir=WORK)
    a = ["score", "--url", url, "--pred", pp, "--target", tp, "--batch-size", "3",
         "--spec", write_json(os.path.join(d, "spec.json"), sb)]
    rc, doc, out, err = run_json(a)
    cmd = cmdline(a + ["--json"])
    tag = "aggregation: bare loss names in --spec (combo terms too), 3 batches"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        T.check(sorted(doc.get("losses", {})) == ["combo", "cross_entropy", "dice"],
                f"{tag}: the three losses, no hidden terms", f"{cmd}: {sorted(doc.get('losses', {}))}")
        compare_entries(tag, doc, want_b, cmd)

    # the server's maximum of 32 metric entries (--max-specs) in 3 batches
    flags = [("--set", "ignore_index=255", ("ignore_index", 255))]
    flags += [("--metric", f"dice:as=m{i}", {"name": "dice", "as": f"m{i}"}) for i in range(31)]
    flags.append(("--metric", "confusion", {"name": "confusion"}))
    spec32, fargs = build_spec(None, flags)
    want32 = direct(url, spec32, pred, tgt)
    a = ["score", "--url", url, "--pred", pp, "--target", tp, "--batch-size", "3", *fargs]
    rc, doc, out, err = run_json(a)
    cmd = ("segloss score --url URL --pred PRED --target TARGET --batch-size 3 --set ignore_index=255 "
           "--metric dice:as=m0 ... --metric dice:as=m30 --metric confusion --json")
    tag = "aggregation 32 metrics (the server's --max-specs) in 3 batches"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 as one direct request does",
               f"{cmd}: rc={rc} stderr={short(err)}"):
        compare_entries(tag, doc, want32, cmd)

    # a bad label in image 4 only: batch 2 (images 3..5) is a 422, named with its image range
    bad = tgt.copy()
    bad[4, 0, 0] = 7
    d = tempfile.mkdtemp(prefix="agg-bad-", dir=WORK)
    tb = save(os.path.join(d, "target.npy"), bad)
    status, ans = harness.post_json(url + "/v1/score", dict(spec, prediction=npy_inline(pred[3:6]),
                                                             target=npy_inline(bad[3:6])))
    detail = ans.get("detail", "")
    a = [tb if x == tp else x for x in args]
    rc, out, err, _ = run(a)
    cmd = cmdline(a)
    T.check(status == 422 and rc == 2 and detail and detail in err,
            "aggregation: a 422 in batch 2: exit 2 with the server's detail",
            f"{cmd}: rc={rc} want detail {detail!r}; stderr={short(err)}")
    T.check(re.search(r"\b3\s*(\.\.|-|–|to)\s*5\b", err) is not None,
            "aggregation: the 422 is prefixed with the batch's image range 3..5", f"{cmd}: stderr={short(err)}")

    # 64 images in 4 batches of 16
    rng = np.random.default_rng(64)
    pred, tgt = dataset_binary(rng, n=64, h=32, w=32)
    d = tempfile.mkdtemp(prefix="agg64-", dir=WORK)
    pp = save(os.path.join(d, "pred.npy.gz"), pred)
    tp = save(os.path.join(d, "target.npy.gz"), tgt)
    flags = [("--set", "ignore_index=255", ("ignore_index", 255)),
             ("--loss", "cross_entropy", {"name": "cross_entropy"}),
             ("--loss", "dice", {"name": "dice"}),
             ("--loss", "lovasz_hinge", {"name": "lovasz_hinge"})] + ALL_METRICS
    spec, fargs = build_spec(None, flags)
    want = direct(url, spec, pred, tgt)
    args = ["score", "--url", url, "--pred", pp, "--target", tp, "--batch-size", "16", *fargs]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "aggregation 64 images (--batch-size 16)"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        check_top(tag, doc, want, 64, 4, cmd)
        compare_entries(tag, doc, want, cmd)


def monai_confusion_metric(name, tp, fp, tn, fn):
    """MONAI monai/metrics/confusion_matrix.py compute_confusion_matrix_metric, written out:
    NaN wherever a denominator (or a TPR/TNR/PPV/NPV inside a formula) is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        def r(a, b):
            return np.where(b != 0, a / np.where(b != 0, b, 1), np.nan)
        tpr, tnr = r(tp, tp + fn), r(tn, tn + fp)
        ppv, npv = r(tp, tp + fp), r(tn, tn + fn)
        return {
            "tpr": tpr, "fnr": r(fn, tp + fn), "fpr": r(fp, fp + tn), "fdr": r(fp, fp + tp),
            "for": r(fn, fn + tn), "ts": r(tp, tp + fn + fp), "f1": r(2 * tp, 2 * tp + fn + fp),
            "pt": r(np.sqrt(tpr * (1 - tnr)) + tnr - 1, tpr + tnr - 1),
            "fm": np.sqrt(ppv * tpr), "bm": tpr + tnr - 1, "mk": ppv + npv - 1,
        }[name]


def monai_reduce(f, reduction):
    """MONAI monai/metrics/utils.py do_metric_reduction on f [N, C] (NaN = undefined), written
    out: NaNs are left out of every sum and count, a mean over nothing is 0, and `mean` is over
    each image's classes first, then over the images that have a defined value."""
    ok = ~np.isnan(f)
    z = np.where(ok, f, 0.0)
    def mean(s, k):
        return np.where(k > 0, s / np.maximum(k, 1), 0.0)
    if reduction == "none":
        return [[None if np.isnan(x) else float(x) for x in row] for row in f]
    if reduction == "sum":
        return float(z.sum())
    if reduction == "mean":
        per_image = mean(z.sum(1), ok.sum(1))
        n = (ok.sum(1) > 0).sum()
        return float(per_image.sum() / n) if n else 0.0
    if reduction == "mean_batch":
        return mean(z.sum(0), ok.sum(0)).tolist()
    if reduction == "sum_batch":
        return z.sum(0).tolist()
    if reduction == "mean_channel":
        return mean(z.sum(1), ok.sum(1)).tolist()
    if reduction == "sum_channel":
        return z.sum(1).tolist()
    raise ValueError(reduction)


def confusion_aggregation(url):
    """Issue 17: MONAI's confusion family (its names and aliases), ignore_empty, zero_division
    and `reduction` over 3 batches equal one request with the 7 images, and both equal MONAI's
    formulas and do_metric_reduction written out above (computed here from the images' counts)."""
    rng = np.random.default_rng(17)
    pred, tgt = dataset_mc_absent(rng)  # class 2 absent from images 0..5: undefined values
    n, C = pred.shape[0], pred.shape[1]
    flags = [("--set", "include_background=false", ("include_background", False)),
             ("--metric", "dice:ignore_empty=true,reduction=mean",
              {"name": "dice", "ignore_empty": True, "reduction": "mean"}),
             ("--metric", "iou:ignore_empty=true,reduction=mean_batch",
              {"name": "iou", "ignore_empty": True, "reduction": "mean_batch"}),
             ("--metric", "sensitivity:zero_division=nan,reduction=sum_batch",
              {"name": "sensitivity", "zero_division": "nan", "reduction": "sum_batch"})]
    reds = {"fnr": "mean_channel", "fpr": "sum", "fdr": "mean", "for": "sum_channel", "ts": "mean_batch",
            "f1": "none", "pt": "sum_batch", "fm": "mean", "bm": "mean_batch", "mk": "none"}
    for name, red in reds.items():
        flags.append(("--metric", f"{name}:reduction={red}", {"name": name, "reduction": red}))
    flags.append(("--metric", "threat_score", {"name": "threat_score"}))
    spec, fargs = build_spec(None, flags)
    want = direct(url, spec, pred, tgt)
    d = tempfile.mkdtemp(prefix="agg-conf-", dir=WORK)
    pp = save(os.path.join(d, "pred.npy"), pred)
    tp_ = save(os.path.join(d, "target.npy"), tgt)
    args = ["score", "--url", url, "--pred", pp, "--target", tp_, "--batch-size", "3", *fargs]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "aggregation confusion family, ignore_empty, zero_division, reduction (7 images, 3 batches)"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        T.check(doc.get("batches") == 3, f"{tag}: batches = 3", f"{cmd}: {doc.get('batches')}")
        compare_entries(tag, doc, want, cmd)

    # the per-image counts of the hard prediction (argmax), classes 1.. (include_background false)
    hard = pred.argmax(axis=1)
    cls = np.arange(C)[None, :, None, None]
    P, Y = hard[:, None] == cls, tgt[:, None] == cls
    full = {k: v.reshape(n, C, -1).sum(-1).astype(float) for k, v in
            (("tp", P & Y), ("fp", P & ~Y), ("fn", ~P & Y), ("tn", ~P & ~Y))}
    cnt = {k: v[:, 1:] for k, v in full.items()}
    T.check(np.isnan(monai_confusion_metric("tpr", **cnt)).any(),
            f"{tag}: the data has undefined values (class 2 absent)", "")
    got = doc.get("metrics", {}) if doc else {}
    for name, red in list(reds.items()) + [("tpr", "sum_batch")]:
        key = "sensitivity" if name == "tpr" else name
        f = monai_confusion_metric(name, **cnt)
        m = harness.mismatch(got.get(key, {}).get("reduced"), monai_reduce(f, red), 1e-9, 1e-12,
                             f"metrics.{key}.reduced")
        T.check(m is None, f"{tag}: {key} reduced ({red}) is MONAI's", f"{cmd}: {m}")
        # undefined counts every null per-image value, class 0 included
        T.check(got.get(key, {}).get("undefined") == int(np.isnan(monai_confusion_metric(name, **full)).sum()),
                f"{tag}: {key} undefined = the NaNs of MONAI's formula", f"{cmd}: {got.get(key, {}).get('undefined')}")
    # dice with ignore_empty: NaN where the class is absent from the target (MONAI DiceHelper)
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(cnt["tp"] + cnt["fn"] > 0,
                        2 * cnt["tp"] / (2 * cnt["tp"] + cnt["fp"] + cnt["fn"]), np.nan)
    m = harness.mismatch(got.get("dice", {}).get("reduced"), monai_reduce(dice, "mean"), 1e-9, 1e-12,
                         "metrics.dice.reduced")
    T.check(m is None, f"{tag}: dice ignore_empty reduced (mean) is MONAI's", f"{cmd}: {m}")
    T.check("reduced" not in got.get("threat_score", {"reduced": 0}),
            f"{tag}: no reduction asked, no `reduced`", f"{cmd}: {got.get('threat_score')}")

    # per_image false: the CLI still reduces over the combined per-image values
    a = args + ["--set", "per_image=false"]
    rc, doc2, out, err = run_json(a)
    tag2 = "aggregation confusion family --set per_image=false"
    if T.check(rc == 0 and doc2 is not None, f"{tag2}: exit 0 with JSON", f"{cmdline(a)}: rc={rc}"):
        want2 = direct(url, dict(spec, per_image=False), pred, tgt)
        compare_entries(tag2, doc2, want2, cmdline(a + ["--json"]))


# ---- 3. directories -------------------------------------------------------------------------


def test_dirs(url):
    rng = np.random.default_rng(7)
    ids = ["img10", "img9", "a", "B", "img_2", "c1"]
    order = sorted(ids, key=lambda s: s.encode())  # B, a, c1, img10, img9, img_2
    f = blobs(rng, (len(ids), 14, 12))
    preds = {i: (2.5 * (f[k] - 0.2) + rng.normal(scale=0.8, size=f[k].shape)).astype(np.float32)
             for k, i in enumerate(ids)}
    tgts = {i: (f[k] > 0.2).astype(np.uint8) for k, i in enumerate(ids)}
    base = tempfile.mkdtemp(prefix="dirs-", dir=WORK)
    pd, td = os.path.join(base, "pred"), os.path.join(base, "target")
    os.mkdir(pd)
    os.mkdir(td)
    creation = ["img_2", "c1", "img9", "B", "img10", "a"]  # not the id order
    gz_pred = {"img9", "B", "c1"}
    gz_tgt = {"img9", "a", "img_2"}
    for i in creation:
        save(os.path.join(pd, i + (".npy.gz" if i in gz_pred else ".npy")), preds[i])
    for i in reversed(creation):
        save(os.path.join(td, i + (".npy.gz" if i in gz_tgt else ".npy")), tgts[i])
    flags = [("--loss", "cross_entropy", {"name": "cross_entropy"}),
             ("--loss", "dice", {"name": "dice"}),
             ("--metric", "dice", {"name": "dice"}),
             ("--metric", "iou", {"name": "iou"}),
             ("--metric", "confusion", {"name": "confusion"}),
             ("--metric", "hausdorff", {"name": "hausdorff"})]
    spec, fargs = build_spec(None, flags)
    P = np.stack([preds[i] for i in order])
    Tg = np.stack([tgts[i] for i in order])
    want = direct(url, spec, P, Tg)
    args = ["score", "--url", url, "--pred", pd, "--target", td, "--batch-size", "4", *fargs]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "dirs (6 files by name, 2 batches)"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        check_top(tag, doc, want, 6, 2, cmd, ids=order)
        compare_entries(tag, doc, want, cmd)

    # an id in one directory only
    for side, other in ((pd, "only_in_pred"), (td, "only_in_target")):
        extra = save(os.path.join(side, other + ".npy"), preds["a"] if side == pd else tgts["a"])
        rc, out, err, _ = run(args)
        T.check(rc == 2 and other in err, f"dirs: id {other} in one directory only: exit 2 naming it",
                f"{cmdline(args)}: rc={rc} stderr={short(err)}")
        os.unlink(extra)

    # two shapes: s1_* are 12x12, s2_* are 9x15 (two shape groups)
    base = tempfile.mkdtemp(prefix="dirs2-", dir=WORK)
    pd2, td2 = os.path.join(base, "p"), os.path.join(base, "t")
    os.mkdir(pd2)
    os.mkdir(td2)
    groups = {}
    for prefix, shape, k in (("s1_", (12, 12), 3), ("s2_", (9, 15), 2)):
        f = blobs(rng, (k, *shape))
        p = (2.5 * (f - 0.2) + rng.normal(scale=0.8, size=f.shape)).astype(np.float32)
        t = (f > 0.2).astype(np.uint8)
        names = [prefix + c for c in "abc"[:k]]
        for j, nm in enumerate(names):
            save(os.path.join(pd2, nm + ".npy"), p[j])
            save(os.path.join(td2, nm + ".npy.gz"), t[j])
        groups[prefix] = (names, p, t, direct(url, spec, p, t))
    args = ["score", "--url", url, "--pred", pd2, "--target", td2, *fargs]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "dirs with two shapes"
    if not T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        return
    a, b = groups["s1_"], groups["s2_"]
    T.check(doc.get("image_ids") == a[0] + b[0], f"{tag}: image_ids in name order", f"{cmd}: {doc.get('image_ids')}")
    T.check(doc.get("images") == 5, f"{tag}: images = 5", f"{cmd}: {doc.get('images')}")
    T.check(isinstance(doc.get("batches"), int) and doc.get("batches") >= 2, f"{tag}: 2 or more batches",
            f"{cmd}: {doc.get('batches')}")
    shapes = doc.get("shapes")
    T.check(isinstance(shapes, list) and sorted(map(tuple, shapes)) == [(9, 15), (12, 12)],
            f"{tag}: shapes lists [12, 12] and [9, 15]", f"{cmd}: shapes={shapes!r} shape={doc.get('shape')!r}")
    losses, metrics = doc.get("losses", {}), doc.get("metrics", {})
    wa, wb = a[3], b[3]
    for key in ("cross_entropy", "dice"):
        got = losses.get(key, {})
        pi = wa["losses"][key]["per_image"] + wb["losses"][key]["per_image"]
        m = harness.mismatch(got.get("per_image"), pi, LOSS_RTOL, LOSS_ATOL, f"losses.{key}.per_image")
        T.check(m is None, f"{tag}: losses.{key}.per_image = the two direct requests'", f"{cmd}: {m}")
    # hand calculations: cross entropy is the mean over all pixels (no ignore_index here),
    # dice the mean of the per-image values
    na, nb = 3 * 144, 2 * 135
    ce = (wa["losses"]["cross_entropy"]["value"] * na + wb["losses"]["cross_entropy"]["value"] * nb) / (na + nb)
    m = harness.mismatch(losses.get("cross_entropy", {}).get("value"), ce, LOSS_RTOL, LOSS_ATOL, "ce.value")
    T.check(m is None, f"{tag}: losses.cross_entropy.value = pixel-weighted mean of the two", f"{cmd}: {m}")
    dl = float(np.mean(wa["losses"]["dice"]["per_image"] + wb["losses"]["dice"]["per_image"]))
    m = harness.mismatch(losses.get("dice", {}).get("value"), dl, LOSS_RTOL, LOSS_ATOL, "dice.value")
    T.check(m is None, f"{tag}: losses.dice.value = mean of the 5 per-image values", f"{cmd}: {m}")
    for key in ("dice", "iou", "confusion", "hausdorff"):
        got = metrics.get(key, {})
        pi = wa["metrics"][key]["per_image"] + wb["metrics"][key]["per_image"]
        m = harness.mismatch(got.get("per_image"), pi, METRIC_RTOL, METRIC_ATOL, f"metrics.{key}.per_image")
        T.check(m is None, f"{tag}: metrics.{key}.per_image = the two direct requests'", f"{cmd}: {m}")
        if key != "confusion":
            mean = float(np.mean(pi))
            m = harness.mismatch(got.get("mean"), mean, METRIC_RTOL, METRIC_ATOL, f"metrics.{key}.mean")
            T.check(m is None, f"{tag}: metrics.{key}.mean = mean of the 5 per-image values", f"{cmd}: {m}")
    c = {k: wa["metrics"]["confusion"]["global"][k] + wb["metrics"]["confusion"]["global"][k]
         for k in ("tp", "fp", "fn", "tn")}
    m = harness.mismatch(metrics.get("confusion", {}).get("global"), c, 0, 0, "confusion.global")
    T.check(m is None, f"{tag}: confusion.global = summed counts", f"{cmd}: {m}")
    g = {"dice": 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]),
         "iou": c["tp"] / (c["tp"] + c["fp"] + c["fn"])}
    for key, v in g.items():
        m = harness.mismatch(metrics.get(key, {}).get("global"), v, METRIC_RTOL, METRIC_ATOL, f"{key}.global")
        T.check(m is None, f"{tag}: metrics.{key}.global from the summed counts", f"{cmd}: {m}")


def test_dirs_multiclass(url):
    """[C, H, W] prediction files; one file in float64 among float32 ones starts its own batch."""
    rng = np.random.default_rng(11)
    pred, tgt = dataset_multiclass(rng, n=6, c=3, h=12, w=13)
    ids = [f"m{i}" for i in range(6)]
    base = tempfile.mkdtemp(prefix="dirs-mc-", dir=WORK)
    pd, td = os.path.join(base, "pred"), os.path.join(base, "target")
    os.mkdir(pd)
    os.mkdir(td)
    for i, nm in reversed(list(enumerate(ids))):
        save(os.path.join(pd, nm + ".npy"), pred[i].astype(np.float64) if i == 3 else pred[i])
        save(os.path.join(td, nm + ".npy.gz"), tgt[i])
    flags = [("--set", "include_background=false", ("include_background", False)),
             ("--set", "ignore_index=255", ("ignore_index", 255)),
             ("--loss", "cross_entropy:class_weights=[1,2,0.5]", {"name": "cross_entropy", "class_weights": [1, 2, 0.5]}),
             ("--loss", "dice", {"name": "dice"}),
             ("--metric", "dice", {"name": "dice"}),
             ("--metric", "confusion", {"name": "confusion"}),
             ("--metric", "hausdorff", {"name": "hausdorff"})]
    spec, fargs = build_spec(None, flags)
    want = direct(url, spec, pred.astype(np.float64), tgt)
    args = ["score", "--url", url, "--pred", pd, "--target", td, *fargs]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "dirs multiclass [C,H,W] files, a float64 one in the middle (3 batches)"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        check_top(tag, doc, want, 6, 3, cmd, ids=ids)
        # the float32 batches run the fused multiclass kernel: losses within its bound of the
        # float64 request (lib/simd.c: 2e-6 relative), counts exact
        compare_entries(tag, doc, want, cmd, loss_tol=(2e-6, LOSS_ATOL))


def peak_rss(args):
    """Runs the CLI; returns (exit status, stdout, stderr, its peak RSS in MiB or None)."""
    code = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:], capture_output=True)\n"
            "sys.stderr.buffer.write(r.stderr)\n"
            "sys.stdout.buffer.write(r.stdout)\n"
            "print('\\nRSS_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(r.returncode)\n")
    p = subprocess.run([sys.executable, "-c", code, SEGLOSS, *args], capture_output=True, text=True,
                       timeout=300)
    out, _, rss = p.stdout.rpartition("RSS_KIB")
    return p.returncode, out, p.stderr, int(rss.strip()) / 1024 if rss.strip().isdigit() else None


def test_memory(url):
    """128 images of 256x256 (32 MiB float32 + 8 MiB uint8) in batches of 8: the CLI streams, so
    its peak memory is that of a run over the first 8 images (one batch) plus little, not plus
    the 35 MiB the other 120 images hold (a property of streaming, not a speed or size target:
    it holds under ASan too); dice/iou global checked against counts done here."""
    rng = np.random.default_rng(5)
    n = 128
    pred = rng.normal(size=(n, 256, 256)).astype(np.float32)
    tgt = (rng.random((n, 256, 256)) < 0.4).astype(np.uint8)
    d = tempfile.mkdtemp(prefix="mem-", dir=WORK)
    pp = save(os.path.join(d, "p.npy"), pred)
    tp = save(os.path.join(d, "t.npy"), tgt)
    pp8 = save(os.path.join(d, "p8.npy"), pred[:8])
    tp8 = save(os.path.join(d, "t8.npy"), tgt[:8])
    hard = pred >= 0
    tp_ = int(np.sum(hard & (tgt == 1)))
    fp_ = int(np.sum(hard & (tgt == 0)))
    fn_ = int(np.sum(~hard & (tgt == 1)))
    del pred, tgt, hard
    common = ["--batch-size", "8", "--loss", "cross_entropy", "--no-per-image", "--json"]
    args = ["score", "--url", url, "--pred", pp, "--target", tp] + common
    rc, out, err, rss_mib = peak_rss(args)
    rc8, _, err8, rss8_mib = peak_rss(["score", "--url", url, "--pred", pp8, "--target", tp8]
                                      + common)
    cmd = cmdline(args)
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    tag = "memory 128 images of 256x256 (40 MiB), --batch-size 8"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON",
               f"{cmd}: rc={rc} stderr={short(err)}"):
        T.check(doc.get("batches") == 16 and doc.get("images") == n, f"{tag}: 16 batches, {n} images",
                f"{cmd}: batches={doc.get('batches')} images={doc.get('images')}")
        g = doc.get("metrics", {})
        m = harness.mismatch(g.get("dice", {}).get("global"), 2 * tp_ / (2 * tp_ + fp_ + fn_), 1e-12, 0, "dice.global")
        m = m or harness.mismatch(g.get("iou", {}).get("global"), tp_ / (tp_ + fp_ + fn_), 1e-12, 0, "iou.global")
        T.check(m is None, f"{tag}: dice/iou global from the counts (computed here)", f"{cmd}: {m}")
    ok = rc8 == 0 and rss_mib is not None and rss8_mib is not None and rss_mib - rss8_mib < 16
    T.check(ok, f"{tag}: peak RSS {rss_mib} MiB, one batch of 8 alone {rss8_mib} MiB: the other "
            "120 images (35 MiB) add under 16 MiB (ASan keeps freed memory a while)", f"{cmd}: rc8={rc8} {short(err8)}")


# ---- 4. CSV of Kaggle RLE -------------------------------------------------------------------


def rle_decode(rows, h, w):
    """Kaggle EncodedPixels rows (1-indexed start/length, column-major) unioned into an HxW mask."""
    flat = np.zeros(h * w, dtype=np.uint8)
    for r in rows:
        r = r.strip()
        if r in ("", "-"):
            continue
        nums = [int(x) for x in r.split()]
        for s, n in zip(nums[0::2], nums[1::2]):
            flat[s - 1:s - 1 + n] = 1
    return flat.reshape(w, h).T  # column-major: top to bottom, then left to right


def test_csv(url):
    h, w = 12, 10
    target_rows = [("img_c", "5 10 30 4"), ("img_a", "1 3 50 6"), ("img_d", ""),
                   ("img_a", "100 7"), ("img_b", "20 15 60 20")]
    pred_rows = [("img_b", "18 14 61 25"), ("img_a", "1 5"), ("img_c", "6 9 31 4"),
                 ("img_a", "3 10 98 9"), ("img_d", "-")]
    order = ["img_c", "img_a", "img_d", "img_b"]
    d = tempfile.mkdtemp(prefix="csv-", dir=WORK)

    def write(path, rows):
        with open(path, "w") as f:
            f.write("ImageId,EncodedPixels\n")
            for i, e in rows:
                f.write(f"{i},{e}\n")
        return path

    tp = write(os.path.join(d, "target.csv"), target_rows)
    pp = write(os.path.join(d, "pred.csv"), pred_rows)
    P = np.stack([rle_decode([e for i, e in pred_rows if i == k], h, w) for k in order])
    Tg = np.stack([rle_decode([e for i, e in target_rows if i == k], h, w) for k in order])
    # hand check of the decoder: "5 10" starts at row 4 of column 0 and wraps into column 1
    assert Tg[0, 4:12, 0].all() and Tg[0, 0:2, 1].all() and Tg[0].sum() == 14
    assert Tg[2].sum() == 0 and Tg[1].sum() == 16
    flags = [("--metric", "dice", {"name": "dice"}),
             ("--metric", "iou", {"name": "iou"}),
             ("--metric", "precision", {"name": "precision"}),
             ("--metric", "confusion", {"name": "confusion"}),
             ("--metric", "hausdorff", {"name": "hausdorff"}),
             ("--metric", "assd", {"name": "assd"})]
    spec, fargs = build_spec(None, flags)
    spec["prediction_type"] = "labels"
    want = direct(url, spec, P, Tg)
    args = ["score", "--url", url, "--pred", pp, "--target", tp, "--shape", f"{h},{w}",
            "--batch-size", "3", *fargs]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "csv RLE (4 ids, 2 batches)"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        check_top(tag, doc, want, 4, 2, cmd, ids=order)
        compare_entries(tag, doc, want, cmd)

    # an id only in the target file
    tp2 = write(os.path.join(d, "target2.csv"), target_rows + [("img_zz", "3 4")])
    a = ["score", "--url", url, "--pred", pp, "--target", tp2, "--shape", f"{h},{w}"]
    rc, out, err, _ = run(a)
    T.check(rc == 2 and "img_zz" in err, "csv: id img_zz in the target only: exit 2 naming it",
            f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    pp2 = write(os.path.join(d, "pred2.csv"), [r for r in pred_rows if r[0] != "img_b"])
    a = ["score", "--url", url, "--pred", pp2, "--target", tp, "--shape", f"{h},{w}"]
    rc, out, err, _ = run(a)
    T.check(rc == 2 and "img_b" in err, "csv: id img_b missing from the prediction: exit 2 naming it",
            f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    a = ["score", "--url", url, "--pred", pp, "--target", tp]
    rc, out, err, _ = run(a)
    T.check(rc == 2, "csv without --shape: exit 2", f"{cmdline(a)}: rc={rc} stderr={short(err)}")


# ---- 5. gates -------------------------------------------------------------------------------


GATE_FAILED = re.compile(r"gate failed: (\S+) \((\S+) = ([-+0-9.eEinfa]+)\)")


def test_gates(url, agg):
    pp, tp, args, spec, want, pred, tgt = agg["binary+ignore"]
    wm, wl = want["metrics"], want["losses"]
    dice = wm["dice"]["mean"]
    hd = wm["hausdorff"]["mean"]
    passing = [
        (f"dice.mean>={dice - 0.01:.6f}", dice),
        (f"iou>={wm['iou']['mean'] - 0.01:.6f}", wm["iou"]["mean"]),
        (f"metrics.iou.global>{wm['iou']['global'] - 0.01:.6f}", wm["iou"]["global"]),
        (f"hausdorff.mean<={math.ceil(hd) + 1}", hd),
        (f"losses.cross_entropy.value<={wl['cross_entropy']['value'] + 0.01:.6f}", wl["cross_entropy"]["value"]),
        (f"combo<={wl['combo']['value'] + 0.01:.6f}", wl["combo"]["value"]),
        (f"losses.tv07.min>={min(wl['tv07']['per_image']) - 1e-3:.6f}", min(wl["tv07"]["per_image"])),
        (f"losses.dice.max<={max(wl['dice']['per_image']) + 1e-3:.6f}", max(wl["dice"]["per_image"])),
        (f"metrics.dice.min>={min(wm['dice']['per_image']) - 1e-3:.6f}", min(wm["dice"]["per_image"])),
        ("dice.undefined==0", 0),
        (f"mcc.global!={wm['mcc']['global'] + 0.5:.6f}", wm["mcc"]["global"]),
        (f"f2.mean<{wm['f2']['mean'] + 0.01:.6f}", wm["f2"]["mean"]),
    ]
    base = [a for a in args]
    gargs = []
    for g, _ in passing:
        gargs += ["--gate", g]
    a = base + gargs
    rc, doc, out, err = run_json(a)
    cmd = cmdline(a + ["--json"])
    if T.check(rc == 0 and doc is not None, f"gates: {len(passing)} passing gates: exit 0",
               f"{cmd}: rc={rc} stderr={short(err)}"):
        gates = doc.get("gates")
        ok = isinstance(gates, list) and len(gates) == len(passing)
        why = f"gates={short(json.dumps(gates), 1500)}"
        if ok:
            for (g, v), got in zip(passing, gates):
                if not (got.get("gate") == g and got.get("passed") is True
                        and isinstance(got.get("value"), (int, float))
                        and abs(got["value"] - v) <= 1e-9 + 1e-9 * abs(v)):
                    ok = False
                    why = f"{g}: want value {v}, got {got}"
                    break
        T.check(ok, "gates: --json gates list each gate, its value and passed", f"{cmd}: {why}")
        T.check(doc.get("passed") is True, "gates: --json passed true", f"{cmd}: {doc.get('passed')}")

    # one passing, two failing: exit 1, each failed gate named on stderr with its number
    fail1 = f"dice.mean>={dice + 0.05:.6f}"
    fail2 = f"hausdorff.mean<={hd - 0.25:.6f}"
    a = base + ["--gate", passing[0][0], "--gate", fail1, "--gate", fail2]
    rc, out, err, _ = run(a)
    cmd = cmdline(a)
    T.check(rc == 1, "gates: a failing gate: exit 1", f"{cmd}: rc={rc} stderr={short(err)}")
    found = {m.group(1): (m.group(2), m.group(3)) for m in GATE_FAILED.finditer(err)}
    for g, key, v in ((fail1, "dice.mean", dice), (fail2, "hausdorff.mean", hd)):
        got = found.get(g)
        ok = got is not None and got[0] == key
        if ok:
            try:
                ok = abs(float(got[1]) - v) <= 1e-6 + 1e-6 * abs(v)
            except ValueError:
                ok = False
        T.check(ok, f"gates: stderr says 'gate failed: {g} ({key} = {v:.6f})'", f"{cmd}: stderr={short(err)}")
    T.check(passing[0][0] not in found, "gates: the passing gate is not reported as failed",
            f"{cmd}: stderr={short(err)}")

    # multiclass: per_class[i] and global[i]
    pp, tp, args, spec, want, pred, tgt = agg["multiclass"]
    wm = want["metrics"]
    pc1 = wm["dice"]["per_class"][1]
    g2 = wm["iou"]["global"][2]
    a = list(args) + ["--gate", f"dice.per_class[1]>={pc1 - 0.001:.6f}", "--gate", f"iou.global[2]<={g2 + 0.001:.6f}"]
    rc, out, err, _ = run(a)
    T.check(rc == 0, "gates: dice.per_class[1] and iou.global[2] hold: exit 0", f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    gate = f"dice.per_class[1]>={pc1 + 0.01:.6f}"
    a = list(args) + ["--gate", gate]
    rc, out, err, _ = run(a)
    m = GATE_FAILED.search(err)
    ok = rc == 1 and m is not None and m.group(1) == gate
    if ok:
        try:
            ok = abs(float(m.group(3)) - pc1) <= 1e-6
        except ValueError:
            ok = False
    T.check(ok, f"gates: {gate} fails: exit 1 naming it with {pc1:.6f}", f"{cmdline(a)}: rc={rc} stderr={short(err)}")

    # a null value fails its gate: one image, both masks empty, empty "nan"
    d = tempfile.mkdtemp(prefix="gate-null-", dir=WORK)
    pn = save(os.path.join(d, "p.npy"), np.full((1, 6, 6), -3.0, dtype=np.float32))
    tn = save(os.path.join(d, "t.npy"), np.zeros((1, 6, 6), dtype=np.uint8))
    a = ["score", "--url", url, "--pred", pn, "--target", tn, "--set", "empty=nan", "--metric", "dice",
         "--gate", "dice.mean>=0"]
    rc, doc, out, err = run_json(a)
    cmd = cmdline(a + ["--json"])
    ok = rc == 1 and doc is not None and doc.get("metrics", {}).get("dice", {}).get("mean", 0) is None
    ok = ok and doc.get("gates") == [{"gate": "dice.mean>=0", "value": None, "passed": False}] and doc.get("passed") is False
    T.check(ok, "gates: a null (undefined) value fails its gate: exit 1, value null",
            f"{cmd}: rc={rc} stdout={short(out)} stderr={short(err)}")

    # malformed gates and unknown keys: exit 2
    pp, tp, args, spec, want, pred, tgt = agg["binary+ignore"]
    for g in ("dice.mean>>0.5", "dice.mean>=", "dice.mean 0.5", ">=0.5", "dice.mean>=abc", "dice.mean=0.5",
              "nosuch.mean>=0.5", "losses.nosuch<=1", "dice.median>=0.5", "metrics.cross_entropy>=0"):
        a = list(args) + ["--gate", g]
        rc, out, err, _ = run(a)
        T.check(rc == 2 and err.strip() != "", f"gates: --gate '{g}': exit 2 with a message",
                f"{cmdline(a)}: rc={rc} stderr={short(err)}")


# ---- 6. output ------------------------------------------------------------------------------


def run_with_pty_stderr(args, timeout=60):
    """Runs segloss with stderr on a pseudo-terminal (80x24, no output post-processing) and
    stdout on a pipe; returns (rc, stdout, bytes written to the terminal)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.OPOST  # keep the bytes as written (no \n -> \r\n)
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    p = subprocess.Popen([SEGLOSS, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    outbuf = []
    t = threading.Thread(target=lambda: outbuf.append(p.stdout.read()))
    t.start()
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif p.poll() is not None:
            break
    try:
        p.wait(max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    t.join()
    os.close(master)
    return p.returncode, (outbuf[0] if outbuf else b"").decode("utf-8", "replace"), b"".join(chunks)


def test_output(url, agg):
    pp, tp, args, spec, want, pred, tgt = agg["binary+ignore"]
    # the table (stdout is not a terminal, so no progress bar either)
    rc, out, err, _ = run(args)
    cmd = cmdline(args)
    T.check(rc == 0, "output: table run exit 0", f"{cmd}: rc={rc} stderr={short(err)}")
    names = ["cross_entropy", "focal", "tv07", "lovasz_hinge", "combo", "dice", "iou", "precision",
             "recall", "mcc", "f2", "hausdorff", "assd", "nsd"]
    missing = [n for n in names if n not in out]
    T.check(not missing, "output: the table names every loss and metric", f"{cmd}: missing {missing}; stdout={short(out)}")
    ok = False
    dice = want["metrics"]["dice"]["mean"]
    for line in out.splitlines():
        if re.search(r"\bdice\b", line):
            for x in re.findall(r"-?\d+\.\d+(?:[eE][-+]?\d+)?", line):
                if abs(float(x) - dice) <= 5e-4:
                    ok = True
    T.check(ok, f"output: the table shows dice mean {dice:.4f}", f"{cmd}: stdout={short(out)}")
    T.check("\r" not in err and "\x1b[" not in err, "output: no progress bar when stderr is not a terminal",
            f"{cmd}: stderr={err!r}")
    try:
        json.loads(out)
        T.check(False, "output: the default output is a table, not JSON", cmd)
    except ValueError:
        T.check(True, "output: the default output is a table, not JSON")

    # --json document layout
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    if T.check(rc == 0 and doc is not None, "output: --json is one valid JSON object", f"{cmd}: rc={rc} stdout={short(out)}"):
        keys = ["url", "images", "batches", "mode", "classes", "shape", "image_ids", "losses", "metrics",
                "conventions", "gates", "passed"]
        missing = [k for k in keys if k not in doc]
        T.check(not missing, "output: --json has " + ", ".join(keys), f"{cmd}: missing {missing}")
        T.check(doc.get("url") in (url, url + "/", url + "/v1/score"), "output: --json url is the server's",
                f"{cmd}: {doc.get('url')!r}")
        T.check(doc.get("gates") == [] and doc.get("passed") is True, "output: no gates: gates [] and passed true",
                f"{cmd}: gates={doc.get('gates')!r} passed={doc.get('passed')!r}")

    # --no-per-image
    a = args + ["--no-per-image"]
    rc, doc, out, err = run_json(a)
    cmd = cmdline(a + ["--json"])
    if T.check(rc == 0 and doc is not None, "output: --no-per-image exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        left = [f"losses.{k}" for k, v in doc.get("losses", {}).items() if "per_image" in v]
        left += [f"metrics.{k}" for k, v in doc.get("metrics", {}).items() if "per_image" in v]
        T.check(not left and "image_ids" not in doc, "output: --no-per-image drops per_image and image_ids",
                f"{cmd}: still {left} image_ids={'image_ids' in doc}")
        m = harness.mismatch(doc.get("metrics", {}).get("dice", {}).get("global"), want["metrics"]["dice"]["global"],
                             METRIC_RTOL, METRIC_ATOL, "dice.global")
        m = m or harness.mismatch(doc.get("losses", {}).get("combo", {}).get("value"), want["losses"]["combo"]["value"],
                                  LOSS_RTOL, LOSS_ATOL, "combo.value")
        m = m or harness.mismatch(doc.get("metrics", {}).get("hausdorff", {}).get("mean"),
                                  want["metrics"]["hausdorff"]["mean"], METRIC_RTOL, METRIC_ATOL, "hausdorff.mean")
        T.check(m is None, "output: --no-per-image values as the single request", f"{cmd}: {m}")

    # progress bar on a terminal (7 batches)
    a = [x for x in args]
    i = a.index("--batch-size")
    a[i + 1] = "1"
    rc, out, term = run_with_pty_stderr(a + ["--json"])
    cmd = cmdline(a + ["--json"]) + "  (stderr on a pty)"
    T.check(rc == 0, "output: run with stderr on a terminal: exit 0", f"{cmd}: rc={rc} tty={term[:300]!r}")
    T.check(len(term) > 0 and (b"\r" in term or b"\x1b[" in term),
            "output: a progress bar (redrawn with \\r or escapes) on a terminal stderr", f"{cmd}: tty={term[:300]!r}")
    try:
        doc = json.loads(out)
        m = harness.mismatch(doc.get("losses"), want["losses"], LOSS_RTOL, LOSS_ATOL, "losses")
        T.check(m is None, "output: with a terminal stderr stdout keeps the clean JSON answer", f"{cmd}: {m}")
    except ValueError:
        T.check(False, "output: with a terminal stderr stdout keeps the clean JSON answer", f"{cmd}: stdout={short(out)}")
    rc, out, term = run_with_pty_stderr(a + ["--json", "--no-progress"])
    cmd = cmdline(a + ["--json", "--no-progress"]) + "  (stderr on a pty)"
    T.check(rc == 0 and b"\r" not in term and b"\x1b[" not in term, "output: --no-progress: no bar on a terminal",
            f"{cmd}: rc={rc} tty={term[:300]!r}")

    # --junit: one passing and one failing gate
    d = tempfile.mkdtemp(prefix="junit-", dir=WORK)
    jf = os.path.join(d, "report.xml")
    dice = want["metrics"]["dice"]["mean"]
    g_ok, g_bad = f"dice.mean>={dice - 0.01:.6f}", f"iou.mean>={want['metrics']['iou']['mean'] + 0.1:.6f}"
    a = args + ["--junit", jf, "--gate", g_ok, "--gate", g_bad]
    rc, out, err, _ = run(a)
    cmd = cmdline(a)
    T.check(rc == 1, "output: --junit run with a failing gate: exit 1", f"{cmd}: rc={rc} stderr={short(err)}")
    check_junit(jf, cmd, cases=3, failures=1, errors=0, failed_name=g_bad)

    # --junit on a server error: the "score" testcase has <error>
    jf2 = os.path.join(d, "error.xml")
    a = ["score", "--url", url, "--pred", pp, "--target", tp, "--loss", "nosuch", "--junit", jf2]
    rc, out, err, _ = run(a)
    cmd = cmdline(a)
    T.check(rc == 2, "output: --junit run with a server error: exit 2", f"{cmd}: rc={rc} stderr={short(err)}")
    check_junit(jf2, cmd, cases=None, failures=0, errors=1, failed_name=None)


def check_junit(path, cmd, cases, failures, errors, failed_name):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        T.check(False, "output: --junit writes XML that parses", f"{cmd}: {e}")
        return
    T.check(True, "output: --junit writes XML that parses")
    suites = [root] if root.tag == "testsuite" else root.findall(".//testsuite")
    suite = next((s for s in suites if s.get("name") == "segloss"), None)
    if not T.check(suite is not None, "output: --junit has a testsuite named segloss",
                   f"{cmd}: {ET.tostring(root, encoding='unicode')[:500]}"):
        return
    tcs = suite.findall(".//testcase")
    names = [tc.get("name") for tc in tcs]
    xml = ET.tostring(root, encoding="unicode")[:800]
    if cases is not None:
        T.check(len(tcs) == cases and "score" in names, f"output: --junit has {cases} testcases (score + gates)",
                f"{cmd}: {names}")
    nf = sum(len(tc.findall("failure")) for tc in tcs)
    ne = sum(len(tc.findall("error")) for tc in tcs)
    T.check(nf == failures, f"output: --junit has {failures} <failure>", f"{cmd}: {nf}: {xml}")
    if failed_name:
        bad = [tc.get("name") for tc in tcs if tc.findall("failure")]
        T.check(bad and failed_name in bad[0], "output: --junit <failure> is in the failed gate's testcase",
                f"{cmd}: {bad}")
    if errors:
        score = [tc for tc in tcs if tc.get("name") == "score"]
        T.check(ne == errors and score and score[0].findall("error"), "output: --junit <error> in testcase score",
                f"{cmd}: {xml}")
    if suite.get("failures") is not None:
        T.check(suite.get("failures") == str(failures), "output: --junit testsuite failures attribute",
                f"{cmd}: failures={suite.get('failures')}")


# ---- 7. errors ------------------------------------------------------------------------------


def test_errors(url, seglossd, golden_files_by_id, golden_dir):
    rng = np.random.default_rng(3)
    d = tempfile.mkdtemp(prefix="err-", dir=WORK)
    pred, tgt = dataset_binary(rng, n=4, h=10, w=12)
    tgt[tgt == 255] = 0
    pp = save(os.path.join(d, "p.npy"), pred)
    tp = save(os.path.join(d, "t.npy"), tgt)

    # a 422: the problem+json detail of the same spec sent directly
    status, ans = harness.post_json(url + "/v1/score", {"prediction": npy_inline(pred), "target": npy_inline(tgt),
                                                         "losses": [{"name": "nosuch"}], "metrics": ["dice", "iou"]})
    detail = ans.get("detail", "")
    a = ["score", "--url", url, "--pred", pp, "--target", tp, "--loss", "nosuch"]
    rc, out, err, _ = run(a)
    T.check(status == 422 and detail != "", "errors: direct request with loss nosuch is a 422", f"{status} {ans}")
    T.check(rc == 2 and detail in err, "errors: --loss nosuch: exit 2 with the server's detail on stderr",
            f"{cmdline(a)}: rc={rc} want detail {detail!r}; stderr={short(err)}")
    a = ["score", "--url", url, "--pred", pp, "--target", tp, "--metric", "hausdorff:percentile=150"]
    rc, out, err, _ = run(a)
    T.check(rc == 2 and "percentile" in err, "errors: --metric hausdorff:percentile=150: exit 2 naming percentile",
            f"{cmdline(a)}: rc={rc} stderr={short(err)}")

    # nothing listening
    port = harness.free_port()
    a = ["score", "--url", f"http://127.0.0.1:{port}", "--pred", pp, "--target", tp, "--retries", "1"]
    rc, out, err, secs = run(a, timeout=30)
    T.check(rc == 2, "errors: nothing listening, --retries 1: exit 2", f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    T.check(0.2 <= secs < 5, f"errors: nothing listening: one retry after ~0.25 s backoff (took {secs:.2f} s)",
            f"{cmdline(a)}: {secs:.2f} s")
    T.check(re.search(r"retry 1/1", err) is not None, "errors: the retry is noted on stderr (retry 1/1)",
            f"{cmdline(a)}: stderr={short(err)}")

    a = ["score", "--url", f"http://127.0.0.1:{port}", "--pred", pp, "--target", tp, "--retries", "2"]
    rc, out, err, secs = run(a, timeout=30)
    T.check(rc == 2 and 0.7 <= secs < 5, f"errors: nothing listening, --retries 2: backoff 0.25 + 0.5 s (took {secs:.2f} s)",
            f"{cmdline(a)}: rc={rc} {secs:.2f} s stderr={short(err)}")

    # a server that accepts and never answers: --timeout
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    try:
        a = ["score", "--url", f"http://127.0.0.1:{s.getsockname()[1]}", "--pred", pp, "--target", tp,
             "--timeout", "1", "--retries", "0"]
        rc, out, err, secs = run(a, timeout=30)
        T.check(rc == 2 and secs < 5, f"errors: a silent server, --timeout 1 --retries 0: exit 2 in {secs:.2f} s",
                f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    finally:
        s.close()

    # health
    rc, out, err, _ = run(["health", "--url", url])
    T.check(rc == 0, "errors: health on a running server: exit 0", f"rc={rc} stderr={short(err)}")
    rc, out, err, _ = run(["health", "--url", url, "--ready"])
    T.check(rc == 0, "errors: health --ready on an idle server: exit 0", f"rc={rc} stderr={short(err)}")
    rc, out, err, _ = run(["health", "--url", f"http://127.0.0.1:{port}", "--timeout", "2"], timeout=30)
    T.check(rc == 1, "errors: health with nothing listening: exit 1", f"rc={rc} stderr={short(err)}")

    # usage
    for a, what in (
        (["score", "--url", url, "--target", tp], "no --pred"),
        (["score", "--url", url, "--pred", pp, "--target", tp, "--no-such-option"], "an unknown option"),
        (["score", "--url", url, "--pred", pp, "--target", d], "a file and a directory"),
        (["score", "--url", url, "--pred", os.path.join(d, "missing.npy"), "--target", tp], "a missing file"),
        (["score", "--url", url, "--pred", pp, "--target", tp, "--batch-size", "0"], "--batch-size 0"),
        (["score", "--url", url, "--pred", pp, "--target", tp, "--retries", "x"], "--retries x"),
        (["nosuchcommand"], "an unknown command"),
    ):
        rc, out, err, _ = run(a)
        T.check(rc == 2 and err.strip() != "", f"errors: usage: {what}: exit 2 with a message",
                f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    pn = save(os.path.join(d, "p5.npy"), np.zeros((5, 10, 12), dtype=np.float32))
    a = ["score", "--url", url, "--pred", pn, "--target", tp]
    rc, out, err, _ = run(a)
    T.check(rc == 2, "errors: 5 predictions for 4 targets: exit 2", f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    for a in (["--help"], ["--version"]):
        rc, out, err, _ = run(a)
        T.check(rc == 0 and out.strip() != "", f"errors: segloss {a[0]}: exit 0 with output", f"rc={rc}")
    # -h is --help, before a command and after one
    rc, help_text, _, _ = run(["--help"])
    for a in (["-h"], ["score", "-h"], ["health", "-h"], ["score", "--help"]):
        rc, out, err, _ = run(a)
        T.check(rc == 0 and out.startswith("Usage: segloss") and out == help_text,
                f"errors: segloss {' '.join(a)}: exit 0 with the help", f"rc={rc} stderr={short(err)}")

    # $SEGLOSS_URL when --url is not given
    env = dict(os.environ, SEGLOSS_URL=url)
    a = ["score", "--pred", pp, "--target", tp, "--json"]
    rc, out, err, _ = run(a, env=env)
    want = direct(url, {"metrics": ["dice", "iou"]}, pred, tgt)
    try:
        doc = json.loads(out)
        m = harness.mismatch(doc.get("metrics"), want["metrics"], METRIC_RTOL, METRIC_ATOL, "metrics")
    except ValueError:
        m = f"stdout not JSON: {short(out)}"
    T.check(rc == 0 and m is None, "errors: $SEGLOSS_URL is the default URL (default metrics dice, iou)",
            f"SEGLOSS_URL={url} {cmdline(a)}: rc={rc} {m} stderr={short(err)}")

    # 429 for real: seglossd with --max-per-ip 1 while the test holds an idle connection from
    # 127.0.0.1, so the CLI's connection (also from 127.0.0.1) is refused with 429 +
    # Retry-After until the test lets its connection go
    case = next(c for c in harness.golden_cases(golden_dir) if c["id"] == "dice_smooth1")
    gp, gt, gs = golden_files_by_id["dice_smooth1"]
    srv = harness.Server(seglossd, "--max-per-ip", "1")
    series = 'segloss_rejections_total{reason="per_ip_limit"}'
    probe = Probe(srv.url)
    try:
        for retries in (3, 0):
            # the gauge counts the probe's connection too: first only that one (the last run's
            # connections are gone), then that one and the held one
            idle = probe.wait("segloss_open_connections", lambda v: v == 1)
            hold = socket.create_connection(("127.0.0.1", int(srv.url.rsplit(":", 1)[1])))
            held = idle and probe.wait("segloss_open_connections", lambda v: v == 2)
            r0 = probe.metric(series) or 0.0
            # --compress gzip: with auto the CLI first asks /v1/catalog whether zstd is there,
            # and that request, not the scoring one, would meet the 429 (it falls back to gzip)
            a = ["score", "--url", srv.url, "--pred", gp, "--target", gt, "--spec", gs,
                 "--retries", str(retries), "--compress", "gzip", "--json"]
            t0 = time.monotonic()
            proc = subprocess.Popen([SEGLOSS] + a, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            refused = probe.wait(series, lambda v: v > r0)
            hold.close()
            out, err = proc.communicate(timeout=60)
            secs = time.monotonic() - t0
            rc = proc.returncode
            if retries == 0:
                T.check(held and refused and rc == 2 and "429" in err,
                        "errors: a 429 (--max-per-ip) with --retries 0: exit 2 mentioning 429",
                        f"{cmdline(a)}: held={held} refused={refused} rc={rc} stderr={short(err)}")
                continue
            T.check(held and refused and rc == 0,
                    f"errors: a 429 (--max-per-ip) is retried: exit 0 ({secs:.2f} s)",
                    f"{cmdline(a)}: held={held} refused={refused} rc={rc} stderr={short(err)}")
            T.check(re.search(r"429.*retry 1/3", err) is not None,
                    "errors: stderr notes '429 ..., retry 1/3 in ...'",
                    f"{cmdline(a)}: stderr={short(err)}")
            try:
                check_golden_answer("errors: 429 retried", case, json.loads(out), cmdline(a))
            except ValueError:
                T.check(False, "errors: 429 retried: JSON answer",
                        f"{cmdline(a)}: stdout={short(out)}")
    finally:
        probe.close()
        srv.stop()

    # 503: a one-worker, one-slot server kept busy by harness.Saturated
    srv = harness.Server(seglossd, "--threads", "1", "--queue", "1")
    series = 'segloss_rejections_total{reason="queue_full"}'
    try:
        r0 = srv.metric(series) or 0.0
        a = ["score", "--url", srv.url, "--pred", gp, "--target", gt, "--spec", gs, "--retries", "0"]
        with harness.Saturated(srv):
            rc, out, err, secs = run(a, timeout=30)
            hrc, _, herr, _ = run(["health", "--url", srv.url, "--ready", "--timeout", "5"], timeout=30)
        T.check(hrc == 1, "errors: health --ready on a server with a full queue: exit 1", f"rc={hrc} stderr={short(herr)}")
        T.check(rc == 2 and "503" in err, "errors: 503 with --retries 0: exit 2 mentioning 503",
                f"{cmdline(a)}: rc={rc} stderr={short(err)}")
        r1 = srv.metric(series) or 0.0
        T.check(r1 > r0, "errors: the server counted the queue_full rejection", f"{r0} -> {r1}")
        a = ["score", "--url", srv.url, "--pred", gp, "--target", gt, "--spec", gs, "--retries", "10", "--json"]
        # 10 retries (backoff 0.25 s doubling to 8 s): room for a slow machine, where the
        # saturating jobs (ASan, a busy CPU) can take several seconds
        with harness.Saturated(srv):
            rc, out, err, secs = run(a, timeout=120)
        r2 = srv.metric(series) or 0.0
        T.check(rc == 0, f"errors: 503 with --retries 10: exit 0 after retrying ({secs:.2f} s)",
                f"{cmdline(a)}: rc={rc} stderr={short(err)}")
        T.check(r2 > r1, "errors: --retries 10 run was refused at least once (queue_full rejections grew)",
                f"{r1} -> {r2}; stderr={short(err)}")
        T.check(re.search(r"503.*retry 1/10", err) is not None, "errors: stderr notes '503 ..., retry 1/10 in ...'",
                f"{cmdline(a)}: stderr={short(err)}")
        try:
            doc = json.loads(out)
            check_golden_answer("errors: 503 retried", case, doc, cmdline(a))
        except ValueError:
            T.check(False, "errors: 503 retried: JSON answer", f"{cmdline(a)}: stdout={short(out)}")
    finally:
        srv.stop()
        shutil.rmtree(srv.dir, ignore_errors=True)


# ---- 9. the HTML report (--html) --------------------------------------------------------------
# The page's structure is docs/html.md's (the report, the pages and the browser tests share it):
# table#aggregate rows tr[data-key] with td.value[data-value], section#worst with
# figure.thumb[data-index][data-id][data-rank] holding img.overlay PNG data URIs. Overlay colours
# (binary): TP #DDAA33, FP #BB5566, FN #004488, TN #FFFFFF; a thumbnail pixel (x, y) shows image
# pixel (x // u, y // u), u = floor(128 / max(H, W)) when that is >= 2.

TP_RGB, FP_RGB, FN_RGB, TN_RGB = (0xDD, 0xAA, 0x33), (0xBB, 0x55, 0x66), (0x00, 0x44, 0x88), (255, 255, 255)


class ReportPage(html.parser.HTMLParser):
    """The parts of a report page the tests read: aggregate rows {key: data-value text} in order,
    and the thumbnails as dicts of the figure's attributes plus "imgs" (each img's attributes)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows = {}
        self.row_order = []
        self.figures = []
        self.in_aggregate = False
        self.in_worst = False
        self.key = None
        self.h1 = None
        self._h1 = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "table" and a.get("id") == "aggregate":
            self.in_aggregate = True
        elif tag == "section" and a.get("id") == "worst":
            self.in_worst = True
        elif tag == "h1":
            self._h1 = True
            self.h1 = ""
        elif self.in_aggregate and tag == "tr" and "data-key" in a:
            self.key = a["data-key"]
        elif self.in_aggregate and tag == "td" and "value" in classes and self.key:
            self.rows[self.key] = a.get("data-value")
            self.row_order.append(self.key)
        elif self.in_worst and tag == "figure" and "thumb" in classes:
            self.figures.append(dict(a, imgs=[]))
        elif self.in_worst and tag == "img" and "overlay" in classes and self.figures:
            self.figures[-1]["imgs"].append(a)

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_aggregate = False
        elif tag == "section":
            self.in_worst = False
        elif tag == "tr":
            self.key = None
        elif tag == "h1":
            self._h1 = False

    def handle_data(self, data):
        if self._h1:
            self.h1 += data


def read_page(path):
    p = ReportPage()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    p.close()
    return p


def png_decode(data):
    """A PNG as (width, height, rows of (r, g, b) tuples), by the browser tests' stdlib decoder
    (tests/browser/png.py, written from the PNG specification)."""
    img = png.decode(data)
    return img.width, img.height, [[img.pixel(x, y)[:3] for x in range(img.width)]
                                   for y in range(img.height)]


def png_of(img_attrs):
    src = img_attrs.get("src", "")
    prefix = "data:image/png;base64,"
    if not src.startswith(prefix):
        raise ValueError(f"src is not a PNG data URI: {src[:60]}")
    return png_decode(base64.b64decode(src[len(prefix):]))


def resolve(doc, key):
    """The value of a report key (losses.K.value, metrics.K.mean, metrics.K.per_class[1]) in the
    CLI's --json document; KeyError when it has none."""
    sec, rest = key.split(".", 1)
    name, field = rest.rsplit(".", 1)
    m = re.fullmatch(r"(\w+)\[(\d+)\]", field)
    if m:
        return doc[sec][name][m.group(1)][int(m.group(2))]
    return doc[sec][name][field]


def dice_by_hand(p, t):
    """Binary Dice 2|P n T| / (|P| + |T|) of two 0/1 masks; 1 when both are empty (the API's
    default empty: "one")."""
    p, t = p.astype(bool), t.astype(bool)
    s = p.sum() + t.sum()
    return 1.0 if s == 0 else 2.0 * (p & t).sum() / s


def worst_by_hand(values, k):
    """Lower Dice is worse: indices by value ascending, ties by index; the first k."""
    return sorted(range(len(values)), key=lambda i: (values[i], i))[:k]


def check_aggregate(tag, page, doc, want_keys, cmd):
    """Every aggregate row equals the same run's --json value exactly; want_keys are there."""
    missing = [k for k in want_keys if k not in page.rows]
    T.check(not missing, f"{tag}: table#aggregate has rows {want_keys}", f"{cmd}: missing {missing}; rows {page.row_order}")
    bad = []
    for key, text in page.rows.items():
        try:
            v = resolve(doc, key)
        except (KeyError, IndexError, TypeError):
            bad.append(f"{key}: not in --json")
            continue
        if text == "null":
            if v is not None:
                bad.append(f"{key}: null, --json {v}")
        elif v is None or float(text) != float(v):
            bad.append(f"{key}: {text}, --json {v}")
    T.check(not bad and page.rows, f"{tag}: every aggregate data-value equals --json ({len(page.rows)} rows)",
            f"{cmd}: {bad[:5]}")


def binary_colour(pm, tm, x, y, u):
    """The contract's binary overlay colour of thumbnail pixel (x, y): image pixel (x // u, y // u)
    of the 0/1 prediction pm and target tm."""
    p, t = int(pm[y // u, x // u]), int(tm[y // u, x // u])
    return {(1, 1): TP_RGB, (1, 0): FP_RGB, (0, 1): FN_RGB, (0, 0): TN_RGB}[(p, t)]


# Paul Tol's muted scheme: the contract's colours of classes 1.. (class 0 white)
MUTED = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255", "#AA4499"]


def class_rgb(c):
    return TN_RGB if c == 0 else tuple(int(MUTED[(c - 1) % 9][k:k + 2], 16) for k in (1, 3, 5))


def multiclass_colour(pm, tm, x, y, u):
    """The contract's multiclass colour: pm the predicted class map (argmax), tm the target; a
    correct pixel its class colour, a wrong one the predicted class's with black where
    (x + y) % 4 == 0 (the hatch, in thumbnail pixels)."""
    p, t = int(pm[y // u, x // u]), int(tm[y // u, x // u])
    if p != t and (x + y) % 4 == 0:
        return (0, 0, 0)
    return class_rgb(p)


def check_thumbs(tag, page, ids, masks, want_order, cmd, colour_of=binary_colour):
    """The figures name want_order's images (indices into ids) worst first with ranks 1..k, and
    each thumbnail shows the overlay of masks[i] = (prediction, target) pixel by pixel
    (colour_of: the contract's rule for the mode)."""
    got = [(f.get("data-id"), f.get("data-index"), f.get("data-rank")) for f in page.figures]
    want = [(ids[i], str(i), str(r + 1)) for r, i in enumerate(want_order)]
    T.check(got == want, f"{tag}: figure.thumb (id, index, rank) worst first: {[w[0] for w in want]}",
            f"{cmd}: got {got}")
    bad = []
    for f in page.figures:
        try:
            i = int(f.get("data-index"))
            pm, tm = masks[i]
        except (TypeError, ValueError, IndexError):
            continue
        h, w = tm.shape
        u = 128 // max(h, w)
        u = u if u >= 2 else 1
        if len(f["imgs"]) != 1:
            bad.append(f"{f.get('data-id')}: {len(f['imgs'])} img.overlay")
            continue
        im = f["imgs"][0]
        if (im.get("width"), im.get("height"), im.get("data-scale")) != (str(w * u), str(h * u), str(u)):
            bad.append(f"{f.get('data-id')}: width/height/data-scale {im.get('width')}/{im.get('height')}/"
                       f"{im.get('data-scale')}, want {w * u}/{h * u}/{u}")
        try:
            pw, ph, rows = png_of(im)
        except Exception as e:
            bad.append(f"{f.get('data-id')}: PNG: {e}")
            continue
        if (pw, ph) != (w * u, h * u):
            bad.append(f"{f.get('data-id')}: PNG {pw}x{ph}, want {w * u}x{h * u}")
            continue
        wrong = [(x, y, rows[y][x]) for y in range(ph) for x in range(pw)
                 if rows[y][x] != colour_of(pm, tm, x, y, u)]
        if wrong:
            bad.append(f"{f.get('data-id')}: {len(wrong)} pixels off the overlay, first (x, y, rgb) {wrong[:3]}")
    T.check(not bad and page.figures, f"{tag}: every thumbnail shows the contract's colours at data-scale, pixel by pixel",
            f"{cmd}: {bad[:4]}")


def report_dataset(rng, n, h, w):
    """n binary images: targets from smooth blobs, predictions the target with a growing share
    of flipped blob-shaped regions (so Dice falls with the index, without ties), 0/1 uint8."""
    f = blobs(rng, (n, h, w))
    tgt = (f > 0.2).astype(np.uint8)
    g = blobs(rng, (n, h, w))
    pred = tgt.copy()
    for i in range(n):
        flip = g[i] > 1.6 - 0.25 * ((i * 3) % n)  # a different amount of error per image
        pred[i][flip] = 1 - pred[i][flip]
    return pred, tgt


def test_report(url):
    rng = np.random.default_rng(16)
    base = tempfile.mkdtemp(prefix="report-", dir=WORK)

    # 1. stacked .npy files, 7 images in 3 batches, labels; --json and --html of one run
    n, h, w = 7, 12, 16
    pred, tgt = report_dataset(rng, n, h, w)
    pp = save(os.path.join(base, "pred.npy"), pred)
    tp = save(os.path.join(base, "target.npy.gz"), tgt)
    dice = [dice_by_hand(pred[i], tgt[i]) for i in range(n)]
    T.check(len(set(dice)) == n and min(dice) < 1, "report: the data set's Dice values differ (no ties)", str(dice))
    out_html = os.path.join(base, "report.html")
    args = ["score", "--url", url, "--pred", pp, "--target", tp, "--batch-size", "3",
            "--set", "prediction_type=labels", "--metric", "dice", "--metric", "iou",
            "--report-worst", "4", "--html", out_html]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "report (stacked, 3 batches)"
    if T.check(rc == 0 and doc is not None and os.path.isfile(out_html), f"{tag}: exit 0, JSON and the file",
               f"{cmd}: rc={rc} stderr={short(err)}"):
        T.check(doc.get("batches") == 3, f"{tag}: 3 batches", f"{cmd}: {doc.get('batches')}")
        pi = doc["metrics"]["dice"].get("per_image")
        T.check(pi is not None and all(abs(a - b) < 1e-12 for a, b in zip(pi, dice)) and len(pi) == n,
                f"{tag}: per-image Dice as by hand", f"{cmd}: {pi} vs {dice}")
        page = read_page(out_html)
        T.check(page.h1 is not None and page.h1.strip() == "segloss report", f"{tag}: <h1> segloss report",
                f"{cmd}: {page.h1!r}")
        check_aggregate(tag, page, doc, ["metrics.dice.mean", "metrics.dice.global", "metrics.iou.mean",
                                         "metrics.iou.global"], cmd)
        ids = [str(i) for i in range(n)]
        check_thumbs(tag, page, ids, [(pred[i], tgt[i]) for i in range(n)], worst_by_hand(dice, 4), cmd)
        left = [f for f in os.listdir(base) if ".tmp" in f]
        T.check(not left, f"{tag}: no temporary file left beside the report", f"{cmd}: {left}")

    # 2. a Fortran-order gzip'd prediction of probabilities (one batch: gathered), the loss in the
    # table, k from the spec file's report_worst; the threshold 0.5 makes the mask (no value is
    # near it)
    prob = np.where(pred == 1, 0.8, 0.2).astype(np.float32) + rng.uniform(-0.1, 0.1, pred.shape).astype(np.float32)
    ppf = save(os.path.join(base, "prob_f.npy.gz"), np.asfortranarray(prob))
    tpf = save(os.path.join(base, "target_f.npy"), np.asfortranarray(tgt))
    sp = write_json(os.path.join(base, "spec.json"), {"prediction_type": "probabilities", "report_worst": 3,
                                                     "losses": [{"name": "dice"}], "metrics": [{"name": "dice"}]})
    out_f = os.path.join(base, "report_f.html")
    args = ["score", "--url", url, "--pred", ppf, "--target", tpf, "--spec", sp, "--html", out_f]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "report (Fortran-order .npy.gz, report_worst 3 from the spec)"
    if T.check(rc == 0 and doc is not None and os.path.isfile(out_f), f"{tag}: exit 0, JSON and the file",
               f"{cmd}: rc={rc} stderr={short(err)}"):
        page = read_page(out_f)
        check_aggregate(tag, page, doc, ["losses.dice.value", "metrics.dice.mean"], cmd)
        check_thumbs(tag, page, [str(i) for i in range(n)], [(pred[i], tgt[i]) for i in range(n)],
                     worst_by_hand(dice, 3), cmd)
    # --report-worst wins over the spec's; 0 draws none; per_image false shortens --json only
    for extra, k in ((["--report-worst", "5"], 5), (["--report-worst", "0"], 0),
                     (["--set", "per_image=false"], 3)):
        a = args + extra
        rc, doc, out, err = run_json(a)
        page = read_page(out_f) if rc == 0 else None
        T.check(rc == 0 and page is not None and
                [f.get("data-id") for f in page.figures] == [str(i) for i in worst_by_hand(dice, k)],
                f"report: {' '.join(extra)}: {k} figures, worst first",
                f"{cmdline(a)}: rc={rc} figures={page and [f.get('data-id') for f in page.figures]} stderr={short(err)}")
        if "per_image=false" in extra and doc is not None:
            T.check("per_image" not in doc["metrics"]["dice"], "report: per_image false: --json without per-image values",
                    f"{cmdline(a)}: {short(json.dumps(doc))}")

    # 3. directories (ids are the names, in name order), 2 batches, a failing gate: exit 1 and the
    # report; then two image sizes in one data set (the combined answer has "shapes")
    def dir_case(tag, arrays, extra, want_rc):
        d = tempfile.mkdtemp(prefix="report-dir-", dir=base)
        pd, td = os.path.join(d, "pred"), os.path.join(d, "masks")
        os.mkdir(pd)
        os.mkdir(td)
        for j, (k, (p, t)) in enumerate(arrays.items()):
            save(os.path.join(pd, k + ".npy"), p)
            save(os.path.join(td, k + (".npy.gz" if j % 2 else ".npy")), t)
        order = sorted(arrays, key=lambda s: s.encode())
        dd = [dice_by_hand(*arrays[k]) for k in order]
        out_d = os.path.join(d, "report.html")
        junit = os.path.join(d, "junit.xml")
        args = ["score", "--url", url, "--pred", pd, "--target", td, "--set", "prediction_type=labels",
                "--metric", "dice", "--junit", junit, "--html", out_d, *extra]
        rc, doc, out, err = run_json(args)
        cmd = cmdline(args + ["--json"])
        if T.check(rc == want_rc and doc is not None and os.path.isfile(out_d),
                   f"{tag}: exit {want_rc} and the report", f"{cmd}: rc={rc} stderr={short(err)}"):
            page = read_page(out_d)
            check_aggregate(tag, page, doc, ["metrics.dice.mean"], cmd)
            check_thumbs(tag, page, order, [arrays[k] for k in order], worst_by_hand(dd, 8), cmd)
            T.check(os.path.isfile(junit), f"{tag}: the JUnit report too", cmd)

    p1, t1 = report_dataset(rng, 5, 10, 14)
    names = ["case_b", "case-a", "case_c", "x1", "x0"]
    dir_case("report (directories, 2 batches, a failing gate)",
             {k: (p1[j], t1[j]) for j, k in enumerate(names)},
             ["--batch-size", "3", "--gate", "dice.mean>=0.999"], 1)
    p2, t2 = report_dataset(rng, 2, 20, 20)
    dir_case("report (directories of two image sizes)",
             {"a10": (p1[0], t1[0]), "b10": (p1[1], t1[1]), "c10": (p1[2], t1[2]),
              "a20": (p2[0], t2[0]), "b20": (p2[1], t2[1])}, [], 0)

    # 4. Kaggle CSV (ids the ImageIds, runs 1-based and column-major), 2 batches
    hc, wc = 12, 10
    target_rows = [("img_c", "5 10 30 4"), ("img_a", "1 3 50 6"), ("img_d", "7 2"),
                   ("img_a", "100 7"), ("img_b", "20 15 60 20")]
    pred_rows = [("img_b", "18 14 61 25"), ("img_a", "1 5"), ("img_c", "6 9 31 4"),
                 ("img_a", "3 10 98 9"), ("img_d", "-")]
    corder = ["img_c", "img_a", "img_d", "img_b"]

    def write_csv(path, rows):
        with open(path, "w") as f:
            f.write("ImageId,EncodedPixels\n")
            for i, e in rows:
                f.write(f"{i},{e}\n")
        return path

    cp = write_csv(os.path.join(base, "pred.csv"), pred_rows)
    ct = write_csv(os.path.join(base, "target.csv"), target_rows)
    masks = [(rle_decode([e for i, e in pred_rows if i == k], hc, wc),
              rle_decode([e for i, e in target_rows if i == k], hc, wc)) for k in corder]
    # hand check: "7 2" of img_d is rows 6 and 7 of column 0
    assert masks[2][1][6:8, 0].all() and masks[2][1].sum() == 2
    cd = [dice_by_hand(p, t) for p, t in masks]
    out_c = os.path.join(base, "report_csv.html")
    args = ["score", "--url", url, "--pred", cp, "--target", ct, "--shape", f"{hc},{wc}",
            "--batch-size", "2", "--metric", "dice", "--metric", "iou", "--html", out_c]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "report (Kaggle CSV, 2 batches)"
    if T.check(rc == 0 and doc is not None and os.path.isfile(out_c), f"{tag}: exit 0, JSON and the file",
               f"{cmd}: rc={rc} stderr={short(err)}"):
        page = read_page(out_c)
        check_aggregate(tag, page, doc, ["metrics.dice.mean", "metrics.iou.global"], cmd)
        check_thumbs(tag, page, corder, masks, worst_by_hand(cd, 8), cmd)

    # 4b. multiclass: [N, C, H, W] logits in 2 batches; the worst by the images' mean Dice over
    # their defined classes (the --json per-image lists, ranked here), class colours, wrong
    # pixels hatched
    nm, cm, hm, wm = 6, 4, 9, 11
    f = blobs(rng, (nm, cm, hm, wm))
    tgt_m = f.argmax(axis=1).astype(np.uint8)
    logits = (2.0 * f + rng.normal(scale=1.2, size=f.shape)).astype(np.float32)
    pmap = logits.argmax(axis=1)  # the first of equal maxima, as numpy
    pm_path = save(os.path.join(base, "mc_pred.npy"), logits)
    tm_path = save(os.path.join(base, "mc_target.npy"), tgt_m)
    out_m = os.path.join(base, "report_mc.html")
    args = ["score", "--url", url, "--pred", pm_path, "--target", tm_path, "--batch-size", "4",
            "--set", "mode=multiclass", "--metric", "dice", "--html", out_m]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "report (multiclass logits, 2 batches)"
    if T.check(rc == 0 and doc is not None and os.path.isfile(out_m), f"{tag}: exit 0, JSON and the file",
               f"{cmd}: rc={rc} stderr={short(err)}"):
        rows = doc["metrics"]["dice"]["per_image"]
        means = []
        for r in rows:
            d = [v for v in r if v is not None]
            means.append(sum(d) / len(d) if d else math.inf)
        page = read_page(out_m)
        check_aggregate(tag, page, doc, ["metrics.dice.mean"], cmd)
        check_thumbs(tag, page, [str(i) for i in range(nm)], [(pmap[i], tgt_m[i]) for i in range(nm)],
                     worst_by_hand(means, 8), cmd, colour_of=multiclass_colour)

    # 5. errors: a path that cannot be written fails before any scoring (nothing listens at the
    # URL, yet the message is about the path); a directory; a server error writes no report
    dead = f"http://127.0.0.1:{harness.free_port()}"
    bad_path = os.path.join(base, "no-such-dir", "report.html")
    a = ["score", "--url", dead, "--pred", pp, "--target", tp, "--retries", "0", "--html", bad_path]
    rc, out, err, _ = run(a)
    T.check(rc == 2 and "--html" in err and bad_path in err and "No such file" in err,
            "report: --html in a missing directory: exit 2 naming the path, before scoring",
            f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    a = ["score", "--url", url, "--pred", pp, "--target", tp, "--html", base]
    rc, out, err, _ = run(a)
    T.check(rc == 2 and "--html" in err and "directory" in err, "report: --html DIRECTORY: exit 2",
            f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    out_e = os.path.join(base, "report_error.html")
    a = ["score", "--url", url, "--pred", pp, "--target", tp, "--loss", "nosuch", "--html", out_e]
    rc, out, err, _ = run(a)
    left = [f for f in os.listdir(base) if f.startswith("report_error")]
    T.check(rc == 2 and not left, "report: a server error (exit 2, no combined answer): no report, no temporary file",
            f"{cmdline(a)}: rc={rc} files={left} stderr={short(err)}")
    for extra, what in ((["--report-worst", "65"], "--report-worst 65"),
                        (["--report-worst", "3"], "--report-worst without --html"),
                        (["--set", "report_worst=-1", "--html", out_e], "report_worst -1 in the spec")):
        a = ["score", "--url", url, "--pred", pp, "--target", tp, *extra]
        rc, out, err, _ = run(a)
        T.check(rc == 2 and ("report-worst" in err or "report_worst" in err), f"report: {what}: exit 2 naming it",
                f"{cmdline(a)}: rc={rc} stderr={short(err)}")


# ---- region losses of issue 17 (generalized_dice, mcc, smooth_nr/smooth_dr, absent_classes,
# reduction sum/none): the CLI's batch combination equals one request, pooled forms refuse ----

def test_region_losses(url):
    rng = np.random.default_rng(20261217)
    results = {}
    p, t = dataset_multiclass(rng)
    aggregation_set(url, results, "region losses multiclass", p, t,
                    {"include_background": False, "ignore_index": 255}, [
        ("--loss", "dice:reduction=none", {"name": "dice", "reduction": "none"}),
        ("--loss", "jaccard:reduction=sum", {"name": "jaccard", "reduction": "sum"}),
        ("--loss", "tversky:smooth_nr=0.5,smooth_dr=1,absent_classes=zero",
         {"name": "tversky", "smooth_nr": 0.5, "smooth_dr": 1, "absent_classes": "zero"}),
        ("--loss", "dice:absent_classes=zero,include_background=true,reduction=none,as=dice_z",
         {"name": "dice", "absent_classes": "zero", "include_background": True, "reduction": "none",
          "as": "dice_z"}),
        ("--loss", "generalized_dice", {"name": "generalized_dice"}),
        ("--loss", "generalized_dice:w_type=simple,reduction=none,as=gd_simple",
         {"name": "generalized_dice", "w_type": "simple", "reduction": "none", "as": "gd_simple"}),
        ("--loss", "generalized_dice:w_type=uniform,reduction=sum,as=gd_sum",
         {"name": "generalized_dice", "w_type": "uniform", "reduction": "sum", "as": "gd_sum"}),
        ("--loss", "mcc:per_image=true", {"name": "mcc", "per_image": True}),
    ])
    p, t = dataset_multilabel(rng)
    aggregation_set(url, results, "region losses multilabel", p, t, {"mode": "multilabel"}, [
        ("--loss", "generalized_dice:smooth=0", {"name": "generalized_dice", "smooth": 0}),
        ("--loss", "mcc:per_image=true,eps=1e-3", {"name": "mcc", "per_image": True, "eps": 1e-3}),
        ("--loss", "tversky:fp_weight=0.3,fn_weight=0.7,reduction=none",
         {"name": "tversky", "fp_weight": 0.3, "fn_weight": 0.7, "reduction": "none"}),
    ])
    p, t = dataset_binary(rng)
    aggregation_set(url, results, "region losses binary", p, t, {"ignore_index": 255}, [
        ("--loss", "mcc:per_image=true", {"name": "mcc", "per_image": True}),
        ("--loss", "generalized_dice:smooth_dr=1", {"name": "generalized_dice", "smooth_dr": 1}),
        ("--loss", "dice:absent_classes=zero,reduction=none",
         {"name": "dice", "absent_classes": "zero", "reduction": "none"}),
    ])
    # the table prints a per-class row under a loss with reduction none, and a gate may name one
    # class of it (losses.dice.per_class[i]); both hold the single request's per_class
    pp, tp, args, spec, want, _, _ = results["region losses multiclass"]
    pc = want["losses"]["dice"]["per_class"]
    lo, hi = pc[1] - 1e-5, pc[1] + 1e-5
    a = args + ["--gate", f"losses.dice.per_class[1]>={lo!r}", "--gate", f"losses.dice.per_class[1]<={hi!r}"]
    rc, out, err, _ = run(a)
    lines = out.splitlines()
    at = [i for i, ln in enumerate(lines) if ln.split()[:1] == ["dice"]]
    row = lines[at[0] + 1].split() if at and at[0] + 1 < len(lines) else []
    shown = row[2:] if row[:2] == ["per", "class"] else []
    T.check(rc == 0 and len(shown) == len(pc)
            and all((w is None and g == "null") or (w is not None and g != "null" and abs(float(g) - w) < 1e-6)
                    for g, w in zip(shown, pc)),
            "region losses: the table's per-class row under dice (reduction none) equals per_class",
            f"{cmdline(a)}: rc={rc} row={row} want={pc} stderr={short(err)}")
    T.check(rc == 0 and out.count(" pass") == 2,
            "region losses: gates on losses.dice.per_class[1] read the combined per_class",
            f"{cmdline(a)}: rc={rc} stdout={short(out)}")
    a = args + ["--gate", "losses.jaccard.per_class[0]<1"]
    rc, out, err, _ = run(a)
    T.check(rc == 2 and "per_class" in err and "reduction" in err,
            "region losses: a gate on per_class of a loss without reduction none is refused naming it",
            f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    # forms that pool the batch cannot be combined: exit 2 naming why
    d = tempfile.mkdtemp(prefix="rloss-", dir=WORK)
    pp = save(os.path.join(d, "pred.npy"), p)
    tp = save(os.path.join(d, "target.npy"), t)
    for loss in ("mcc", "generalized_dice:per_image=false", "dice:reduction=none,per_image=false"):
        a = ["score", "--url", url, "--pred", pp, "--target", tp, "--set", "ignore_index=255",
             "--batch-size", "3", "--loss", loss]
        rc, out, err, _ = run(a)
        T.check(rc == 2 and re.search(r"combin", err) is not None and "per_image" in err,
                f"region losses: --loss {loss} over 3 batches: exit 2, it pools the batch",
                f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    # smooth with smooth_nr: the server's 422 names the key
    a = ["score", "--url", url, "--pred", pp, "--target", tp, "--set", "ignore_index=255",
         "--loss", "dice:smooth=1,smooth_nr=0"]
    rc, out, err, _ = run(a)
    T.check(rc != 0 and "smooth_nr" in err, "region losses: smooth with smooth_nr is refused naming it",
            f"{cmdline(a)}: rc={rc} stderr={short(err)}")


# ---- main -----------------------------------------------------------------------------------

# ---- soft targets and label smoothing (issue 17, item 5) ---------------------------------------


def bce_logits(x, y):
    """PyTorch binary_cross_entropy_with_logits per pixel, soft y: max(x, 0) - x y + log(1 + e^-|x|)."""
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


def test_soft_targets(url):
    """Binary float targets in [0, 1] (.npy float32) and cross_entropy's label_smoothing /
    smooth_factor through `segloss score` in 3 batches: equal to one direct request, and to the
    peers' formulas computed here with numpy; multiclass label_smoothing (PyTorch) likewise; a
    loss that needs 0/1 targets is a 422 naming the target, exit 2."""
    rng = np.random.default_rng(1717)
    n, h, w = 7, 12, 10
    x = rng.normal(0, 2, (n, h, w)).astype(np.float32)
    y = rng.uniform(0, 1, (n, h, w)).astype(np.float32)
    y[:, :3] = np.round(y[:, :3])  # some hard pixels among the soft ones
    y[2, 0, :4] = 255  # ignored (ignore_index 255)
    d = tempfile.mkdtemp(prefix="soft-", dir=WORK)
    pp = save(os.path.join(d, "pred.npy"), x)
    tp = save(os.path.join(d, "target.npy"), y)
    spec = {"ignore_index": 255,
            "losses": ["cross_entropy", {"name": "cross_entropy", "label_smoothing": 0.2, "as": "ls"},
                       {"name": "cross_entropy", "smooth_factor": 0.05, "as": "sf"}, "dice",
                       {"name": "combo", "terms": ["cross_entropy", "jaccard"]},
                       "generalized_dice", {"name": "mcc", "per_image": True}],
            "metrics": ["dice", "iou"]}
    want = direct(url, spec, x, y)
    args = ["score", "--url", url, "--pred", pp, "--target", tp, "--batch-size", "3",
            "--spec", write_json(os.path.join(d, "spec.json"), spec)]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "soft targets (binary float32 .npy, 7 images, --batch-size 3)"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        check_top(tag, doc, want, 7, 3, cmd)
        compare_entries(tag, doc, want, cmd)
        m = y != 255
        xd, yd = x.astype(np.float64), np.where(m, y, 0).astype(np.float64)
        # cross entropy with y as given; Keras label_smoothing 0.2: y (1 - 0.2) + 0.1; smp
        # smooth_factor 0.05: (1 - y) 0.05 + y 0.95; each the mean over counted pixels
        for key, ys in (("cross_entropy", yd), ("ls", yd * 0.8 + 0.1), ("sf", (1 - yd) * 0.05 + yd * 0.95)):
            v = float((bce_logits(xd, ys) * m).sum() / m.sum())
            got = doc.get("losses", {}).get(key, {}).get("value")
            T.check(got is not None and abs(got - v) <= 1e-9 * abs(v), f"{tag}: {key} = the formula",
                    f"{cmd}: {got} want {v}")
        # smp soft_dice_score per image (smooth 0): 1 - 2 sum p y / (sum p + sum y), mean over images
        p = 1 / (1 + np.exp(-xd))
        dl = [1 - 2 * (p[i] * yd[i] * m[i]).sum() / ((p[i] * m[i]).sum() + (yd[i] * m[i]).sum())
              for i in range(n)]
        got = doc.get("losses", {}).get("dice", {}).get("value")
        T.check(got is not None and abs(got - np.mean(dl)) <= 1e-9, f"{tag}: dice = the soft formula",
                f"{cmd}: {got} want {np.mean(dl)}")
        # MONAI GeneralizedDiceLoss (monai/losses/dice.py), one channel, per image: w = 1 / g^2,
        # g = sum y; 1 - (2 w sum p y + 1e-5) / (w (sum p + sum y) + 1e-5), mean over images
        gd = []
        for i in range(n):
            sp, sy, spy = (p[i] * m[i]).sum(), (yd[i] * m[i]).sum(), (p[i] * yd[i] * m[i]).sum()
            wi = 1 / sy ** 2
            gd.append(1 - (2 * wi * spy + 1e-5) / (wi * (sp + sy) + 1e-5))
        # smp MCCLoss (segmentation_models_pytorch/losses/mcc.py) per image: tp = sum p y, tn =
        # sum (1-p)(1-y), fp = sum p (1-y), fn = sum (1-p) y, each + 1e-5; 1 - MCC
        mc = []
        for i in range(n):
            tp1 = (p[i] * yd[i] * m[i]).sum() + 1e-5
            tn1 = ((1 - p[i]) * (1 - yd[i]) * m[i]).sum() + 1e-5
            fp1 = (p[i] * (1 - yd[i]) * m[i]).sum() + 1e-5
            fn1 = ((1 - p[i]) * yd[i] * m[i]).sum() + 1e-5
            mc.append(1 - (tp1 * tn1 - fp1 * fn1) / np.sqrt((tp1 + fp1) * (tp1 + fn1) * (tn1 + fp1) * (tn1 + fn1)))
        for key, v in (("generalized_dice", float(np.mean(gd))), ("mcc", float(np.mean(mc)))):
            got = doc.get("losses", {}).get(key, {}).get("value")
            T.check(got is not None and abs(got - v) <= 1e-9, f"{tag}: {key} on soft targets = the peer's formula",
                    f"{cmd}: {got} want {v}")
        # metrics harden the target at y >= 0.5 (MONAI AsDiscrete(threshold=0.5)), the
        # prediction at p >= 0.5 (x >= 0); global dice from the counts of every image
        hy, hp = (yd >= 0.5) & m, (xd >= 0) & m
        tp_, fp_, fn_ = (hy & hp).sum(), (hp & ~hy).sum(), (hy & ~hp).sum()
        g = doc.get("metrics", {}).get("dice", {}).get("global")
        T.check(g is not None and abs(g - 2 * tp_ / (2 * tp_ + fp_ + fn_)) <= 1e-12,
                f"{tag}: dice global from targets hardened at 0.5", f"{cmd}: {g}")

    # hard uint8 targets: float32 logits run the fused float32 pass, label smoothing included
    # (README "Numerics": about 1e-6 relative; lib/planes.c signed_logit_sum: 1.5e-6 for
    # smoothing up to 1/2); smooth_factor 0.7 (above 1/2) runs in double
    yh = np.where(y == 255, 255, y >= 0.5).astype(np.uint8)
    th = save(os.path.join(d, "target_hard.npy"), yh)
    spec_h = {"ignore_index": 255,
              "losses": [{"name": "cross_entropy", "label_smoothing": 0.2, "as": "ls"},
                         {"name": "cross_entropy", "smooth_factor": 0.05, "as": "sf"},
                         {"name": "cross_entropy", "smooth_factor": 0.7, "as": "sf7"}, "dice"]}
    want = direct(url, spec_h, x, yh)
    args = ["score", "--url", url, "--pred", pp, "--target", th, "--batch-size", "3",
            "--spec", write_json(os.path.join(d, "spec_hard.json"), spec_h)]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "label smoothing on hard targets (uint8, 7 images, --batch-size 3)"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        compare_entries(tag, doc, want, cmd)
        m = yh != 255
        xd, yd = x.astype(np.float64), np.where(m, yh, 0).astype(np.float64)
        for key, ys, rtol in (("ls", yd * 0.8 + 0.1, 1.5e-6), ("sf", (1 - yd) * 0.05 + yd * 0.95, 1.5e-6),
                              ("sf7", (1 - yd) * 0.7 + yd * 0.3, 1e-9)):
            v = float((bce_logits(xd, ys) * m).sum() / m.sum())
            got = doc.get("losses", {}).get(key, {}).get("value")
            T.check(got is not None and abs(got - v) <= rtol * abs(v), f"{tag}: {key} = the formula",
                    f"{cmd}: {got} want {v}")

    # multiclass label_smoothing (PyTorch) with class weights, in 3 batches
    c = 3
    xm = rng.normal(0, 1.5, (n, c, 6, 5)).astype(np.float32)
    ym = rng.integers(0, c, (n, 6, 5)).astype(np.uint8)
    pm = save(os.path.join(d, "pred_mc.npy"), xm)
    tm = save(os.path.join(d, "target_mc.npy"), ym)
    cw = [1.0, 2.0, 0.5]
    spec_mc = {"losses": [{"name": "cross_entropy", "label_smoothing": 0.1},
                          {"name": "cross_entropy", "label_smoothing": 0.3, "class_weights": cw, "as": "lsw"}],
               "metrics": ["dice"]}
    want = direct(url, spec_mc, xm, ym)
    args = ["score", "--url", url, "--pred", pm, "--target", tm, "--batch-size", "3",
            "--spec", write_json(os.path.join(d, "spec_mc.json"), spec_mc)]
    rc, doc, out, err = run_json(args)
    cmd = cmdline(args + ["--json"])
    tag = "label_smoothing multiclass (C = 3, 7 images, --batch-size 3)"
    if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON", f"{cmd}: rc={rc} stderr={short(err)}"):
        compare_entries(tag, doc, want, cmd)
        # PyTorch cross_entropy(label_smoothing=e, weight=w): per pixel (1 - e) w_y (-log p_y) +
        # (e / C) sum_c w_c (-log p_c), summed and divided by the sum of w_y
        xs = xm.astype(np.float64)
        lp = xs - xs.max(1, keepdims=True)
        lp = lp - np.log(np.exp(lp).sum(1, keepdims=True))
        nll = -np.take_along_axis(lp, ym[:, None].astype(np.int64), 1)[:, 0]
        for key, e, wv in (("cross_entropy", 0.1, np.ones(c)), ("lsw", 0.3, np.array(cw))):
            wy = wv[ym]
            num = ((1 - e) * wy * nll + e / c * -(lp * wv[None, :, None, None]).sum(1)).sum()
            v = float(num / wy.sum())
            got = doc.get("losses", {}).get(key, {}).get("value")
            # float32 logits: the fused multiclass kernel's bound (lib/simd.c: 2e-6 relative)
            T.check(got is not None and abs(got - v) <= 2e-6 * abs(v), f"{tag}: {key} = PyTorch's formula",
                    f"{cmd}: {got} want {v}")

    # focal needs 0/1 targets: a 422 naming the target's first soft index, exit 2
    args = ["score", "--url", url, "--pred", pp, "--target", tp, "--set", "ignore_index=255",
            "--loss", "focal"]
    rc, out, err, _ = run(args)
    T.check(rc == 2 and "target[0, 3, 0]" in err and "focal" in err,
            "soft targets: focal refused (exit 2) naming target[0, 3, 0] and focal",
            f"{cmdline(args)}: rc={rc} stderr={short(err)}")


class Relay:
    """A TCP relay on loopback in front of the real server that keeps every byte the CLI sends
    (what went over the wire: the part headers, the spec, the compressed bytes)."""

    def __init__(self, url):
        host, port = url.split("//", 1)[1].rsplit(":", 1)
        self.upstream = (host, int(port))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sent = bytearray()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c, False), daemon=True).start()

    def _pipe(self, src, dst, record):
        try:
            while True:
                b = src.recv(1 << 16)
                if not b:
                    break
                if record:
                    with self.lock:
                        self.sent += b
                dst.sendall(b)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def take(self):
        with self.lock:
            b = bytes(self.sent)
            self.sent.clear()
        return b

    def close(self):
        self.sock.close()


def test_zstd(url):
    """--compress zstd and auto: the parts go as zstd frames (seen on the wire through a relay),
    and the combined answer is the one direct request's."""
    rng = np.random.default_rng(20261207)
    d = tempfile.mkdtemp(prefix="zstd-", dir=WORK)
    pred = rng.random((5, 16, 16), dtype=np.float32)
    tgt = (rng.random((5, 16, 16)) > 0.5).astype(np.uint8)
    pp = save(os.path.join(d, "pred.npy"), pred)
    tp = save(os.path.join(d, "target.npy"), tgt)
    spec = {"prediction_type": "probabilities", "losses": ["dice", "cross_entropy"],
            "metrics": ["dice", "iou"]}
    want = direct(url, spec, pred, tgt)
    relay = Relay(url)
    magic = {"zstd": b"\x28\xb5\x2f\xfd", "gzip": b"\x1f\x8b\x08"}
    ctype = {"zstd": b"application/zstd", "gzip": b"application/gzip", "none": b"application/x-npy"}
    try:
        # (mode, pred's codec, mask's codec): auto compresses the integer mask only, with zstd
        # because this server's catalog lists it
        for mode, pc, mc in (("zstd", "zstd", "zstd"), ("auto", "none", "zstd"),
                             ("gzip", "gzip", "gzip"), ("none", "none", "none")):
            args = ["score", "--url", relay.url, "--pred", pp, "--target", tp, "--batch-size", "2",
                    "--compress", mode, "--spec", write_json(os.path.join(d, "spec.json"), spec)]
            rc, doc, out, err = run_json(args)
            wire = relay.take()
            cmd = cmdline(args + ["--json"])
            tag = f"--compress {mode} (5 images, 3 batches)"
            if T.check(rc == 0 and doc is not None, f"{tag}: exit 0 with JSON",
                       f"{cmd}: rc={rc} stderr={short(err)}"):
                T.check(doc.get("batches") == 3, f"{tag}: 3 batches", f"{cmd}: {doc.get('batches')}")
                compare_entries(tag, doc, want, cmd)
            for name, codec in (("pred", pc), ("mask", mc)):
                head = (b'name="%s"; filename="%s.npy%s"\r\nContent-Type: %s' %
                        (name.encode(), name.encode(),
                         {"zstd": b".zst", "gzip": b".gz", "none": b""}[codec], ctype[codec]))
                T.check(wire.count(head) == 3, f"{tag}: 3 {name} parts sent as {codec}",
                        f"{cmd}: {wire.count(head)} of {head!r}")
                key = b'"part":"%s","compression":"%s"' % (name.encode(), codec.encode())
                T.check(wire.count(key) == 3, f"{tag}: the spec says {codec} for {name}",
                        f"{cmd}: {short(wire[:2000].decode('latin-1'))}")
            for codec, m in magic.items():
                used = codec in (pc, mc)
                T.check((m in wire) == used, f"{tag}: {codec} magic {'in' if used else 'not in'} the body",
                        cmd)
            asked = b"GET /v1/catalog " in wire
            T.check(asked == (mode == "auto"), f"{tag}: the catalog asked {'once' if mode == 'auto' else 'never'}",
                    cmd)
    finally:
        relay.close()



# ---- 14. --parallel N ---------------------------------------------------------------------
# Batches sent over N connections at once and combined in data-set order: the output must be
# the bytes --parallel 1 writes (the server's elapsed_ms, a sum of its timings, and the JUnit
# time attributes aside), and the values those of one request (or of a count done here).


def steady(text, url=None):
    """text without what differs between two runs of the same scoring: the elapsed_ms line
    (server timings), JUnit time="..." attributes and, when given, the server's url."""
    text = re.sub(r'^\s*"elapsed_ms": .*\n', "", text, flags=re.M)
    text = re.sub(r' time="[0-9.]+"', ' time="T"', text)
    return text.replace(url, "URL") if url else text


def same_runs(tag, args, parallel=4, files=()):
    """Runs args at --parallel 1 and --parallel N; checks equal exit codes, stdout, stderr and
    the files written (JUnit time aside). Returns (rc, stdout, stderr) of the parallel run."""
    runs = []
    for n in (1, parallel):
        for f in files:
            if os.path.exists(f):
                os.unlink(f)
        rc, out, err, _ = run([*args, "--parallel", str(n)])
        written = []
        for f in files:
            try:
                with open(f, "rb") as fh:
                    written.append(steady(fh.read().decode("utf-8", "replace")))
            except OSError:
                written.append(None)
        runs.append((rc, steady(out), err, written))
    (rc1, out1, err1, f1), (rcn, outn, errn, fn) = runs
    cmd = cmdline([*args, "--parallel", str(parallel)])
    T.check(rc1 == rcn, f"{tag}: --parallel {parallel} exits {rcn} as --parallel 1 ({rc1})",
            f"{cmd}: stderr={short(errn)}")
    T.check(out1 == outn, f"{tag}: --parallel {parallel} stdout is --parallel 1's, byte for byte",
            f"{cmd}: {len(out1)} vs {len(outn)} bytes; first difference at "
            f"{next((i for i, (a, b) in enumerate(zip(out1, outn)) if a != b), min(len(out1), len(outn)))}")
    T.check(err1 == errn, f"{tag}: --parallel {parallel} stderr is --parallel 1's",
            f"{cmd}:\n  1: {short(err1)}\n  {parallel}: {short(errn)}")
    for f, a, b in zip(files, f1, fn):
        T.check(a is not None and a == b,
                f"{tag}: --parallel {parallel} writes {os.path.basename(f)} as --parallel 1",
                f"{cmd}: {f}: {'missing' if a is None or b is None else 'differs'}")
    return rcn, outn, errn


def test_parallel(url, seglossd, golden_dir):
    rng = np.random.default_rng(19)
    base = tempfile.mkdtemp(prefix="parallel-", dir=WORK)

    # golden cases of several images, one batch per image (those whose losses can be combined)
    used = 0
    for case in harness.golden_cases(golden_dir):
        if not golden_usable(case):
            continue
        pred = harness.to_numpy(case["request"]["prediction"])
        fortran = pred.flags["F_CONTIGUOUS"] and not pred.flags["C_CONTIGUOUS"]
        pools = any(pooling_loss(l) for l in case["request"].get("losses", []) if isinstance(l, dict))
        if pred.shape[0] < 2 or fortran or pools:
            continue
        cid = case["id"]
        pp, tp, sp, _ = golden_files(case, tempfile.mkdtemp(prefix=cid + "-", dir=base))
        args = ["score", "--url", url, "--pred", pp, "--target", tp, "--spec", sp,
                "--batch-size", "1", "--json"]
        rc, out, err = same_runs(f"parallel golden {cid} ({pred.shape[0]} batches)", args)
        try:
            check_golden_answer(f"parallel golden {cid}", case, json.loads(out), cmdline(args))
        except ValueError:
            T.check(False, f"parallel golden {cid}: JSON", f"rc={rc} {short(err)}")
        used += 1
    T.check(used >= 8, f"parallel: {used} multi-image golden cases compared", "too few")

    # mixed sizes: a directory of 17 images of three shapes and two dtypes, batches of 3 (a
    # shape or dtype change starts a batch); table, --json, --junit, --html and a failing gate
    ids = [f"im{k:02d}" for k in range(17)]
    shapes = [(12, 16)] * 5 + [(20, 9)] * 7 + [(7, 7)] * 5
    pd, td = os.path.join(base, "pred"), os.path.join(base, "target")
    os.mkdir(pd)
    os.mkdir(td)
    hand = {}
    for k, (i, shp) in enumerate(zip(ids, shapes)):
        f = blobs(rng, (1, *shp))[0]
        t = (f > 0.2).astype(np.uint8)
        p = (2.5 * (f - 0.2) + rng.normal(scale=0.9, size=shp)).astype(np.float64 if 8 <= k < 10 else np.float32)
        save(os.path.join(pd, i + (".npy.gz" if k % 4 == 1 else ".npy")), p)
        save(os.path.join(td, i + ".npy"), t)
        h = p >= 0  # logits: threshold 0.5 is logit 0
        tp_, fp_, fn_ = int(np.sum(h & (t == 1))), int(np.sum(h & (t == 0))), int(np.sum(~h & (t == 1)))
        hand[i] = 2 * tp_ / (2 * tp_ + fp_ + fn_) if 2 * tp_ + fp_ + fn_ else 1.0
    junit, page = os.path.join(base, "mixed.xml"), os.path.join(base, "mixed.html")
    common = ["score", "--url", url, "--pred", pd, "--target", td, "--batch-size", "3",
              "--loss", "cross_entropy", "--loss", "dice", "--metric", "dice", "--metric", "iou",
              "--metric", "hausdorff:percentile=95,as=hd95", "--no-progress"]
    tag = "parallel mixed sizes (17 images, 3 shapes, 2 dtypes)"
    rc, out, err = same_runs(tag + " --json", [*common, "--json", "--gate", "dice.mean>=0.2"], 4)
    try:
        doc = json.loads(out)
    except ValueError:
        doc = {}
    T.check(rc == 0 and doc.get("images") == 17 and doc.get("batches", 0) >= 7,
            f"{tag}: exit 0, 17 images in {doc.get('batches')} batches", f"rc={rc} {short(err)}")
    per = dict(zip(doc.get("image_ids", []), doc.get("metrics", {}).get("dice", {}).get("per_image", [])))
    m = harness.mismatch(per, hand, 1e-12, 1e-12, "dice.per_image")
    T.check(m is None and len(per) == 17, f"{tag}: per-image Dice in id order as counted here", m)
    m = harness.mismatch(doc.get("metrics", {}).get("dice", {}).get("mean"),
                         sum(hand.values()) / len(hand), 1e-12, 1e-12, "dice.mean")
    T.check(m is None, f"{tag}: dice.mean is the mean of the 17 counted here", m)
    same_runs(tag + " table, --junit, --html, failing gate", [*common, "--gate", "dice.mean>=0.99",
              "--junit", junit, "--html", page], 6, files=(junit, page))
    rc, _, _, _ = run([*common, "--gate", "dice.mean>=0.99", "--parallel", "6"])
    T.check(rc == 1, f"{tag}: a failing gate exits 1 with --parallel 6", f"rc={rc}")

    # a stacked multiclass set of 40 images in 14 batches against one request with all 40
    pred, tgt = dataset_multiclass(rng, n=40, c=4, h=16, w=18)
    pp = save(os.path.join(base, "mc_p.npy"), pred)
    tp = save(os.path.join(base, "mc_t.npy"), tgt)
    spec = {"losses": [{"name": "cross_entropy"}, {"name": "dice"}],
            "metrics": [{"name": "dice"}, {"name": "iou"}, {"name": "confusion"}],
            "ignore_index": 255}
    sp = write_json(os.path.join(base, "mc_spec.json"), spec)
    args = ["score", "--url", url, "--pred", pp, "--target", tp, "--spec", sp, "--batch-size", "3",
            "--json"]
    rc, out, err = same_runs("parallel multiclass 40 images in 14 batches", args, 6)
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    if T.check(rc == 0 and doc is not None, "parallel multiclass: exit 0 with JSON", short(err)):
        check_top("parallel multiclass", doc, direct(url, spec, pred, tgt), 40, 14, cmdline(args))
        compare_entries("parallel multiclass --parallel 6", doc, direct(url, spec, pred, tgt),
                        cmdline(args))

    # a failing batch in the middle: image 13 of 24 (batch 7 of 12) has a target 3, image 20
    # (batch 11) a 5; every run names batch 7 and image 13, as one by one
    pred, tgt = dataset_binary(rng, n=24, h=16, w=16)
    tgt[tgt == 255] = 0
    tgt[13, 4, 5] = 3
    tgt[20, 0, 0] = 5
    pp = save(os.path.join(base, "bad_p.npy"), pred)
    tp = save(os.path.join(base, "bad_t.npy"), tgt)
    jb = os.path.join(base, "bad.xml")
    args = ["score", "--url", url, "--pred", pp, "--target", tp, "--batch-size", "2",
            "--metric", "dice", "--json", "--junit", jb]
    for n in (4, 12):
        rc, out, err = same_runs(f"parallel failing batch 7/12 (--parallel {n})", args, n, files=(jb,))
        T.check(rc == 2 and out == "" and "batch 7/12 (images 12..13)" in err
                and "that image of the batch is 13" in err and "422" in err,
                f"parallel failing batch: --parallel {n}: exit 2 naming batch 7/12 and image 13",
                f"rc={rc} stderr={short(err)}")

    # bad values: a usage error (exit 2) naming --parallel, for score, submit and reference
    for verb in (["score", "--url", url, "--pred", pp, "--target", tp],
                 ["submit", "demo", pp, "--url", url, "--token", "x"],
                 ["challenge", "reference", "demo", tp, "--url", url, "--token", "x"]):
        for bad in ("0", "-1", "65", "abc", "", "4x", "1.5", "99999999999999999999"):
            a = [*verb, "--parallel", bad]
            rc, out, err, _ = run(a)
            T.check(rc == 2 and "--parallel" in err and "1..64" in err,
                    f"parallel: {verb[0]} --parallel {bad!r}: exit 2 naming --parallel 1..64",
                    f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    rc, out, err, _ = run(["score", "--url", url, "--pred", pp, "--target", tp, "--parallel"])
    T.check(rc == 2 and "parallel" in err, "parallel: --parallel without a value: exit 2",
            f"rc={rc} stderr={short(err)}")
    rc, help_text, _, _ = run(["--help"])
    T.check("--parallel N" in help_text, "parallel: --help documents --parallel N", short(help_text))

    # 429 with --parallel 4 on a server allowing 2 connections per address: refused requests
    # are retried each on its own, and the result is that of --parallel 1 on a server without
    # the limit
    pred, tgt = dataset_binary(rng, n=30, h=48, w=48)
    tgt[tgt == 255] = 0
    pp = save(os.path.join(base, "lim_p.npy"), pred)
    tp = save(os.path.join(base, "lim_t.npy"), tgt)
    common = ["--pred", pp, "--target", tp, "--batch-size", "3", "--metric", "dice",
              "--metric", "hausdorff", "--loss", "cross_entropy", "--compress", "gzip", "--json"]
    rc1, out1, err1, _ = run(["score", "--url", url, *common, "--parallel", "1"])
    srv = harness.Server(seglossd, "--max-per-ip", "2")
    probe = Probe(srv.url)
    series = 'segloss_rejections_total{reason="per_ip_limit"}'
    try:
        r0 = probe.metric(series) or 0.0
        a = ["score", "--url", srv.url, *common, "--parallel", "4", "--retries", "10"]
        rc, out, err, secs = run(a, timeout=240)
        r1 = probe.metric(series) or 0.0
    finally:
        probe.close()
        srv.stop()
        shutil.rmtree(srv.dir, ignore_errors=True)
    T.check(rc1 == 0 and rc == 0, f"parallel 429: --parallel 4 against --max-per-ip 2: exit 0 ({secs:.1f} s)",
            f"{cmdline(a)}: rc={rc} stderr={short(err)}")
    T.check(r1 > r0, f"parallel 429: the server refused {r1 - r0:.0f} connections (per_ip_limit)",
            f"{r0} -> {r1}")
    T.check(re.search(r"batch \d+/10 .*429.*retry 1/10", err) is not None,
            "parallel 429: stderr notes a batch's '429 ..., retry 1/10'", short(err))
    T.check(steady(out, srv.url) == steady(out1, url),
            "parallel 429: the output is --parallel 1's (without the limit), byte for byte",
            f"{len(out)} vs {len(out1)} bytes")

    # memory: 128 images of 256x256 in batches of 8 over 4 connections stay near one batch's
    n = 128
    pred = rng.normal(size=(n, 256, 256)).astype(np.float32)
    tgt = (rng.random((n, 256, 256)) < 0.4).astype(np.uint8)
    pp = save(os.path.join(base, "mem_p.npy"), pred)
    tp = save(os.path.join(base, "mem_t.npy"), tgt)
    pp8 = save(os.path.join(base, "mem_p8.npy"), pred[:8])
    tp8 = save(os.path.join(base, "mem_t8.npy"), tgt[:8])
    del pred, tgt
    common = ["--batch-size", "8", "--loss", "cross_entropy", "--no-per-image", "--json"]
    rc, _, err, rss = peak_rss(["score", "--url", url, "--pred", pp, "--target", tp, *common,
                                "--parallel", "4"])
    rc8, _, err8, rss8 = peak_rss(["score", "--url", url, "--pred", pp8, "--target", tp8, *common])
    T.check(rc == 0 and rc8 == 0 and rss is not None and rss8 is not None and rss - rss8 < 24,
            f"parallel memory: 128 images (40 MiB) at --parallel 4: peak RSS {rss} MiB, one batch "
            f"of 8 alone {rss8} MiB: under 24 MiB more", f"rc={rc} {short(err)} {short(err8)}")


GROUPS = ("golden", "aggregation", "dirs", "dirs_multiclass", "memory", "csv", "gates", "output",
          "errors", "report", "region_losses", "soft_targets", "zstd", "parallel")


def golden_case_files(golden_dir, cid):
    """{cid: (pred, target, spec)}: one golden case's files as test_golden writes them."""
    case = next(c for c in harness.golden_cases(golden_dir) if c["id"] == cid)
    pp, tp, sp, _ = golden_files(case, tempfile.mkdtemp(prefix=cid + "-", dir=WORK))
    return {cid: (pp, tp, sp)}


def main():
    global SEGLOSS, WORK
    ap = argparse.ArgumentParser()
    ap.add_argument("--segloss", required=True)
    ap.add_argument("--seglossd", required=True)
    ap.add_argument("--golden", required=True)
    opts = ap.parse_args()
    SEGLOSS = os.path.abspath(opts.segloss)
    if not (os.path.isfile(SEGLOSS) and os.access(SEGLOSS, os.X_OK)):
        T.check(False, f"{opts.segloss} is an executable")
        return T.finish()
    WORK = tempfile.mkdtemp(prefix="segloss-cli-test-")
    server = None
    t0 = time.monotonic()
    # each group is "clients/cli/NAME" for the filter (tests/tally.py selected); gates and output
    # need aggregation's data sets and errors a golden case's files, so selecting one of them
    # brings what it needs along
    want = {name: harness.selected("clients/cli/" + name) for name in GROUPS}
    want["aggregation"] = want["aggregation"] or want["gates"] or want["output"]
    try:
        if any(want.values()):
            server = harness.Server(opts.seglossd)
        steps = [
            ("golden", lambda: test_golden(server.url, opts.golden)),
            ("aggregation", lambda: test_aggregation(server.url)),
            ("dirs", lambda: test_dirs(server.url)),
            ("dirs_multiclass", lambda: test_dirs_multiclass(server.url)),
            ("memory", lambda: test_memory(server.url)),
            ("csv", lambda: test_csv(server.url)),
            ("report", lambda: test_report(server.url)),
            ("region_losses", lambda: test_region_losses(server.url)),
            ("soft_targets", lambda: test_soft_targets(server.url)),
            ("zstd", lambda: test_zstd(server.url)),
            ("parallel", lambda: test_parallel(server.url, opts.seglossd, opts.golden)),
        ]
        results = {}
        for name, fn in steps:
            if not want[name]:
                continue
            try:
                results[name] = fn()
            except Exception:
                T.check(False, f"{name}: the test ran", traceback.format_exc())
        agg = results.get("aggregation")
        gfiles = results.get("golden") or {}
        if want["errors"] and not want["golden"]:
            gfiles = golden_case_files(opts.golden, "dice_smooth1")
        for name, fn in (
            ("gates", lambda: test_gates(server.url, agg)),
            ("output", lambda: test_output(server.url, agg)),
            ("errors", lambda: test_errors(server.url, opts.seglossd, gfiles, opts.golden)),
        ):
            if not want[name]:
                continue
            try:
                if name in ("gates", "output") and not agg:
                    raise RuntimeError("no aggregation data sets")
                fn()
            except Exception:
                T.check(False, f"{name}: the test ran", traceback.format_exc())
    finally:
        if server:
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(WORK, ignore_errors=True)
    print(f"# {time.monotonic() - t0:.1f} s")
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
