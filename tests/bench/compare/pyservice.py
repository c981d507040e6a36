#!/usr/bin/python3
"""The service a Python team would deploy instead of seglossd: FastAPI + PyTorch.

It answers POST /v1/score for the binary subset of segloss's spec that the comparison uses
(npy arrays, optionally gzip/zlib, base64 in JSON; logits; losses cross_entropy, dice, focal;
metrics dice, iou) with a response shaped like segloss's (losses[k].value/per_image,
metrics[k].mean/global/per_image/undefined), so the two can be compared number by number
and both do the same amount of work per request (per-image lists included).

Definitions follow segloss's README / GET /v1/catalog, because the comparison is only fair if
both compute the same thing:
  cross_entropy  mean over all pixels of binary_cross_entropy_with_logits (stable form)
  focal          -(a (1-p)^g y log p + (1-a) p^g (1-y) log(1-p)), a=0.25, g=2 by default
                 (torchvision sigmoid_focal_loss form); image value = mean over its pixels,
                 batch value = mean over all pixels
  dice           per image 1 - (2 tp + smooth) / (sum p + sum y + smooth), soft p = sigmoid(x),
                 smooth 0 by default; a 0 denominator is loss 0; batch value = mean of images
  metrics        hard prediction sigmoid(x) >= threshold; dice 2TP/(2TP+FP+FN), iou
                 TP/(TP+FP+FN); 0/0 (both masks empty) scores 1; mean over images, global
                 from the counts summed over the batch

Written the way a competent team would write it, not a straw man: pydantic models for the body,
vectorised torch on the whole [N, H*W] batch (no Python loop over pixels or images), float32
like the model that produced the logits, one torch thread (torch.set_num_threads(1)) because
uvicorn runs one worker per core in production and intra-op threads would fight over cores.
The endpoint is a plain `def`, so FastAPI runs it in its thread pool: torch and zlib release
the GIL, so the event loop keeps reading the next request's body while one is computed.

Serve:   /usr/bin/python3 -m uvicorn --app-dir DIR pyservice:app --port P --workers 1
Timing:  /usr/bin/python3 pyservice.py --time BODY.json [--repeat 20]
         prints the in-process time of decoding and of the losses + metrics (no HTTP).
"""
import base64
import binascii
import gzip
import io
import json
import sys
import time
import zlib
from typing import List, Literal, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Extra, Field

torch.set_num_threads(1)


# ---- request body ------------------------------------------------------------------------------

class Strict(BaseModel):
    class Config:
        extra = Extra.forbid  # segloss answers 422 to unknown keys; so does this service


class NpyArray(Strict):
    format: Literal["npy"]
    compression: Literal["none", "gzip", "zlib", "auto"] = "none"
    data: str


class LossSpec(Strict):
    name: Literal["cross_entropy", "dice", "focal"]
    as_: Optional[str] = Field(None, alias="as")
    # focal (segloss catalog defaults)
    alpha: Optional[float] = Field(0.25, ge=0, le=1)
    gamma: float = Field(2.0, ge=0)
    # dice
    smooth: float = Field(0.0, ge=0)


class MetricSpec(Strict):
    name: Literal["dice", "iou"]
    as_: Optional[str] = Field(None, alias="as")


class ScoreRequest(Strict):
    prediction: NpyArray
    target: NpyArray
    mode: Literal["binary"] = "binary"
    prediction_type: Literal["logits"] = "logits"
    threshold: float = Field(0.5, gt=0, lt=1)
    losses: List[LossSpec] = []
    metrics: List[Union[Literal["dice", "iou"], MetricSpec]] = ["dice", "iou"]


def decode(a: NpyArray, what: str) -> np.ndarray:
    """base64 -> (gzip | zlib) -> np.load; malformed input is a 400 naming the array."""
    try:
        raw = base64.b64decode(a.data, validate=True)
        comp = a.compression
        if comp == "auto":
            comp = "gzip" if raw[:2] == b"\x1f\x8b" else "zlib"
        if comp == "gzip":
            raw = gzip.decompress(raw)
        elif comp == "zlib":
            raw = zlib.decompress(raw)
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (binascii.Error, OSError, EOFError, zlib.error, ValueError) as e:
        raise HTTPException(400, f"{what}: {e}") from None


# ---- scoring -----------------------------------------------------------------------------------

def _ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num/den with 0/0 = 1 (segloss's "empty": "one"; den is 0 only when both masks are
    empty, i.e. FP = FN = 0, so the prediction is perfect)."""
    return torch.where(den > 0, num / den.clamp_min(1), torch.ones_like(num))


def score(pred: np.ndarray, target: np.ndarray, req: ScoreRequest) -> dict:
    if pred.ndim == 4 and pred.shape[1] == 1:  # [N, 1, H, W] is binary too
        pred = pred[:, 0]
    if target.ndim == 4 and target.shape[1] == 1:
        target = target[:, 0]
    if pred.ndim != 3 or pred.shape != target.shape:
        raise HTTPException(422, f"shapes {list(pred.shape)} and {list(target.shape)}: "
                                 "this service takes binary [N, H, W] only")
    n = pred.shape[0]
    x = torch.from_numpy(pred).reshape(n, -1).float()
    y8 = torch.from_numpy(target).reshape(n, -1)
    # The same input checks segloss makes (it would be unfair to skip them).
    if not bool(torch.isfinite(x).all()):
        raise HTTPException(422, "prediction contains NaN or inf")
    if bool((y8 > 1).any()) or bool((y8 < 0).any()):
        raise HTTPException(422, "target values must be 0 or 1")
    y = y8.float()
    yb = y8.bool()

    out = {"mode": "binary", "images": n, "classes": 1, "shape": list(pred.shape[1:]),
           "losses": {}, "metrics": {}}

    # Computed once and shared by the losses that need it.
    p = torch.sigmoid(x)
    ce = None

    for spec in req.losses:
        key = spec.as_ or spec.name
        if key in out["losses"]:
            raise HTTPException(422, f"duplicate key {key!r}")
        if spec.name in ("cross_entropy", "focal") and ce is None:
            ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        if spec.name == "cross_entropy":
            per_pixel = ce
        elif spec.name == "focal":
            # torchvision.ops.sigmoid_focal_loss, written out (torchvision is not in Debian's
            # python3-torch): ce * (1 - p_t)^gamma * alpha_t
            p_t = p * y + (1 - p) * (1 - y)
            per_pixel = ce * (1 - p_t) ** spec.gamma
            if spec.alpha is not None:
                per_pixel = per_pixel * (spec.alpha * y + (1 - spec.alpha) * (1 - y))
        if spec.name in ("cross_entropy", "focal"):
            # every image has the same pixel count, so the batch mean is the mean of images
            per_image = per_pixel.mean(dim=1)
            value = per_image.mean()
        else:  # soft dice per image, mean over images
            tp = (p * y).sum(dim=1)
            den = p.sum(dim=1) + y.sum(dim=1) + spec.smooth
            per_image = torch.where(den > 0, 1 - (2 * tp + spec.smooth) / den.clamp_min(1e-30),
                                    torch.zeros_like(den))
            value = per_image.mean()
        out["losses"][key] = {"value": value.item(), "per_image": per_image.tolist()}

    if req.metrics:
        hard = p >= req.threshold
        tp = (hard & yb).sum(dim=1, dtype=torch.int64).double()
        fp = (hard & ~yb).sum(dim=1, dtype=torch.int64).double()
        fn = (~hard & yb).sum(dim=1, dtype=torch.int64).double()
        TP, FP, FN = tp.sum(), fp.sum(), fn.sum()
        for m in req.metrics:
            name = m if isinstance(m, str) else m.name
            key = m if isinstance(m, str) else (m.as_ or m.name)
            if key in out["metrics"]:
                raise HTTPException(422, f"duplicate key {key!r}")
            if name == "dice":
                per_image, glob = _ratio(2 * tp, 2 * tp + fp + fn), _ratio(2 * TP, 2 * TP + FP + FN)
            else:
                per_image, glob = _ratio(tp, tp + fp + fn), _ratio(TP, TP + FP + FN)
            out["metrics"][key] = {"mean": per_image.mean().item(), "global": glob.item(),
                                   "per_image": per_image.tolist(), "undefined": 0}
    return out


# ---- HTTP --------------------------------------------------------------------------------------

app = FastAPI(title="segloss-compare pyservice")


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/v1/score")
def v1_score(req: ScoreRequest):
    t0 = time.perf_counter()
    pred = decode(req.prediction, "prediction")
    target = decode(req.target, "target")
    out = score(pred, target, req)
    out["elapsed_ms"] = (time.perf_counter() - t0) * 1e3
    return out


# ---- in-process timing -------------------------------------------------------------------------

def _time_main(argv):
    """Time decode and scoring without HTTP, best and median of --repeat runs, one thread."""
    import argparse
    import statistics

    ap = argparse.ArgumentParser(prog="pyservice.py --time")
    ap.add_argument("--time", metavar="BODY.json", required=True)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args(argv)
    with open(args.time, "rb") as f:
        body = f.read()

    def timed(fn, reps):
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            r = fn()
            ts.append((time.perf_counter() - t0) * 1e3)
        return r, min(ts), statistics.median(ts)

    req, p_best, p_med = timed(lambda: ScoreRequest.parse_obj(json.loads(body)), args.repeat)
    (pred, target), d_best, d_med = timed(
        lambda: (decode(req.prediction, "prediction"), decode(req.target, "target")), args.repeat)
    _, s_best, s_med = timed(lambda: score(pred, target, req), args.repeat)
    losses_only = req.copy(update={"metrics": []})
    _, l_best, l_med = timed(lambda: score(pred, target, losses_only), args.repeat)
    npix = pred.size
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"prediction {list(pred.shape)} {pred.dtype}, best/median of {args.repeat}:")
    print(f"  json.loads + pydantic       {p_best:8.2f} / {p_med:8.2f} ms")
    print(f"  base64 + gzip + np.load     {d_best:8.2f} / {d_med:8.2f} ms")
    print(f"  checks + ce, dice, focal    {l_best:8.2f} / {l_med:8.2f} ms"
          f"  ({npix / l_best / 1e3:.1f} Mpix/s)")
    print(f"  losses + metrics            {s_best:8.2f} / {s_med:8.2f} ms"
          f"  ({npix / s_best / 1e3:.1f} Mpix/s)")


if __name__ == "__main__":
    if "--time" in sys.argv[1:]:
        _time_main(sys.argv[1:])
    else:
        sys.exit(__doc__)
