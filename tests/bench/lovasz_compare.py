"""lovasz_compare.py - Lovász-Softmax on a Cityscapes-like batch (1 x 19 x 512 x 1024 float32
logits, an uncompressed .npy part): seglossd's elapsed_ms against PyTorch on one thread, in one
run (make bench-lovasz). Figures, not a pass/fail test; the values must agree first.

The PyTorch side is Berman, Triki & Blaschko's reference, bermanmaxim/LovaszSoftmax
pytorch/lovasz_losses.py, function lovasz_softmax (with lovasz_softmax_flat and lovasz_grad),
written out below in a few lines of our own (lovasz_softmax_torch). With --reference PATH (that
file, which this repository does not carry) the script first checks that the transcription
equals the reference on a small batch, and then times the reference itself; without it, it
times the transcription (the same tensor operations).

The torch time is softmax + Lovász-Softmax, both in float32 on one thread (what a training
script computes from logits), and the Lovász part alone, each the best of --repeat calls. Beside
the wall times the script prints CPU times (torch: the process's; seglossd: every thread's, from
/proc/PID/task/*/schedstat, over one request including its HTTP receive): on a busy machine the
wall times vary, the CPU times much less. The agreement check runs the
transcription in float64 on float64 softmax probabilities; seglossd sorts and sums in double
on float32 probabilities, so the two agree to about 1e-7 relative; the check allows 1e-5.

Usage: /usr/bin/python3 tests/bench/lovasz_compare.py [--seglossd build/seglossd]
       [--reference lovasz_losses.py] [--threads 1] [--repeat 3]
Python 3 with numpy and torch (Debian python3-torch)."""

import argparse
import importlib.util
import io
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "clients"))
import harness  # noqa: E402

SEED = 20261207
N, C, H, W = 1, 19, 512, 1024
RTOL = 1e-5


def lovasz_softmax_torch(probs, labels, classes="present", per_image=False):
    """Berman et al.'s lovasz_softmax (pytorch/lovasz_losses.py) of probs [N, C, H, W] and
    labels [N, H, W], no ignore: per class, the errors |fg - p_c| sorted in decreasing order,
    the gradient of the Lovász extension of the Jaccard loss at the sorted labels (from the
    cumulative sums of fg and 1 - fg), dotted with the sorted errors; the mean over the
    classes (only those present in the labels when classes is "present"; 0 when none), over
    the batch pooled, or per image and then the mean over images."""
    if per_image:
        vals = [lovasz_softmax_torch(probs[i:i + 1], labels[i:i + 1], classes) for i in
                range(probs.shape[0])]
        return sum(vals) / len(vals)
    p = probs.permute(0, 2, 3, 1).reshape(-1, probs.shape[1])
    y = labels.reshape(-1)
    losses = []
    for c in range(p.shape[1]):
        fg = (y == c).to(p.dtype)
        if classes == "present" and fg.sum() == 0:
            continue
        err, order = torch.sort((fg - p[:, c]).abs(), descending=True)
        fgs = fg[order]
        pos = fgs.sum()
        jac = 1.0 - (pos - fgs.cumsum(0)) / (pos + (1.0 - fgs).cumsum(0))
        grad = torch.cat((jac[:1], jac[1:] - jac[:-1]))
        losses.append(torch.dot(err, grad))
    return sum(losses) / len(losses) if losses else torch.zeros((), dtype=p.dtype)


def load_reference(path):
    spec = importlib.util.spec_from_file_location("lovasz_reference", path)
    mod = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():  # its `classes is 'present'`
        warnings.simplefilter("ignore", SyntaxWarning)
        spec.loader.exec_module(mod)
    return mod


def check_reference(ref):
    """The transcription against the reference file on small batches (float32: the reference
    computes its gradient in float32), both class rules, pooled and per image; returns the
    largest relative difference."""
    rng = np.random.default_rng(SEED + 1)
    worst = 0.0
    for shape in ((2, 5, 13, 17), (3, 4, 8, 9)):
        n, c, h, w = shape
        logits = torch.from_numpy(rng.normal(0, 2, shape).astype(np.float32))
        labels = torch.from_numpy(rng.integers(0, c - 1, (n, h, w)))  # class c-1 absent
        probs = F.softmax(logits, dim=1)
        for classes in ("present", "all"):
            for per_image in (False, True):
                a = float(lovasz_softmax_torch(probs, labels, classes, per_image))
                b = float(ref.lovasz_softmax(probs, labels, classes=classes, per_image=per_image))
                worst = max(worst, abs(a - b) / max(abs(b), 1e-300))
    return worst


def cityscapes_like(rng):
    """Labels as 16 x 16 tiles of 16 of the 19 classes (classes 16..18 absent, so "present"
    leaves them out), in skewed proportions; logits normal(0, 2) plus 4 on the labelled class,
    so the softmax is confident but not one-hot."""
    prob = np.arange(16, 0, -1, dtype=np.float64)
    tiles = rng.choice(16, size=(N, H // 16, W // 16), p=prob / prob.sum())
    labels = np.repeat(np.repeat(tiles, 16, axis=1), 16, axis=2).astype(np.uint8)
    logits = rng.normal(0.0, 2.0, (N, C, H, W)).astype(np.float32)
    np.put_along_axis(logits, labels[:, None].astype(np.int64),
                      np.take_along_axis(logits, labels[:, None].astype(np.int64), 1) + 4.0, 1)
    return logits, labels


def npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def multipart(spec, parts):
    """A multipart/form-data body: the spec part and one .npy part per array."""
    b = uuid.uuid4().hex
    out = [f'--{b}\r\nContent-Disposition: form-data; name="spec"\r\n'
           f'Content-Type: application/json\r\n\r\n'.encode() + json.dumps(spec).encode() + b"\r\n"]
    for name, data in parts.items():
        out.append(f'--{b}\r\nContent-Disposition: form-data; name="{name}"; '
                   f'filename="{name}.npy"\r\nContent-Type: application/octet-stream\r\n\r\n'
                   .encode() + data + b"\r\n")
    out.append(f"--{b}--\r\n".encode())
    return b"".join(out), "multipart/form-data; boundary=" + b


def score(url, body, ctype):
    req = urllib.request.Request(url + "/v1/score", data=body, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"lovasz_compare: seglossd answered {e.code}: {e.read()[:500]!r}")


def best_of(repeat, fn):
    """The least wall time and the least CPU time of repeat calls of fn (ms), and fn's last
    value."""
    best, cpu, val = float("inf"), float("inf"), None
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        val = fn()
        best = min(best, (time.perf_counter() - t0) * 1e3)
        cpu = min(cpu, (time.process_time() - c0) * 1e3)
    return best, cpu, val


def cpu_ns(pid):
    """CPU time of every thread of process pid so far (ns, Linux schedstat), or None."""
    try:
        total = 0
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        return total
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--reference", help="bermanmaxim/LovaszSoftmax pytorch/lovasz_losses.py")
    ap.add_argument("--threads", default="1,2", help="seglossd --threads values, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ref = None
    if args.reference:
        ref = load_reference(args.reference)
        d = check_reference(ref)
        print(f"transcription vs reference {args.reference}: max relative difference {d:.2e}")
        if d > 1e-6:
            sys.exit("lovasz_compare: the transcription does not equal the reference")
    lovasz = ref.lovasz_softmax if ref else lovasz_softmax_torch
    name = "reference lovasz_softmax" if ref else "transcription"

    rng = np.random.default_rng(SEED)
    logits, labels = cityscapes_like(rng)
    present = len(np.unique(labels))
    print(f"batch {N}x{C}x{H}x{W} float32 logits, {present} of {C} classes present, "
          f"torch {torch.__version__} on {torch.get_num_threads()} thread")
    lt, yt = torch.from_numpy(logits), torch.from_numpy(labels.astype(np.int64))
    p64 = F.softmax(lt.double(), dim=1)
    want = {pi: float(lovasz_softmax_torch(p64, yt, "present", pi)) for pi in (False, True)}
    del p64

    body_parts = {"pred": npy_bytes(logits), "mask": npy_bytes(labels)}
    ok = True
    rows = []
    p32 = F.softmax(lt, dim=1)
    for per_image in (False, True):
        t_lov, c_lov, v = best_of(
            args.repeat, lambda: float(lovasz(p32, yt, classes="present", per_image=per_image)))
        t_all, c_all, _ = best_of(args.repeat, lambda: float(
            lovasz(F.softmax(lt, dim=1), yt, classes="present", per_image=per_image)))
        rel32 = abs(v - want[per_image]) / abs(want[per_image])
        print(f"per_image {str(per_image).lower()}: float64 value {want[per_image]:.10f}; torch "
              f"float32 {name} {v:.10f} (rel {rel32:.1e}); softmax + lovasz {t_all:.0f} ms "
              f"(cpu {c_all:.0f}), lovasz alone {t_lov:.0f} ms (cpu {c_lov:.0f})")
        rows.append((per_image, t_all, t_lov, c_all))
    spec = {"prediction": {"format": "npy", "part": "pred"},
            "target": {"format": "npy", "part": "mask"},
            "mode": "multiclass", "prediction_type": "logits", "metrics": [], "per_image": False}
    for threads in [int(t) for t in args.threads.split(",")]:
        srv = harness.Server(args.seglossd, "--threads", str(threads))
        try:
            # the same body with no loss and no metric: what the request costs besides the loss
            spec["losses"] = []
            body, ctype = multipart(spec, body_parts)
            empty = min(score(srv.url, body, ctype)["elapsed_ms"] for _ in range(args.repeat + 1))
            print(f"seglossd --threads {threads}: the same body with no loss and no metric, "
                  f"elapsed_ms {empty:.1f}")
            for per_image, t_all, t_lov, c_all in rows:
                spec["losses"] = [{"name": "lovasz_softmax", "classes": "present",
                                   "per_image": per_image}]
                body, ctype = multipart(spec, body_parts)
                best, got, cpu = float("inf"), None, float("inf")
                for k in range(args.repeat + 1):  # the first warms the server's allocator
                    c0 = cpu_ns(srv.proc.pid)
                    ans = score(srv.url, body, ctype)
                    c1 = cpu_ns(srv.proc.pid)
                    got = ans["losses"]["lovasz_softmax"]["value"]
                    if k:
                        best = min(best, ans["elapsed_ms"])
                        if c0 is not None and c1 is not None:
                            cpu = min(cpu, (c1 - c0) / 1e6)
                rel = abs(got - want[per_image]) / abs(want[per_image])
                good = rel <= RTOL
                ok = ok and good
                print(f"seglossd --threads {threads} per_image {str(per_image).lower()}: "
                      f"{got:.10f} (rel {rel:.1e}{'' if good else ' > 1e-5: DISAGREES'}), "
                      f"elapsed_ms {best:.1f} (request cpu {cpu:.0f} ms); torch softmax + lovasz "
                      f"{t_all:.0f} ms = {t_all / best:.1f}x (cpu {c_all / cpu:.1f}x), lovasz "
                      f"alone {t_lov:.0f} ms = {t_lov / best:.1f}x")
        finally:
            srv.stop()
    if not ok:
        sys.exit("lovasz_compare: seglossd and the reference disagree")


if __name__ == "__main__":
    main()
