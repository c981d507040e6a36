#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the golden cases.

Usage: seeds.py GOLDEN_DIR OUT_DIR. Creates OUT_DIR/<target>/ for spec, weightmap, npy, base64,
inflate, rle, multipart and jscan, each file one input in the target's own framing (see the
targets).
"""
import base64
import glob
import hashlib
import json
import os
import struct
import sys
import zlib

COMP = {"none": 0, "gzip": 1, "zlib": 2, "deflate": 3, "auto": 4}


def put(out, target, blob):
    if isinstance(blob, str):
        blob = blob.encode()
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(blob).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


def inflate(comp, data):
    if comp == "none":
        return data
    wbits = {"gzip": 31, "zlib": 15, "deflate": -15, "auto": 47}[comp]
    return zlib.decompress(data, wbits)


def arrays(req):
    for key, val in req.items():
        if isinstance(val, dict) and "format" in val:
            yield key, val


def main():
    golden, out = sys.argv[1], sys.argv[2]
    for path in sorted(glob.glob(os.path.join(golden, "*.json"))):
        with open(path) as f:
            case = json.load(f)
        req = case.get("request")
        if not isinstance(req, dict):
            continue
        body = json.dumps(req)
        weight_map = "weight_map" in (case.get("expect") or {})
        put(out, "weightmap" if weight_map else "spec", body)
        if len(body) <= 65536:
            put(out, "jscan", body)
        parts = {}
        spec = dict(req)
        for key, arr in arrays(req):
            fmt = arr.get("format")
            if fmt in ("rle", "coco_rle"):
                put(out, "rle", b"\x02" + json.dumps(arr).encode())
                continue
            data = arr.get("data")
            if fmt not in ("npy", "raw") or not isinstance(data, str):
                continue
            if len(data) <= 4096:
                put(out, "base64", b"\xff" + data.encode())
            try:
                raw = base64.b64decode(data, validate=True)
            except ValueError:
                continue
            comp = arr.get("compression", "none")
            try:
                plain = inflate(comp, raw)
            except zlib.error:
                continue
            if len(plain) < 65536 and comp in COMP:
                put(out, "inflate", struct.pack("<BH", COMP[comp], len(plain)) + raw)
            if fmt == "npy":
                put(out, "npy", plain[:512])
            moved = {k: v for k, v in arr.items() if k != "data"}
            moved["part"] = key
            spec[key] = moved
            parts[key] = raw
        if parts and not weight_map:
            blob = b"spec\n" + json.dumps(spec).encode()
            for name, raw in parts.items():
                blob += b"\n--\n" + name.encode() + b"\n" + raw
            put(out, "multipart", blob)
    # a few hand-made seeds for the decoders the golden cases reach rarely
    put(out, "rle", b'\x00{"shape": [2, 4, 5], "data": ["1 3 10 2", ""]}')
    put(out, "rle", b'\x01{"data": [{"size": [4, 5], "counts": [0, 3, 17]}]}')
    put(out, "rle", b'\x01{"data": [{"size": [4, 5], "counts": "P:"}]}')
    put(out, "base64", b"\x10QUJDRA==")
    put(out, "inflate", struct.pack("<BH", 2, 5) + zlib.compress(b"hello"))
    put(out, "inflate", struct.pack("<BH", 1, 3) + b"\x1f\x8b")
    # long "data"/"counts" strings, the ones the skeleton leaves out of jansson's parse: plain,
    # with every kind of escape, in lists, nested, next to a \u0000 and to bad UTF-8
    b64 = base64.b64encode(bytes(range(200))).decode()
    put(out, "jscan", json.dumps({"prediction": {"format": "raw", "data": b64}}))
    put(out, "jscan", '{"p": {"data": "%s\\/\\n\\u00e9\\u20ac\\"%s"}}' % (b64[:80], b64[:80]))
    put(out, "jscan", '{"t": {"data": ["%s", ["%s"], {"counts": "%s"}]}}' % (b64[:70], b64, b64))
    put(out, "jscan", '{"a": "\\u0000", "b": {"data": "%s"}}' % b64)
    put(out, "jscan", b'{"b": {"data": "' + b64.encode() + b'\xff"}}')
    put(out, "jscan", '{"b": {"data": "%s\\ud83d\\ude00"}, "c": {"data": "%s"}}' % (b64, b64))
    put(out, "rle", b'\x00{"shape": [4, 40], "data": "' + b" ".join(
        b"%d 2" % (1 + 8 * k) for k in range(20)) + b'"}')


if __name__ == "__main__":
    main()
