#!/usr/bin/python3
"""Write the bodies of tests/bench/wire/run.sh into OUTDIR (default .): the 8 x 512 x 512 binary
request of make bench-compare (payload.py's seed, spec and model-like logits) as
  f32_npy.json   float32 logits rounded to bfloat16 values, uncompressed .npy
  f16_npy.json   the same values as float16 .npy ('<f2')
  bf16_raw.json  the same values as raw bfloat16 bytes (NumPy has no bfloat16)
  plain.json.gz  the unrounded float32 logits as plain .npy, the whole body gzip level 1
                 (sent with Content-Encoding: gzip)
  city.json      2 x 19 x 512 x 1024 float32 logits (.npy), multiclass CE + Dice
  city.multipart the same arrays and spec as multipart/form-data parts (spec, pred, mask;
                 boundary BOUNDARY below)
Usage: /usr/bin/python3 bodies.py [OUTDIR]"""
import base64
import gzip
import io
import json
import os
import sys

import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else "."
rng = np.random.default_rng(20240611)
target = (rng.random((8, 512, 512)) < 0.3).astype(np.uint8)
logits = (rng.normal(0.0, 3.0, (8, 512, 512)) + 2.0 * (2.0 * target - 1.0)).astype(np.float32)
SPEC = {"prediction_type": "logits", "threshold": 0.5,
        "losses": [{"name": "cross_entropy"}, {"name": "dice", "smooth": 0}, {"name": "focal", "alpha": 0.25, "gamma": 2}],
        "metrics": ["dice", "iou"]}
def npy(a):
    b = io.BytesIO(); np.save(b, np.ascontiguousarray(a)); return base64.b64encode(b.getvalue()).decode()
def raw(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()
def body(pred):
    d = {"prediction": pred, "target": {"format": "npy", "data": npy(target)}}; d.update(SPEC)
    return json.dumps(d, separators=(",", ":")).encode()
# bfloat16 by round to nearest even of the float32 bits
u = logits.view(np.uint32).astype(np.uint64)
bf = ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)
bf[np.abs((bf.astype(np.uint32) << 16).view(np.float32)) < 2.0**-14] = 0
xr = (bf.astype(np.uint32) << 16).view(np.float32)   # the bfloat16 values as float32
f16 = xr.astype(np.float16)   # |x| < 20: bf16 values (8 bits) are exact in float16
assert (f16.astype(np.float32) == xr).all()  # the three bodies carry the same values
bodies = {
  "f32_npy.json": body({"format": "npy", "data": npy(xr)}),
  "f16_npy.json": body({"format": "npy", "data": npy(f16)}),
  "bf16_raw.json": body({"format": "raw", "dtype": "bfloat16", "shape": [8, 512, 512], "data": raw(bf)}),
}
for k, v in bodies.items():
    open(os.path.join(out, k), "wb").write(v)
plain = body({"format": "npy", "data": npy(logits)})
open(os.path.join(out, "plain.json.gz"), "wb").write(gzip.compress(plain, 1))
rng = np.random.default_rng(1)
x = rng.normal(0, 2, (2, 19, 512, 1024)).astype(np.float32)
t = rng.integers(0, 19, (2, 512, 1024)).astype(np.uint8)
city = {"prediction": {"format": "npy", "data": npy(x)}, "target": {"format": "npy", "data": npy(t)},
        "prediction_type": "logits", "losses": [{"name": "cross_entropy"}, {"name": "dice"}],
        "metrics": ["dice", "iou"]}
open(os.path.join(out, "city.json"), "w").write(json.dumps(city))
BOUNDARY = "segloss-wire-bench-7f3a9c"
def npy_bytes(a):
    b = io.BytesIO(); np.save(b, np.ascontiguousarray(a)); return b.getvalue()
spec = dict(city, prediction={"format": "npy", "part": "pred"}, target={"format": "npy", "part": "mask"})
parts = [("spec", json.dumps(spec).encode()), ("pred", npy_bytes(x)), ("mask", npy_bytes(t))]
with open(os.path.join(out, "city.multipart"), "wb") as f:
    for name, data in parts:
        f.write(b"--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data; name=\"" + name.encode() + b"\"\r\n\r\n")
        f.write(data + b"\r\n")
    f.write(b"--" + BOUNDARY.encode() + b"--\r\n")
