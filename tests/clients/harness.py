"""harness.py - what the client tests share: a seglossd on an ephemeral loopback port, the
golden cases as numpy arrays, tolerance comparison and the closing "N passed, M failed" line.

Python 3 standard library + numpy (Debian's python3-numpy)."""

import base64
import glob
import gzip
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tally import Tally, selected  # noqa: E402,F401  (tests/tally.py, shared with tests/cluster)


class Server:
    """A seglossd started with --port 0; .url is its base address. stop() sends SIGTERM and
    waits (then SIGKILL). Extra args are seglossd flags."""

    def __init__(self, seglossd, *args, port=0):
        self.dir = tempfile.mkdtemp(prefix="segloss-clients-")
        self.out = open(os.path.join(self.dir, "out"), "w+")
        self.err = open(os.path.join(self.dir, "err"), "w+")
        self.proc = subprocess.Popen(
            [seglossd, "--port", str(port), "--access-log", "0", *args],
            stdout=self.out,
            stderr=self.err,
        )
        self.url = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            self.out.seek(0)
            for line in self.out.read().splitlines():
                if line.startswith("seglossd listening on "):
                    self.url = line.split()[-1]
            if self.url:
                break
            time.sleep(0.02)
        if not self.url:
            self.stop()
            self.err.seek(0)
            raise RuntimeError("seglossd did not start: " + self.err.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()
        self.err.close()

    def metric(self, series):
        """The value of one Prometheus series line (exact name with labels), or None."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(series + " "):
                    return float(line.split()[-1])
        return None


def free_port():
    """A loopback port nobody listens on (bound once, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def post_json(url, body, timeout=60):
    """POSTs a JSON body; returns (status, parsed JSON answer)."""
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def golden_cases(golden_dir):
    """Every golden case (parsed JSON), sorted by file name."""
    cases = []
    for path in sorted(glob.glob(os.path.join(golden_dir, "*.json"))):
        with open(path) as f:
            cases.append(json.load(f))
    return cases


def _inflate(raw, compression):
    if compression in (None, "none"):
        return raw
    if compression == "gzip":
        return gzip.decompress(raw)
    if compression == "zlib":
        return zlib.decompress(raw)
    if compression == "deflate":
        return zlib.decompress(raw, -15)
    if compression == "auto":
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else zlib.decompress(raw)
    raise ValueError("compression " + str(compression))


def to_numpy(arr):
    """A golden array object (list, npy, raw; a plain JSON list) as a numpy array, or None for
    the forms a numpy array does not carry (rle, coco_rle, multipart parts)."""
    if isinstance(arr, list):
        return np.array(arr, dtype=np.float64)
    fmt = arr.get("format", "list")
    dtype = arr.get("dtype")
    if fmt == "list":
        a = np.array(arr["data"], dtype=np.dtype(dtype) if dtype else np.float64)
        if "shape" in arr:
            a = a.reshape(arr["shape"])
        return a
    if fmt in ("npy", "raw") and "data" in arr:
        raw = _inflate(base64.b64decode(arr["data"]), arr.get("compression"))
        if fmt == "npy":
            return np.load(io.BytesIO(raw), allow_pickle=False)
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(arr["shape"])
    return None


def close(got, want, rtol, atol):
    """Whether got matches want the golden way: |got - want| <= atol + rtol |want|, null is
    null, lists and objects element by element (only the keys want has)."""
    if want is None:
        return got is None
    if isinstance(want, bool):
        return got is want
    if isinstance(want, (int, float)):
        return (
            isinstance(got, (int, float))
            and not isinstance(got, bool)
            and abs(got - want) <= atol + rtol * abs(want)
        )
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(close(g, w, rtol, atol) for g, w in zip(got, want))
        )
    if isinstance(want, dict):
        return isinstance(got, dict) and all(
            k in got and close(got[k], v, rtol, atol) for k, v in want.items()
        )
    return got == want


def mismatch(got, want, rtol, atol, path=""):
    """The first place where got and want differ (a path and both values), or None."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k, v in want.items():
            if k not in got:
                return f"{path}.{k}: missing"
            m = mismatch(got[k], v, rtol, atol, f"{path}.{k}")
            if m:
                return m
        return None
    if isinstance(want, list) and isinstance(got, list) and len(got) == len(want):
        for i, (g, w) in enumerate(zip(got, want)):
            m = mismatch(g, w, rtol, atol, f"{path}[{i}]")
            if m:
                return m
        return None
    return None if close(got, want, rtol, atol) else f"{path}: got {got!r}, want {want!r}"


# A small body with long work: surface metrics of 8 masks of 2048x2048 given as Kaggle RLE
# (a few tenths of a second on one worker).
SLOW_BODY = {
    "prediction": {
        "format": "rle",
        "shape": [8, 2048, 2048],
        "data": ["1 1000 2000000 3000", "5 100 3000000 7000", "9 9", "70000 5000"] * 2,
    },
    "prediction_type": "labels",
    "target": {
        "format": "rle",
        "shape": [8, 2048, 2048],
        "data": ["1 1000 2000000 3000 4000000 500", "50 1000", "9 20", "60000 9000"] * 2,
    },
    "metrics": ["hausdorff", {"name": "hausdorff", "percentile": 95, "as": "hd95"}, "assd", "nsd"],
}


class Saturated:
    """Context manager for a seglossd started with --threads 1 --queue 1: on entry one slow job
    runs and a second waits in the queue, so the next /v1/score gets 503 + Retry-After until
    they finish (a fraction of a second). On exit it waits for both; .statuses holds their
    answers' statuses."""

    def __init__(self, server, timeout=60):
        self.server = server
        self.timeout = timeout
        self.threads = []
        self.statuses = []

    def _send(self):
        status, _ = post_json(self.server.url + "/v1/score", SLOW_BODY, timeout=self.timeout)
        self.statuses.append(status)

    def _wait(self, series, value):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.server.metric(series) == value:
                return
            time.sleep(0.005)
        raise RuntimeError(f"{series} never reached {value}")

    def __enter__(self):
        import threading

        for series in ("segloss_workers_busy", "segloss_queue_depth"):
            t = threading.Thread(target=self._send)
            t.start()
            self.threads.append(t)
            self._wait(series, 1)
        return self

    def __exit__(self, *exc):
        for t in self.threads:
            t.join(self.timeout)
        return False
