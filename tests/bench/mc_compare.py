#!/usr/bin/python3
"""Multiclass end to end: seglossd against PyTorch on one thread, both batches of issue 18's table.

Usage: /usr/bin/python3 tests/bench/mc_compare.py [--seglossd build/seglossd] [--reps 3]
(`make bench-mc`). Needs numpy and torch (Debian's python3-torch, 1.13).

For 2 x 19 x 512 x 1024 (Cityscapes-like) and 4 x 4 x 512 x 512 float32 logits with uint8
targets, it starts seglossd on loopback (port 0), POSTs a multipart body (the spec, then the
logits and the targets as uncompressed .npy parts) asking for cross_entropy + soft dice + the
per-class hard dice and iou, and computes the same values with PyTorch on one thread
(F.cross_entropy; softmax dice per image and class, mean over classes then images; argmax
confusion counts). Every value must agree within 1e-5 relative, else the script fails. It
prints, per batch, seglossd's elapsed_ms (scoring inside the server) and the client's wall
time of the whole request (upload, parsing, scoring, answer) against PyTorch's time, best of
--reps each. A benchmark: it asserts agreement, not speed.
"""
import argparse
import io
import json
import os
import sys
import time
import urllib.request

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clients"))
import harness  # noqa: E402

BATCHES = [(2, 19, 512, 1024), (4, 4, 512, 512)]
SEED = 20261207
RTOL = 1e-5

SPEC = {
    "prediction": {"format": "npy", "part": "pred"},
    "target": {"format": "npy", "part": "mask"},
    "prediction_type": "logits",
    "losses": [{"name": "cross_entropy"}, {"name": "dice", "smooth": 0}],
    "metrics": ["dice", "iou"],
}


def make_batch(rng, n, c, h, w):
    """Targets in blobs of 32 x 32 pixels (a class per blob), logits normal(0, 2) with the
    target class 2 ahead: a model that is right about two times in three."""
    blobs = rng.integers(0, c, (n, h // 32, w // 32), dtype=np.uint8)
    target = np.repeat(np.repeat(blobs, 32, axis=1), 32, axis=2)
    logits = rng.normal(0.0, 2.0, (n, c, h, w)).astype(np.float32)
    np.put_along_axis(
        logits, target[:, None].astype(np.int64),
        np.take_along_axis(logits, target[:, None].astype(np.int64), 1) + 2.0, 1)
    return logits, target


def npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a))
    return buf.getvalue()


def multipart(parts):
    """A multipart/form-data body of (name, content type, bytes) parts and its boundary."""
    boundary = "segloss-mc-compare-7f3a9c"
    out = io.BytesIO()
    for name, ctype, data in parts:
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                   "Content-Type: %s\r\n\r\n" % (boundary, name, name, ctype)).encode("ascii"))
        out.write(data)
        out.write(b"\r\n")
    out.write(("--%s--\r\n" % boundary).encode("ascii"))
    return out.getvalue(), boundary


def seglossd_score(url, body, boundary, reps):
    """Best wall time (s), best elapsed_ms, and the last answer of reps POSTs."""
    best_wall, best_ms, answer = 1e30, 1e30, None
    for _ in range(reps):
        req = urllib.request.Request(
            url + "/v1/score", data=body, method="POST",
            headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=300) as r:
            raw = r.read()
        wall = time.perf_counter() - t0
        answer = json.loads(raw)
        best_wall = min(best_wall, wall)
        best_ms = min(best_ms, answer["elapsed_ms"])
    return best_wall, best_ms, answer


def torch_score(logits, target):
    """The same values with PyTorch: CE (batch mean), soft dice (per image and class, mean over
    classes, then images), hard dice and iou per image and class (0/0 -> 1, segloss's
    empty "one")."""
    x = torch.from_numpy(logits)
    t = torch.from_numpy(target).long()
    c = x.shape[1]
    ce = F.cross_entropy(x, t)
    p = torch.softmax(x, 1)
    oh = F.one_hot(t, c).permute(0, 3, 1, 2).to(p.dtype)
    dims = (2, 3)
    spy = (p * oh).sum(dims)
    sp = p.sum(dims)
    sy = oh.sum(dims)
    soft_dice = (1 - 2 * spy / (sp + sy)).mean(1).mean()
    h = F.one_hot(x.argmax(1), c).permute(0, 3, 1, 2).to(torch.int64)
    ohi = oh.to(torch.int64)
    tp = (h * ohi).sum(dims)
    fp = h.sum(dims) - tp
    fn = ohi.sum(dims) - tp
    tp, fp, fn = tp.double(), fp.double(), fn.double()
    dice = torch.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), torch.ones_like(tp))
    iou = torch.where(tp + fp + fn > 0, tp / (tp + fp + fn), torch.ones_like(tp))
    return {"cross_entropy": float(ce), "dice_loss": float(soft_dice),
            "dice": dice.numpy(), "iou": iou.numpy()}


def close(a, b):
    return abs(a - b) <= RTOL * abs(b) + 1e-12


def check(ans, want):
    """Names of the values that differ beyond RTOL (empty: all agree)."""
    bad = []
    if not close(ans["losses"]["cross_entropy"]["value"], want["cross_entropy"]):
        bad.append("cross_entropy %r vs %r" % (ans["losses"]["cross_entropy"]["value"],
                                               want["cross_entropy"]))
    if not close(ans["losses"]["dice"]["value"], want["dice_loss"]):
        bad.append("dice loss %r vs %r" % (ans["losses"]["dice"]["value"], want["dice_loss"]))
    for m in ("dice", "iou"):
        got = np.array(ans["metrics"][m]["per_image"], dtype=np.float64)
        if got.shape != want[m].shape or not np.allclose(got, want[m], rtol=RTOL, atol=1e-12):
            bad.append("metric %s per image and class" % m)
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(SEED)
    srv = harness.Server(args.seglossd)
    failed = False
    rows = []
    try:
        for n, c, h, w in BATCHES:
            logits, target = make_batch(rng, n, c, h, w)
            spec = dict(SPEC)
            body, boundary = multipart([
                ("spec", "application/json", json.dumps(spec).encode("ascii")),
                ("pred", "application/octet-stream", npy_bytes(logits)),
                ("mask", "application/octet-stream", npy_bytes(target)),
            ])
            wall, ms, ans = seglossd_score(srv.url, body, boundary, args.reps)
            best_t, want = 1e30, None
            for _ in range(args.reps):
                t0 = time.perf_counter()
                want = torch_score(logits, target)
                best_t = min(best_t, time.perf_counter() - t0)
            bad = check(ans, want)
            failed = failed or bool(bad)
            for b in bad:
                print("DIFFERS %dx%dx%dx%d: %s" % (n, c, h, w, b))
            rows.append((n, c, h, w, best_t * 1e3, ms, wall * 1e3, len(body) / 2**20))
    finally:
        srv.stop()
    print("multiclass, float32 logits as uncompressed .npy (multipart), CE + soft dice + hard "
          "dice/iou;\nPyTorch %s on 1 thread; best of %d; values agree within %g: %s"
          % (torch.__version__, args.reps, RTOL, "no" if failed else "yes"))
    print("%-22s %8s %12s %12s %12s %12s %10s" % ("batch", "MiB", "PyTorch ms",
                                                  "elapsed_ms", "wall ms", "Mpix/s elap",
                                                  "ratio"))
    for n, c, h, w, tt, ms, wall, mib in rows:
        print("%-22s %8.1f %12.1f %12.1f %12.1f %12.1f %9.1fx" % (
            "%d x %d x %d x %d" % (n, c, h, w), mib, tt, ms, wall, n * h * w / ms / 1e3,
            tt / ms))
    print("(ratio: PyTorch's time over elapsed_ms; the wall time adds the upload and parsing "
          "of the body)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
