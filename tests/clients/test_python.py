#!/usr/bin/env python3
"""test_python.py - the Python client (clients/python/segloss/) against a real seglossd.

    python3 tests/clients/test_python.py --seglossd build/seglossd --golden tests/golden/cases

Every expected value comes from outside the client: the golden cases, the server's /metrics
counters and headers, or a socket the test itself listens on. Prints "ok"/"FAIL" lines and ends
with "python: N passed, M failed"; exits non-zero on a failure. SEGLOSS_TEST selects tests by
their names "clients/python/NAME" (tests/tally.py selected).

Python 3 standard library + numpy (Debian's python3-numpy)."""

import argparse
import base64
import ctypes
import email
import email.policy
import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import struct
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# SEGLOSS_PY_INSTALLED=1: the installed package (tests/clients/test_pypkg.py runs this file from
# a venv it installed it into), else the source tree's clients/python
if os.environ.get("SEGLOSS_PY_INSTALLED") != "1":
    sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))

import numpy as np  # noqa: E402

import harness  # noqa: E402
import segloss  # noqa: E402
print("segloss imported from", os.path.dirname(os.path.abspath(segloss.__file__)))
from test_cli import pooling_loss  # noqa: E402  (which losses pool a whole batch)

ARRAYS = ("prediction", "target", "weight", "instances")
QUEUE_FULL = 'segloss_rejections_total{reason="queue_full"}'


def decode(arr):
    """A golden array as numpy, or None when it is not one (rle forms, or bytes that do not
    decode: the err_ cases about bad encodings)."""
    try:
        return harness.to_numpy(arr)
    except Exception:
        return None


def tolerances(case):
    return case.get("rtol", 1e-5), case.get("atol", 1e-6)


def case_args(case):
    """(pred, target, kwargs for Client.score) of a /v1/score golden case, or None when an
    array does not decode to numpy."""
    req = case["request"]
    pred, target = decode(req["prediction"]), decode(req["target"])
    if pred is None or target is None:
        return None
    kwargs = {k: v for k, v in req.items() if k not in ARRAYS}
    for key in ("weight", "instances"):
        if req.get(key) is not None:
            kwargs[key] = decode(req[key])
            if kwargs[key] is None:
                return None
    return pred, target, kwargs


def expected(case):
    return {k: v for k, v in case["expect"].items() if k != "status"}




class Listener:
    """A loopback TCP port that is not seglossd: it counts the connections it accepts and
    either resets each at once (mode "reset"), holds it open without a word ("silent"), or
    reads one request into .requests (headers dict, body) and answers 200 "{}" ("capture")."""

    def __init__(self, mode):
        self.mode = mode
        self.accepted = 0
        self.held = []
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            if self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
            elif self.mode == "capture":
                with conn:
                    self._capture(conn)
            else:
                self.held.append(conn)

    def _capture(self, conn):
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        while len(body) < int(headers.get("content-length", 0)):
            chunk = conn.recv(65536)
            if not chunk:
                return
            body += chunk
        self.requests.append((headers, body))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")

    def stop(self):
        self.running = False
        self.thread.join()
        self.sock.close()
        for c in self.held:
            c.close()


def raises(fn, exc):
    """The exception of type exc that fn() raises, or None (another exception propagates)."""
    try:
        fn()
    except exc as e:
        return e
    return None


def test_goldens(t, client, cases):
    """(1) every decodable 200 /v1/score case, JSON and multipart; (2) the weight maps."""
    ran = 0
    for case in cases:
        if case["expect"].get("status") != 200 or "weight_map" in case["expect"]:
            continue
        args = case_args(case)
        if args is None:
            continue
        ran += 1
        pred, target, kwargs = args
        rtol, atol = tolerances(case)
        for transport in ("json", "multipart"):
            what = f"{case['id']} ({transport})"
            try:
                got = client.score(pred, target, transport=transport, **kwargs)
            except segloss.SeglossError as e:
                t.check(False, what, str(e))
                continue
            m = harness.mismatch(got, expected(case), rtol, atol)
            t.check(m is None, what, m)
    t.check(ran >= 40, f"{ran} golden /v1/score cases decode to numpy", "golden dir right?")

    maps = [c for c in cases if "weight_map" in c["expect"]]
    t.check(len(maps) >= 3, f"{len(maps)} golden weight map cases")
    for case in maps:
        req = case["request"]
        want = case["expect"]["weight_map"]
        rtol, atol = tolerances(case)
        params = {k: v for k, v in req.items() if k not in ARRAYS}
        instances = decode(req["instances"]) if req.get("instances") is not None else None
        try:
            w = client.weight_map(decode(req["target"]), instances=instances, **params)
        except segloss.SeglossError as e:
            t.check(False, f"weight_map {case['id']}", str(e))
            continue
        ok = isinstance(w, np.ndarray) and w.dtype == np.float32
        t.check(ok, f"weight_map {case['id']}: a float32 ndarray", repr(type(w)))
        t.check(list(w.shape) == want["shape"], f"weight_map {case['id']}: shape", str(w.shape))
        m = harness.mismatch(w.ravel().tolist(), want["data"], rtol, atol)
        t.check(m is None, f"weight_map {case['id']}: values", m)


def test_errors(t, server, client, cases):
    """(3) golden error cases whose arrays decode: the status and detail of SeglossError."""
    ran = 0
    for case in cases:
        status = case["expect"].get("status")
        if status == 200:
            continue
        args = case_args(case)
        if args is None:
            continue
        ran += 1
        pred, target, kwargs = args
        for transport in ("json", "multipart"):
            what = f"{case['id']} ({transport})"
            e = raises(lambda: client.score(pred, target, transport=transport, **kwargs),
                       segloss.SeglossError)
            if not t.check(e is not None, what + ": raises SeglossError"):
                continue
            t.check(e.status == status, f"{what}: status {status}", f"got {e.status}")
            t.check(isinstance(e.detail, str) and e.detail.strip(), f"{what}: a detail")
            t.check(isinstance(e.problem, dict) and e.problem.get("status") == status,
                    f"{what}: the problem+json body", repr(e.problem))
            t.check(str(e).startswith(f"{status} ") and e.detail in str(e),
                    f"{what}: str() has the status and the detail", str(e))
            t.check(not isinstance(e, segloss.SeglossConnectionError),
                    f"{what}: not a connection error")
            if case["id"] == "err_bad_param":
                t.check("losses[0].gamma" in e.detail, f"{what}: detail names losses[0].gamma",
                        e.detail)
    names = [c["id"] for c in cases]
    t.check(ran >= 5 and "err_bad_param" in names, f"{ran} golden error cases decode to numpy")

    # a 4xx other than 429 is never retried: the server counts exactly one 422
    case = next(c for c in cases if c["id"] == "err_unknown_loss")
    pred, target, kwargs = case_args(case)
    series = 'segloss_requests_total{route="/v1/score",status="422"}'
    before = server.metric(series) or 0
    e = raises(lambda: segloss.Client(server.url, retries=3, backoff=0.01).score(
        pred, target, **kwargs), segloss.SeglossError)
    after = server.metric(series) or 0
    t.check(e is not None and e.status == 422 and after - before == 1,
            "a 422 is sent once, not retried", f"{after - before} 422 answers")


def test_equivalent_inputs(t, client, by_id):
    """(7) other dtypes and layouts of the same values score as the golden case says."""
    case = by_id["combo_ce_dice"]
    pred, target, kwargs = case_args(case)
    rtol, atol = tolerances(case)
    want = expected(case)
    wide = np.zeros(pred.shape[:-1] + (pred.shape[-1] * 2,), dtype=np.float32)
    wide[..., ::2] = pred
    variants = [
        ("pred float64", pred.astype(np.float64), target),
        ("pred Fortran order", np.asfortranarray(pred), target),
        ("pred non-contiguous", wide[..., ::2], target),
        ("pred big-endian >f4", pred.astype(">f4"), target),
        ("pred big-endian >f8", pred.astype(">f8"), target),
        ("pred a nested Python list", pred.tolist(), target),
        ("target a nested Python list of int", pred, target.astype(int).tolist()),
        ("target Fortran order", pred, np.asfortranarray(target)),
        ("target a transposed view", pred, target.transpose(0, 2, 1).copy().transpose(0, 2, 1)),
    ]
    for dt in ("bool", "int8", "uint16", "int16", "uint32", "int32", "int64", ">u2", ">i8",
               "float32", "float64"):
        variants.append((f"target {dt}", pred, target.astype(dt)))
    for name, p, y in variants:
        for transport, compression in (("json", "gzip"), ("multipart", "none")):
            what = f"{case['id']} with {name} ({transport}, {compression})"
            try:
                got = client.score(p, y, transport=transport, compression=compression, **kwargs)
            except segloss.SeglossError as e:
                t.check(False, what, str(e))
                continue
            m = harness.mismatch(got, want, rtol, atol)
            t.check(m is None, what, m)

    # float16 carries other values than float32: the same values as float32 score the same
    p16 = pred.astype(np.float16)
    try:
        got16 = client.score(p16, target, **kwargs)
        got32 = client.score(p16.astype(np.float32), target, **kwargs)
        m = harness.mismatch(got16["losses"], got32["losses"], rtol, atol)
        t.check(m is None, "pred float16 scores as its float32 values", m)
    except segloss.SeglossError as e:
        t.check(False, "pred float16 scores as its float32 values", str(e))

    # hard labels as bool; multiclass labels as int64; multilabel targets as bool
    for cid, change in (
        ("surface_metrics", lambda p, y: (p.astype(bool), y.astype(bool))),
        ("mc_dice_bg0", lambda p, y: (p, y.astype(np.int64))),
        ("ml_ce_dice", lambda p, y: (p, y.astype(bool))),
    ):
        case = by_id[cid]
        pred, target, kwargs = case_args(case)
        p, y = change(pred, target)
        what = f"{cid} with {p.dtype} prediction, {y.dtype} target"
        try:
            got = client.score(p, y, **kwargs)
            m = harness.mismatch(got, expected(case), *tolerances(case))
            t.check(m is None, what, m)
        except segloss.SeglossError as e:
            t.check(False, what, str(e))

    # numpy values in spec keys and string entries of losses/metrics
    case = by_id["surface_metrics"]
    pred, target, kwargs = case_args(case)
    kwargs["spacing"] = np.array(kwargs["spacing"], dtype=np.float64)
    got = client.score(pred, target, **kwargs)
    m = harness.mismatch(got, expected(case), *tolerances(case))
    t.check(m is None, "surface_metrics with spacing given as a numpy array", m)
    case = by_id["seed_example_ce_plus_dice"]
    pred, target, kwargs = case_args(case)
    got = client.score(pred, target, ["cross_entropy", "dice"], [],
                       prediction_type="probabilities")
    want = case["expect"]["losses"]["combo"]["value"]
    value = got["losses"]["cross_entropy"]["value"] + got["losses"]["dice"]["value"]
    t.check(harness.close(value, want, *tolerances(case)),
            "losses as names: cross_entropy + dice is the seed's combo", f"{value} vs {want}")


def test_module_functions(t, server, by_id):
    """Module-level score/weight_map with url=, and SEGLOSS_URL as the default."""
    case = by_id["seed_example_ce_plus_dice"]
    pred, target, kwargs = case_args(case)
    want = expected(case)
    rtol, atol = tolerances(case)
    m = harness.mismatch(segloss.score(pred, target, url=server.url, **kwargs), want, rtol, atol)
    t.check(m is None, "segloss.score(..., url=...)", m)
    saved = os.environ.pop("SEGLOSS_URL", None)
    try:
        t.check(segloss.Client().url == "http://127.0.0.1:8080",
                "Client() without SEGLOSS_URL is http://127.0.0.1:8080")
        os.environ["SEGLOSS_URL"] = server.url
        t.check(segloss.Client().url == server.url, "Client() takes SEGLOSS_URL")
        m = harness.mismatch(segloss.score(pred, target, **kwargs), want, rtol, atol)
        t.check(m is None, "segloss.score without url= goes to SEGLOSS_URL", m)
    finally:
        os.environ.pop("SEGLOSS_URL", None)
        if saved is not None:
            os.environ["SEGLOSS_URL"] = saved

    case = by_id["weight_map_unet"]
    req = case["request"]
    params = {k: v for k, v in req.items() if k not in ARRAYS}
    w = segloss.weight_map(decode(req["target"]), url=server.url, **params)
    m = harness.mismatch(w.ravel().tolist(), case["expect"]["weight_map"]["data"],
                         *tolerances(case))
    t.check(m is None, "segloss.weight_map(..., url=...)", m)

    client = segloss.Client(server.url)
    cat = client.catalog()
    names = {x.get("name") for x in cat.get("losses", [])}
    t.check({"cross_entropy", "dice", "focal", "lovasz_hinge"} <= names,
            "catalog() lists every loss of openapi.json", repr(sorted(names)))
    metrics = {x.get("name") for x in cat.get("metrics", [])}
    t.check({"dice", "iou", "hausdorff", "nsd"} <= metrics, "catalog() lists the metrics")
    t.check(client.healthy() is True, "healthy() is True on a running server")
    t.check(client.ready() is True, "ready() is True on an idle server")


def test_saturation(t, seglossd, by_id):
    """(4) 503 + Retry-After from a full compute queue: retried to success; raised with
    retries=0."""
    case = by_id["seed_example_ce_plus_dice"]
    pred, target, kwargs = case_args(case)
    want = expected(case)
    rtol, atol = tolerances(case)
    server = harness.Server(seglossd, "--threads", "1", "--queue", "1")
    try:
        # backoff 0.01 s: the waits are the server's Retry-After (1 s), so every rejection
        # costs a second (retries=30: room for a slow machine, where the saturating jobs can
        # take several seconds under ASan on a busy CPU)
        client = segloss.Client(server.url, retries=30, backoff=0.01)
        before = server.metric(QUEUE_FULL) or 0
        with harness.Saturated(server) as sat:
            t0 = time.monotonic()
            try:
                got = client.score(pred, target, **kwargs)
                m = harness.mismatch(got, want, rtol, atol)
            except segloss.SeglossError as e:
                m = str(e)
            elapsed = time.monotonic() - t0
        after = server.metric(QUEUE_FULL) or 0
        t.check(m is None, "503: retried until the queue has room, the seed's value", m)
        t.check(after - before >= 1, "503: the server refused at least once (queue_full)",
                f"queue_full {before} -> {after}")
        # seglossd says Retry-After: 1, longer than the backoff: after each of the n
        # rejections the client waits a second before it asks again
        n = after - before
        t.check(elapsed >= 0.95 * n, "503: each retry waits Retry-After",
                f"{n:g} rejections in {elapsed:.2f} s")
        t.check(sat.statuses == [200, 200], "503: the saturating requests were answered",
                repr(sat.statuses))

        client = segloss.Client(server.url, retries=0)
        with harness.Saturated(server) as sat:
            before = server.metric(QUEUE_FULL) or 0
            e = raises(lambda: client.score(pred, target, **kwargs), segloss.SeglossError)
            ready = client.ready()
            healthy = client.healthy()
            # the server counts a rejection when the request completes, which can be just
            # after the client has read the 503: wait (briefly) for the count to move
            deadline = time.monotonic() + 5
            after = server.metric(QUEUE_FULL) or 0
            while after == before and time.monotonic() < deadline:
                time.sleep(0.01)
                after = server.metric(QUEUE_FULL) or 0
        ok = e is not None and e.status == 503
        t.check(ok, "503 with retries=0: raises SeglossError 503", repr(e))
        if ok:
            t.check(e.retry_after is not None and e.retry_after > 0,
                    "503 with retries=0: retry_after from Retry-After", repr(e.retry_after))
            t.check(bool(e.detail), "503 with retries=0: a detail", repr(e.detail))
            t.check(not isinstance(e, segloss.SeglossConnectionError),
                    "503 is not a connection error")
        t.check(after - before == 1, "503 with retries=0: sent once",
                f"queue_full {before} -> {after}")
        t.check(ready is False and healthy is True,
                "while the queue is full: ready() False, healthy() True",
                f"ready {ready}, healthy {healthy}")
    finally:
        server.stop()


def test_connection(t, by_id):
    """(5) refused, reset and silent peers; (6) bad dtypes send nothing."""
    case = by_id["seed_example_ce_plus_dice"]
    pred, target, kwargs = case_args(case)

    client = segloss.Client(f"http://127.0.0.1:{harness.free_port()}", retries=2, backoff=0.02)
    t0 = time.monotonic()
    e = raises(lambda: client.score(pred, target, **kwargs), segloss.SeglossError)
    elapsed = time.monotonic() - t0
    t.check(isinstance(e, segloss.SeglossConnectionError) and e.status is None,
            "connection refused: SeglossConnectionError, status None", repr(e))
    t.check(0.06 <= elapsed < 3, "connection refused: two backoffs (0.02 + 0.04 s), quickly",
            f"{elapsed:.3f} s")
    t.check(client.healthy() is False and client.ready() is False,
            "connection refused: healthy() and ready() are False")

    peer = Listener("reset")
    try:
        client = segloss.Client(peer.url, retries=2, backoff=0.01)
        e = raises(lambda: client.score(pred, target, **kwargs), segloss.SeglossError)
        t.check(isinstance(e, segloss.SeglossConnectionError),
                "connection reset: SeglossConnectionError", repr(e))
        t.check(peer.accepted == 3, "connection reset: retried twice (3 connections)",
                f"{peer.accepted} connections")
    finally:
        peer.stop()

    peer = Listener("silent")
    try:
        client = segloss.Client(peer.url, timeout=0.3, retries=2, backoff=0.01)
        t0 = time.monotonic()
        e = raises(lambda: client.score(pred, target, **kwargs), segloss.SeglossError)
        elapsed = time.monotonic() - t0
        t.check(isinstance(e, segloss.SeglossConnectionError) and 0.25 < elapsed < 3,
                "no answer within timeout: SeglossConnectionError", f"{e!r} {elapsed:.2f} s")
        t.check(peer.accepted == 1, "no answer within timeout: not retried (1 connection)",
                f"{peer.accepted} connections")
    finally:
        peer.stop()

    peer = Listener("silent")
    try:
        client = segloss.Client(peer.url, timeout=1, retries=0)
        bad = [
            ("uint64", np.zeros((1, 2, 2), dtype=np.uint64)),
            ("complex64", np.zeros((1, 2, 2), dtype=np.complex64)),
            ("object", np.array([[[1, None]]], dtype=object)),
            ("str", np.array([[["a", "b"]]])),
            ("datetime64", np.zeros((1, 2, 2), dtype="datetime64[s]")),
            ("longdouble", np.zeros((1, 2, 2), dtype=np.longdouble)),
            ("structured", np.zeros((1, 2, 2), dtype=[("a", "f4"), ("b", "f4")])),
        ]
        for name, arr in bad:
            for arg in ("pred", "target", "weight"):
                a = {"pred": pred, "target": target, "weight": None, arg: arr}
                e = raises(lambda: client.score(a["pred"], a["target"], weight=a["weight"],
                                                **kwargs), Exception)
                t.check(isinstance(e, TypeError) and str(e).startswith(arg + ":"),
                        f"{name} {arg}: TypeError naming {arg}", repr(e))
        e = raises(lambda: client.weight_map(np.zeros((1, 2, 2), np.uint64)), Exception)
        t.check(isinstance(e, TypeError) and str(e).startswith("target:"),
                "weight_map uint64 target: TypeError naming target", repr(e))
        time.sleep(0.1)
        t.check(peer.accepted == 0, "unsupported dtypes: nothing was sent",
                f"{peer.accepted} connections")
    finally:
        peer.stop()


def run(t, fn, *args):
    """fn(t, *args); an unexpected exception is one failure, and the other tests still run."""
    try:
        fn(t, *args)
    except Exception:
        t.check(False, fn.__name__ + " ended early", traceback.format_exc().replace("\n", " | "))


def npy_bytes(a):
    """What numpy itself writes for a (.npy v1, C order): the expected bytes of a part."""
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def test_wire(t, by_id):
    """What goes on the wire, read back by other parsers (json, base64, gzip, email)."""
    case = by_id["combo_ce_dice"]
    pred, target, kwargs = case_args(case)
    peer = Listener("capture")
    try:
        client = segloss.Client(peer.url, retries=0)
        client.score(pred, target, **kwargs)
        client.score(pred, target, transport="multipart", compression="none", **kwargs)
        client.score(pred, target, transport="multipart", **kwargs)
    finally:
        peer.stop()
    if not t.check(len(peer.requests) == 3, "wire: three requests captured"):
        return

    headers, body = peer.requests[0]
    t.check(headers.get("content-type") == "application/json", "wire json: Content-Type")
    spec = json.loads(body)
    for key, a in (("prediction", pred), ("target", target)):
        arr = spec.get(key, {})
        ok = arr.get("format") == "npy" and arr.get("compression") == "gzip"
        ok = ok and gzip.decompress(base64.b64decode(arr.get("data", ""))) == npy_bytes(a)
        t.check(ok, f"wire json: {key} is base64 of gzip'd .npy bytes")
    t.check(spec.get("losses") == kwargs["losses"] and spec.get("metrics") == kwargs["metrics"],
            "wire json: losses and metrics as given")

    for (headers, body), compression in zip(peer.requests[1:], ("none", "gzip")):
        what = f"wire multipart ({compression})"
        ctype = headers.get("content-type", "")
        t.check(ctype.startswith("multipart/form-data; boundary="), f"{what}: Content-Type",
                ctype)
        msg = email.message_from_bytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + body, policy=email.policy.HTTP)
        parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                 for p in msg.iter_parts()}
        t.check(sorted(parts) == ["prediction", "spec", "target"], f"{what}: the parts",
                repr(sorted(parts)))
        spec = json.loads(parts.get("spec") or "{}")
        for key, a in (("prediction", pred), ("target", target)):
            want = {"format": "npy", "part": key, "compression": compression}
            t.check(spec.get(key) == want, f"{what}: spec names part {key}", repr(spec.get(key)))
            data = parts.get(key) or b""
            data = gzip.decompress(data) if compression == "gzip" else data
            t.check(data == npy_bytes(a), f"{what}: part {key} holds the .npy bytes")


def unzstd(data):
    """One zstd frame decoded by another decoder than the client's: the zstd tool when it is
    here, else libzstd.so.1 called directly."""
    if shutil.which("zstd"):
        return subprocess.run(["zstd", "-d", "-c", "-q"], input=data, capture_output=True,
                              check=True).stdout
    lib = ctypes.CDLL("libzstd.so.1")
    lib.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
    lib.ZSTD_getFrameContentSize.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    lib.ZSTD_decompress.restype = ctypes.c_size_t
    lib.ZSTD_decompress.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p,
                                    ctypes.c_size_t]
    n = lib.ZSTD_getFrameContentSize(data, len(data))
    out = ctypes.create_string_buffer(n)
    got = lib.ZSTD_decompress(out, n, data, len(data))
    return out.raw[:got]


def test_zstd(t, server, client, by_id):
    """compression="zstd" and "auto" against the server with each zstd codec the client can
    use (libzstd through ctypes always; the zstandard module when it is installed), zstd
    answers (the weight map), and what goes on the wire."""
    saved = segloss._ZSTD
    try:
        for backend in ("libzstd", "zstandard"):
            codec = segloss._zstd_codec(backend)
            if codec is None:
                t.check(backend == "zstandard", f"zstd: the {backend} codec loads")
                print(f"# zstd: no {backend} here; that codec is not tested")
                continue
            segloss._ZSTD = codec
            c = segloss.Client(server.url, retries=3, backoff=0.05)
            t.check(c._compression("auto") == "zstd", f"zstd ({backend}): auto is zstd here")
            for cid in ("combo_ce_dice", "mc_dice_bg0", "ml_ce_dice"):
                case = by_id[cid]
                pred, target, kwargs = case_args(case)
                rtol, atol = tolerances(case)
                for transport in ("json", "multipart"):
                    what = f"zstd ({backend}): {cid} ({transport})"
                    try:
                        got = c.score(pred, target, transport=transport, compression="zstd",
                                      **kwargs)
                    except segloss.SeglossError as e:
                        t.check(False, what, str(e))
                        continue
                    m = harness.mismatch(got, expected(case), rtol, atol)
                    t.check(m is None, what, m)
            # the weight map comes back as zstd (Accept-Encoding: zstd, gzip) and decodes here
            case = by_id["weight_map_unet"]
            req, want = case["request"], case["expect"]["weight_map"]
            rtol, atol = tolerances(case)
            params = {k: v for k, v in req.items() if k not in ARRAYS}
            w = c.weight_map(decode(req["target"]), compression="zstd", **params)
            m = harness.mismatch(w.ravel().tolist(), want["data"], rtol, atol)
            t.check(m is None, f"zstd ({backend}): weight_map_unet values", m)
            # the answer itself was zstd: asked for by hand
            ans = c._request("POST", "/v1/weight-map", segloss._dumps(
                dict(params, target={"format": "npy", "compression": "zstd", "data":
                                     base64.b64encode(segloss._npy(decode(req["target"]),
                                                                   "zstd")).decode()})),
                {"Content-Type": "application/json", "Accept": "application/x-npy"})
            ce = ans.headers.getheader("Content-Encoding")
            t.check(ce == "zstd", f"zstd ({backend}): the weight map answer is zstd", repr(ce))
    finally:
        segloss._ZSTD = saved

    # the wire: a zstd array decodes with another decoder; auto against a peer whose catalog
    # has no "compression" is gzip; Accept-Encoding names zstd
    case = by_id["combo_ce_dice"]
    pred, target, kwargs = case_args(case)
    peer = Listener("capture")
    try:
        c = segloss.Client(peer.url, retries=0)
        c.score(pred, target, compression="zstd", **kwargs)
        c.score(pred, target, compression="auto", **kwargs)
    finally:
        peer.stop()
    if not t.check(len(peer.requests) == 3, "zstd wire: three requests (score, catalog, score)",
                   repr([h.get("content-type") for h, _ in peer.requests])):
        return
    headers, body = peer.requests[0]
    t.check(headers.get("accept-encoding") == "zstd, gzip", "zstd wire: Accept-Encoding",
            headers.get("accept-encoding"))
    spec = json.loads(body)
    for key, a in (("prediction", pred), ("target", target)):
        arr = spec.get(key, {})
        raw = base64.b64decode(arr.get("data", ""))
        ok = arr.get("compression") == "zstd" and raw[:4] == b"\x28\xb5\x2f\xfd"
        t.check(ok and unzstd(raw) == npy_bytes(a),
                f"zstd wire: {key} is one zstd frame of the .npy")
    t.check(peer.requests[1][1] == b"" and peer.requests[2][0].get("content-type") ==
            "application/json", "zstd wire: auto asked the catalog first")
    spec = json.loads(peer.requests[2][1])
    t.check(spec["prediction"].get("compression") == "gzip",
            "zstd wire: auto without zstd in the catalog is gzip",
            repr(spec["prediction"].get("compression")))
    try:
        segloss._ZSTD = None
        c.score(pred, target, compression="zstd", **kwargs)
        t.check(False, "zstd without a codec raises ValueError")
    except ValueError as e:
        t.check("neither the zstandard module nor libzstd.so.1" in str(e),
                "zstd without a codec raises ValueError saying why", str(e))
    finally:
        segloss._ZSTD = saved



def _steady(answers):
    """Answers without elapsed_ms (the server's timing), for comparing two runs."""
    return [{k: v for k, v in a.items() if k != "elapsed_ms"} for a in answers]


def _metric_over(url, series, source="127.0.0.2"):
    """A /metrics series from another loopback address (not counted by --max-per-ip)."""
    import http.client

    host, port = url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", "/metrics")
        for line in conn.getresponse().read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0.0
    finally:
        conn.close()


def test_parallel(t, seglossd, server, client, cases):
    """(10) score_batches(parallel=N): answers in the batches' order and equal to parallel=1's,
    golden per-image values, mixed sizes against a count done here, the first failing batch's
    error, the generator read only as far as needed, bad values, 429s retried per request."""
    used = 0
    for case in cases:
        if case["expect"].get("status") != 200 or "weight_map" in case["expect"]:
            continue
        args = case_args(case)
        if args is None or args[0].shape[0] < 2:
            continue
        pred, target, kwargs = args
        if kwargs.get("weight") is not None or kwargs.get("instances") is not None:
            continue
        if any(pooling_loss(l) for l in kwargs.get("losses", []) if isinstance(l, dict)):
            continue  # a loss over the whole batch: a batch of one image is another question
        rtol, atol = tolerances(case)
        n = pred.shape[0]
        batches = [(pred[i:i + 1], target[i:i + 1]) for i in range(n)]
        what = f"score_batches {case['id']} ({n} batches)"
        try:
            one = client.score_batches(batches, parallel=1, **kwargs)
            par = client.score_batches(iter(batches), parallel=4, **kwargs)
        except segloss.SeglossError as e:
            t.check(False, what, str(e))
            continue
        used += 1
        t.check(_steady(one) == _steady(par) and len(par) == n,
                f"{what}: parallel=4 answers equal parallel=1's, in order")
        for sec in ("metrics", "losses"):
            for key, entry in expected(case).get(sec, {}).items():
                want = entry.get("per_image") if isinstance(entry, dict) else None
                if not isinstance(want, list) or len(want) != n:
                    continue
                got = [a[sec][key]["per_image"][0] for a in par]
                m = harness.mismatch(got, want, rtol, atol, f"{sec}.{key}.per_image")
                t.check(m is None, f"{what}: {sec}.{key} per image as the golden expect", m)
    t.check(used >= 8, f"score_batches: {used} multi-image golden cases", "too few")

    # mixed sizes, one generator: per-image Dice counted here, in the batches' order
    rng = np.random.default_rng(19)
    shapes = [(12, 16)] * 3 + [(20, 9)] * 4 + [(7, 7)] * 3 + [(12, 16)] * 2
    data = []
    for shp in shapes:
        k = int(rng.integers(1, 4))
        f = rng.normal(size=(k, *shp))
        data.append(((2.0 * f + rng.normal(size=f.shape)).astype(np.float32),
                     (f > 0.2).astype(np.uint8)))

    def dice_by_hand(p, y):
        """2TP / (2TP + FP + FN) of one image, logits thresholded at 0 (probability 0.5)."""
        h = p >= 0
        tp, fp, fn = int(np.sum(h & (y == 1))), int(np.sum(h & (y == 0))), int(np.sum(~h & (y == 1)))
        return 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else 1.0

    want = [dice_by_hand(p[i], y[i]) for p, y in data for i in range(p.shape[0])]
    one = client.score_batches(data, metrics=["dice"], parallel=1)
    par = client.score_batches((b for b in data), metrics=["dice"], parallel=6)
    got = [v for a in par for v in a["metrics"]["dice"]["per_image"]]
    t.check(_steady(one) == _steady(par), "score_batches mixed sizes: parallel=6 equals parallel=1")
    m = harness.mismatch(got, want, 1e-12, 1e-12, "dice.per_image")
    t.check(m is None and len(par) == len(data),
            f"score_batches mixed sizes: {len(got)} per-image Dice in order as counted here", m)

    # the first failing batch in order (3 of 10), whatever the later failing one (7) does;
    # the generator is read at most parallel batches past the one being waited for
    pred = (rng.random((10, 2, 8, 8)) < 0.5).astype(np.float32)
    tgt = (rng.random((10, 2, 8, 8)) < 0.5).astype(np.uint8)
    tgt[3, 1, 2, 2] = 4
    tgt[7, 0, 0, 0] = 9
    errs = {}
    for n in (1, 2, 5):
        pulled = []

        def gen():
            for i in range(10):
                pulled.append(i)
                yield pred[i], tgt[i]

        e = raises(lambda: client.score_batches(gen(), metrics=["dice"], parallel=n),
                   segloss.SeglossError)
        errs[n] = e
        t.check(e is not None and e.status == 422 and getattr(e, "batch", None) == 3,
                f"score_batches parallel={n}: a 422 for batch 3 (with .batch = 3)",
                repr(e) + " " + repr(getattr(e, "batch", None)))
        t.check(len(pulled) <= 3 + n + 1, f"score_batches parallel={n}: read {len(pulled)} "
                f"batches of 10, at most {3 + n + 1} (batch 3 and {n} in flight)", repr(pulled))
    t.check(all(str(e) == str(errs[1]) for e in errs.values() if e is not None),
            "score_batches: the error text is parallel=1's", repr({k: str(v) for k, v in errs.items()}))

    # bad values: ValueError before any request (nothing listens at this address)
    dead = segloss.Client(f"http://127.0.0.1:{harness.free_port()}", retries=0)
    for bad in (0, -1, 65, 1.5, "4", True, None):
        e = raises(lambda: dead.score_batches([(pred[0], tgt[0])], parallel=bad), ValueError)
        t.check(e is not None and "parallel" in str(e) and "1..64" in str(e),
                f"score_batches parallel={bad!r}: ValueError naming 1..64", repr(e))
    e = raises(lambda: client.score_batches([(pred[0], tgt[0], tgt[0])], parallel=2), TypeError)
    t.check(e is not None and "batches[0]" in str(e), "score_batches: a batch that is not a pair "
            "raises TypeError naming it", repr(e))
    t.check("parallel" in segloss.Client.score_batches.__doc__, "score_batches documents parallel")

    # 429: a server allowing 2 connections per address; parallel=4 retries each request
    pred = rng.normal(size=(16, 48, 48)).astype(np.float32)
    tgt = (rng.random((16, 48, 48)) < 0.4).astype(np.uint8)
    batches = [(pred[i:i + 2], tgt[i:i + 2]) for i in range(0, 16, 2)]
    metrics = ["dice", "hausdorff"]
    want = client.score_batches(batches, metrics=metrics, parallel=1)
    lim = harness.Server(seglossd, "--max-per-ip", "2")
    series = 'segloss_rejections_total{reason="per_ip_limit"}'
    try:
        c = segloss.Client(lim.url, retries=20, backoff=0.05)
        r0 = _metric_over(lim.url, series)
        got = None
        for _ in range(5):  # until a run met the limit (requests at once are not guaranteed)
            got = c.score_batches(batches, metrics=metrics, parallel=4)
            if _metric_over(lim.url, series) > r0:
                break
        r1 = _metric_over(lim.url, series)
    finally:
        lim.stop()
    t.check(r1 > r0, f"score_batches 429: the server refused {r1 - r0:.0f} connections "
            "(--max-per-ip 2, parallel=4)", f"{r0} -> {r1}")
    t.check(got is not None and _steady(got) == _steady(want),
            "score_batches 429: parallel=4 answers after retries equal parallel=1's")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--golden", default="tests/golden/cases")
    args = ap.parse_args()

    t = harness.Tally("python")
    # each test is "clients/python/NAME" (NAME: the function without test_) for the filter
    want = {fn: harness.selected("clients/python/" + fn.__name__[5:]) for fn in (
        test_goldens, test_errors, test_equivalent_inputs, test_module_functions, test_saturation,
        test_connection, test_wire, test_zstd, test_parallel)}
    if not any(want.values()):
        return t.finish()
    cases = harness.golden_cases(args.golden)
    by_id = {c["id"]: c for c in cases}
    needed = ["seed_example_ce_plus_dice", "combo_ce_dice", "surface_metrics", "mc_dice_bg0",
              "ml_ce_dice", "weight_map_unet", "err_unknown_loss"]
    missing = [n for n in needed if n not in by_id]
    if not t.check(not missing, "the golden cases the tests use are there", repr(missing)):
        return t.finish()

    on_server = [(test_goldens, lambda s, c: (c, cases)),
                 (test_errors, lambda s, c: (s, c, cases)),
                 (test_equivalent_inputs, lambda s, c: (c, by_id)),
                 (test_module_functions, lambda s, c: (s, by_id)),
                 (test_zstd, lambda s, c: (s, c, by_id)),
                 (test_parallel, lambda s, c: (args.seglossd, s, c, cases))]
    if any(want[fn] for fn, _ in on_server):
        server = harness.Server(args.seglossd)
        try:
            client = segloss.Client(server.url, retries=3, backoff=0.05)
            for fn, fn_args in on_server:
                if want[fn]:
                    run(t, fn, *fn_args(server, client))
        finally:
            server.stop()
    for fn, arg in ((test_saturation, (args.seglossd, by_id)), (test_connection, (by_id,)),
                    (test_wire, (by_id,))):
        if want[fn]:
            run(t, fn, *arg)
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
