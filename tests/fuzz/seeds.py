#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets from the golden cases.

Usage: seeds.py GOLDEN_DIR OUT_DIR. Creates OUT_DIR/<target>/ for spec, weightmap, npy, base64,
inflate, rle, multipart, jscan and the challenge targets (chal_config, chal_json, chal_parts,
chal_csv, chal_ids, chal_bundle), each file one input in the target's own framing (see the
targets). The corpora kept in tests/fuzz/corpus/ grow from these.
"""
import base64
import glob
import hashlib
import json
import os
import struct
import sys
import zlib

COMP = {"none": 0, "gzip": 1, "zlib": 2, "deflate": 3, "auto": 4, "zstd": 5}
# zstd frames written by the zstd tool (RFC 8878): b"hello" with its size and a checksum, and
# 300 bytes i % 7 without a size (piped); Python has no zstd in its standard library
ZSTD_HELLO = bytes.fromhex("28b52ffd045829000068656c6c6fa36d9f88")
ZSTD_300 = bytes.fromhex("28b52ffd00587500003800010203040506010022528b11")


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
    if comp == "zstd":
        raise zlib.error("zstd: no decoder here")
    wbits = {"gzip": 31, "zlib": 15, "deflate": -15, "auto": 47}[comp]
    return zlib.decompress(data, wbits)


def arrays(req):
    for key, val in req.items():
        if isinstance(val, dict) and "format" in val:
            yield key, val


def npy(descr, shape, data):
    """A .npy v1.0 file as NumPy writes it: the header dict padded with spaces and a newline to
    a multiple of 64 bytes (magic and lengths included)."""
    dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
    d = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    pad = 64 - (10 + len(d) + 1) % 64
    d += " " * (pad % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode() + data


def bundle(images):
    """A bundle (proto/challenge.h): magic, count, then (id, .npy file) in id order."""
    out = b"SLCBNDL1" + struct.pack("<I", len(images))
    for ident, f in sorted(images):
        out += struct.pack("<I", len(ident)) + ident + struct.pack("<Q", len(f)) + f
    return out


def challenge_seeds(out):
    """Hand-made seeds of the challenge targets: each form, and the configuration's keys."""
    cfg = {"title": "Lesions 2027", "description": "plain text",
           "spec": {"mode": "binary", "prediction_type": "labels",
                    "metrics": ["dice", {"name": "hausdorff", "percentile": 95, "as": "hd95"}]},
           "ranking": [{"key": "metrics.dice.mean", "order": "desc"},
                       {"key": "metrics.hd95.mean", "order": "asc"}],
           "columns": ["metrics.dice.mean", "metrics.hd95.mean", "metrics.dice.global"],
           "split": {"public_fraction": 0.3, "seed": 1},
           "quota": {"per_day": 5, "total": None, "concurrent": 1},
           "opens_at": None, "closes_at": "2027-06-30T23:59:59Z",
           "final_selections": 2, "keep": "best", "private_visible": False}
    put(out, "chal_config", json.dumps(cfg))
    put(out, "chal_config", json.dumps({
        "title": "t", "spec": {"mode": "multiclass", "losses": ["dice", {"name": "focal"}]},
        "ranking": [{"key": "losses.focal.value", "order": "asc"}],
        "split": {"public_ids": ["a", "b.png"]}, "quota": {"per_day": None, "total": 3},
        "opens_at": "2027-01-01T00:00:00.25+01:00", "closes_at": "2027-01-02T00:00:00z",
        "keep": "latest", "private_visible": True, "final_selections": 0}))
    put(out, "chal_config", '{"title": "x", "spec": {}, "ranking": [{"key": '
        '"metrics.iou.mean", "order": "desc"}]}')
    stack = {"format": "raw", "dtype": "uint8", "shape": [2, 2, 2],
             "data": base64.b64encode(bytes(range(8))).decode()}
    put(out, "chal_json", b"\x00" + json.dumps({"target": stack, "ids": ["b", "a"]}).encode())
    put(out, "chal_json", b"\x01" + json.dumps({"prediction": [[0.5, 1], [2, 3]],
                                                "note": "first try"}).encode())
    put(out, "chal_json", b"\x01" + json.dumps({"prediction": {"format": "rle", "shape": [2, 3, 4],
                                                "data": ["1 3", "-"]}}).encode())
    f1 = npy("|u1", (2, 2), bytes([1, 0, 0, 1]))
    f2 = npy("<f4", (3,), struct.pack("<3f", 0.5, 1.5, 2.5))
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    f2gz = gz.compress(f2) + gz.flush()
    put(out, "chal_parts", b"\x00img1\n" + f1 + b"\n--\nimg.2\n" + f2gz)
    put(out, "chal_parts", b"\x01a\n" + f1 + b"\n--\nnote\nhello")
    put(out, "chal_parts", b"\x01csv\nImageId,EncodedPixels\na,1 2\nb,\na,4 1\n--\nspec\n"
        b'{"shape": [2, 2]}\n--\nnote\nn')
    put(out, "chal_csv", b"\x01\x01ImageId,EncodedPixels\nimg1,1 2\n")
    put(out, "chal_csv", b"\x03\x04\xef\xbb\xbfimageid,encodedpixels\r\na,1 1 5 2\r\nb,\r\n"
        b"a,9 3\r\nc,-\r\n")
    put(out, "chal_ids", '["a", "b.png", "c_1-2"]')
    put(out, "chal_ids", '["a", "a"]')
    put(out, "chal_ids", '[]')
    put(out, "chal_bundle", bundle([(b"b", f1), (b"a", f2)]))
    put(out, "chal_bundle", bundle([(b"x", npy("<i8", (1, 1, 2), struct.pack("<2q", -1, 7)))]))


def main():
    golden, out = sys.argv[1], sys.argv[2]
    challenge_seeds(out)
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
        # the challenge JSON form: the case's arrays as a reference and as a submission
        if not weight_map and "target" in req and "prediction" in req and len(body) <= 65536:
            put(out, "chal_json", b"\x00" + json.dumps({"target": req["target"]}).encode())
            put(out, "chal_json", b"\x01" + json.dumps({"prediction": req["prediction"]}).encode())
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
    for target in ("inflate", "inflate_all"):
        put(out, target, struct.pack("<BH", 5, 5) + ZSTD_HELLO)
        put(out, target, struct.pack("<BH", 5, 300) + ZSTD_300)
        put(out, target, struct.pack("<BH", 5, 300) + ZSTD_300 + ZSTD_HELLO)  # two frames
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
