#!/usr/bin/python3
"""Write the request bodies that seglossd and pyservice.py are both benchmarked with.

Usage: /usr/bin/python3 payload.py OUTDIR

Writes, into OUTDIR:
  small.json  1 x 64 x 64   float32 logits + uint8 mask  (about 22 KiB of JSON)
  large.json  8 x 512 x 512 float32 logits + uint8 mask  (about 10 MiB of JSON)
  edge.json   2 x 32 x 32: one ordinary image and one with an empty target and a
              confidently empty prediction; used only by the agreement check, because
              it exercises the 0/0 ("empty") convention of the hard metrics
  post.lua    the wrk script: POSTs the file named by $BODY_FILE as application/json

Every body is the same spec, the one segloss's README shows from Python: arrays as
{"format": "npy", "compression": "gzip", "data": <base64>} (the spec has no "encoding" key:
npy data in JSON is always base64, and the server's strict parser would answer 422 to an
unknown key), logits, losses cross_entropy + dice + focal, metrics dice + iou.
The parameters segloss would default are spelled out anyway, so that the spec documents
exactly what both services compute, and pyservice.py is checked to honour them.
"""
import base64
import gzip
import io
import json
import os
import sys

import numpy as np

SEED = 20240611  # fixed: every run sends byte-identical bodies

# The scoring spec shared by both services. focal alpha 0.25 / gamma 2 and dice smooth 0
# are segloss's catalog defaults (GET /v1/catalog); threshold 0.5 is the API default.
SPEC = {
    "prediction_type": "logits",
    "threshold": 0.5,
    "losses": [
        {"name": "cross_entropy"},
        {"name": "dice", "smooth": 0},
        {"name": "focal", "alpha": 0.25, "gamma": 2},
    ],
    "metrics": ["dice", "iou"],
}


def npy_gzip_b64(a):
    """The README's client helper: .npy bytes, gzip level 1 (what a client that cares about
    its own latency would pick; random float32 barely compresses at any level), base64."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a))
    return base64.b64encode(gzip.compress(buf.getvalue(), 1)).decode("ascii")


def body(logits, target):
    spec = {
        "prediction": {"format": "npy", "compression": "gzip", "data": npy_gzip_b64(logits)},
        "target": {"format": "npy", "compression": "gzip", "data": npy_gzip_b64(target)},
    }
    spec.update(SPEC)
    return json.dumps(spec, separators=(",", ":")).encode("ascii")


def model_like(rng, n, h, w):
    """A mask with ~30% foreground and logits normal(0, 3) nudged towards it, so that the
    metrics land somewhere a real model would (dice ~0.6), not at chance."""
    target = (rng.random((n, h, w)) < 0.3).astype(np.uint8)
    logits = (rng.normal(0.0, 3.0, (n, h, w)) + 2.0 * (2.0 * target - 1.0)).astype(np.float32)
    return logits, target


LUA = """\
-- wrk script: POST the body in $BODY_FILE with Content-Type: application/json.
-- Read once per wrk thread at load time; wrk then reuses the same request bytes, so
-- the client spends no time building requests. Status codes are not checked here:
-- wrk prints "Non-2xx or 3xx responses: N" itself and run.sh fails on any.
local path = os.getenv("BODY_FILE")
if path == nil then error("BODY_FILE is not set") end
local f = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
"""


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: payload.py OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(SEED)

    small = body(*model_like(rng, 1, 64, 64))
    large = body(*model_like(rng, 8, 512, 512))

    logits, target = model_like(rng, 2, 32, 32)
    target[1] = 0
    logits[1] = -20.0  # predicts nothing where there is nothing: hard metrics are 0/0
    edge = body(logits, target)

    for name, data in (("small.json", small), ("large.json", large), ("edge.json", edge)):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    with open(os.path.join(out, "post.lua"), "w") as f:
        f.write(LUA)


if __name__ == "__main__":
    main()
