#!/usr/bin/python3
"""Write the request bodies that seglossd and pyservice.py are both benchmarked with.

Usage: /usr/bin/python3 payload.py OUTDIR

Writes, into OUTDIR:
  small.json  1 x 64 x 64   float32 logits + uint8 mask  (about 22 KiB of JSON)
  large.json  8 x 512 x 512 float32 logits + uint8 mask  (about 10 MiB of JSON)
  large_none.json, large_zstd.json  the same 8 x 512 x 512 arrays uncompressed and as zstd
              level 1 frames (seglossd only: the Python service reads gzip and zlib; run.sh
              checks that seglossd answers them exactly as large.json)
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
import ctypes
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


def zstd1(data):
    """One zstd frame at level 1 with its content size, as segloss's clients send it: the
    zstandard module when it is here, else libzstd.so.1 (ZSTD_compress) through ctypes."""
    try:
        import zstandard

        return zstandard.ZstdCompressor(level=1, write_content_size=True).compress(data)
    except ImportError:
        lib = ctypes.CDLL("libzstd.so.1")
        lib.ZSTD_compressBound.restype = ctypes.c_size_t
        lib.ZSTD_compressBound.argtypes = [ctypes.c_size_t]
        lib.ZSTD_compress.restype = ctypes.c_size_t
        lib.ZSTD_compress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p,
                                      ctypes.c_size_t, ctypes.c_int]
        lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
        cap = lib.ZSTD_compressBound(len(data))
        out = ctypes.create_string_buffer(cap)
        n = lib.ZSTD_compress(out, cap, data, len(data), 1)
        if lib.ZSTD_isError(n):
            sys.exit("payload.py: ZSTD_compress failed")
        return out.raw[:n]


def npy_b64(a, compression):
    """.npy bytes, compressed as named (gzip: npy_gzip_b64's level 1), base64."""
    if compression == "gzip":
        return npy_gzip_b64(a)
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a))
    data = zstd1(buf.getvalue()) if compression == "zstd" else buf.getvalue()
    return base64.b64encode(data).decode("ascii")


def body(logits, target, compression="gzip"):
    spec = {
        "prediction": {"format": "npy", "compression": compression,
                       "data": npy_b64(logits, compression)},
        "target": {"format": "npy", "compression": compression,
                   "data": npy_b64(target, compression)},
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
    large_arrays = model_like(rng, 8, 512, 512)
    large = body(*large_arrays)
    large_none = body(*large_arrays, compression="none")
    large_zstd = body(*large_arrays, compression="zstd")

    logits, target = model_like(rng, 2, 32, 32)
    target[1] = 0
    logits[1] = -20.0  # predicts nothing where there is nothing: hard metrics are 0/0
    edge = body(logits, target)

    for name, data in (("small.json", small), ("large.json", large), ("edge.json", edge),
                       ("large_none.json", large_none), ("large_zstd.json", large_zstd)):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    with open(os.path.join(out, "post.lua"), "w") as f:
        f.write(LUA)


if __name__ == "__main__":
    main()
