"""segloss - a small Python client of seglossd, the segmentation scoring service.

One module, Python 3.9+ standard library + numpy. Copy this file next to your code, or put
clients/python on PYTHONPATH::

    import numpy as np
    import segloss

    pred = np.array([[[0.5, 0.6], [0.2, 0.1]]], dtype=np.float32)   # probabilities
    mask = np.array([[[1, 1], [0, 0]]], dtype=np.uint8)
    out = segloss.score(pred, mask, losses=["cross_entropy", "dice"],
                        prediction_type="probabilities")
    out["losses"]["dice"]["value"]

A data set in several batches goes through Client.score_batches, which can keep several
requests in flight (parallel=N) so that the replicas behind a load balancer share the work; the
answers come back in the batches' order::

    answers = segloss.Client(url).score_batches(zip(preds, masks), ["dice"], parallel=4)

Arrays travel as .npy bytes (gzip level 1 by default; compression="zstd" for one Zstandard
frame, or "auto": zstd when this machine and the server both have it, else gzip), base64 inside
the JSON body or as the parts of a multipart/form-data body. zstd comes from the `zstandard`
module when it is importable (Debian: python3-zstandard), else from the system's libzstd.so.1
through ctypes (libzstd1 is on every Debian system: apt needs it); without either, "zstd" raises
and "auto" is gzip. Answers are asked for as zstd or gzip (Accept-Encoding) and decoded here.
Their dtype is never changed (a big-endian array is only byte-swapped); a dtype the service
does not read raises TypeError before anything is sent. An error answer raises SeglossError
carrying the problem+json detail; 503 and 429 answers and connection failures are retried with
exponential backoff.

Challenges (a seglossd started with --data-dir): the organiser configures a challenge, uploads
the hidden reference and adds participants with the admin token; participants submit
predictions with their own token and read the leaderboards::

    admin = segloss.Client(url, token=open("var/admin.token").read().strip())
    admin.challenge_configure("lesions", {"title": "Lesions", "spec": {"mode": "binary",
        "prediction_type": "labels", "metrics": ["dice"]},
        "ranking": [{"key": "metrics.dice.mean", "order": "desc"}]})
    admin.challenge_reference("lesions", {"case1": mask1, "case2": mask2})
    token = admin.challenge_add_participant("lesions", "team-a")

    team = segloss.Client(url, token=token)        # or $SEGLOSS_TOKEN
    team.submit("lesions", {"case1": pred1, "case2": pred2}, note="baseline")
    team.leaderboard("lesions")

A submission refused by its quota raises QuotaError, one outside the challenge's window
WindowError (both SeglossErrors with retry_after); neither is retried, nor is a submission
whose answer was lost after it was sent (it may have counted).

The HTTP contract is the service's /openapi.json.
"""

import base64
import collections
import concurrent.futures
import ctypes
import ctypes.util
import email.utils
import gzip
import http.client
import io
import json
import os
import secrets
import socket
import time
import urllib.parse
import zlib

import numpy as np

__all__ = [
    "Client",
    "SeglossError",
    "SeglossConnectionError",
    "QuotaError",
    "WindowError",
    "score",
    "weight_map",
    "PARALLEL_MAX",
    "DEFAULT_URL",
]
__version__ = "0.1.0"

DEFAULT_URL = "http://127.0.0.1:8080"

# dtypes the service reads (its /openapi.json, Array); anything else is refused before a request is made.
DTYPES = (
    "bool",
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
)

# Longest wait between two attempts, whatever Retry-After or the backoff say.
MAX_DELAY = 30.0

# Health probes answer at once or not at all: they never wait longer than this.
PROBE_TIMEOUT = 10.0

# Client.score_batches: requests at once, at most (the CLI's --parallel has the same bound).
PARALLEL_MAX = 64


class SeglossError(Exception):
    """An error answer of seglossd (or, as SeglossConnectionError, no answer at all).

    Attributes: status (the HTTP status, None when there was no answer), title, detail (the
    problem+json detail: it names the key path or array index that is wrong), problem (the
    parsed problem+json body, or None), retry_after (seconds from Retry-After, or None) and
    request_id (the X-Request-ID of the answer, or None)."""

    def __init__(self, status, title, detail, problem=None, retry_after=None, request_id=None):
        self.status = status
        self.title = title
        self.detail = detail
        self.problem = problem
        self.retry_after = retry_after
        self.request_id = request_id
        super().__init__(str(self))

    def __str__(self):
        if self.status is None:
            return f"{self.title}: {self.detail}"
        return f"{self.status} {self.title}: {self.detail}"


class SeglossConnectionError(SeglossError):
    """seglossd could not be reached (refused, reset, timed out), after the retries, or did not
    answer within the timeout. status is None."""

    def __init__(self, detail):
        super().__init__(None, "cannot reach seglossd", detail)


class QuotaError(SeglossError):
    """A submission refused by the challenge's quota (429): per day, in total or at once.
    retry_after: seconds until a slot frees (the next UTC day for the daily quota), or None."""


class WindowError(SeglossError):
    """A submission refused because the challenge is not open yet or has closed (403 naming the
    time)."""


def _check_array(value, name):
    """value as a numpy array of a dtype the service reads, in little-endian byte order."""
    try:
        a = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name}: cannot be made a numpy array ({e})") from None
    dt = a.dtype
    if dt.fields is not None or dt.subdtype is not None or dt.name not in DTYPES:
        raise TypeError(
            f"{name}: dtype {dt} is not supported by seglossd (use one of {', '.join(DTYPES)}; "
            "convert it yourself, the client never changes values)"
        )
    if dt.byteorder == ">" or (dt.byteorder == "=" and not np.little_endian):
        a = a.astype(dt.newbyteorder("<"))  # a byte swap: the values are kept exactly
    return a


class _ZstdModule:
    """zstd through the `zstandard` module: one frame with its content size."""

    name = "zstandard"

    def __init__(self, mod):
        self._mod = mod

    def compress(self, data, level):
        return self._mod.ZstdCompressor(level=level, write_content_size=True).compress(data)

    def decompress(self, data, limit):
        if len(data) >= 4 and data[:4] != b"\x28\xb5\x2f\xfd":
            raise ValueError("not a zstd frame")
        return self._mod.ZstdDecompressor().decompress(data, max_output_size=limit)


class _ZstdLib:
    """zstd through ctypes on libzstd.so.1 (its stable API only: ZSTD_compress, ZSTD_decompress,
    ZSTD_getFrameContentSize)."""

    name = "libzstd"

    def __init__(self, lib):
        sz, vp, cvp = ctypes.c_size_t, ctypes.c_void_p, ctypes.c_char_p
        self._lib = lib
        lib.ZSTD_compressBound.argtypes, lib.ZSTD_compressBound.restype = [sz], sz
        lib.ZSTD_compress.argtypes = [vp, sz, cvp, sz, ctypes.c_int]
        lib.ZSTD_compress.restype = sz
        lib.ZSTD_decompress.argtypes, lib.ZSTD_decompress.restype = [vp, sz, cvp, sz], sz
        lib.ZSTD_getFrameContentSize.argtypes = [cvp, sz]
        lib.ZSTD_getFrameContentSize.restype = ctypes.c_ulonglong
        lib.ZSTD_isError.argtypes, lib.ZSTD_isError.restype = [sz], ctypes.c_uint
        lib.ZSTD_getErrorName.argtypes, lib.ZSTD_getErrorName.restype = [sz], ctypes.c_char_p

    def _check(self, r):
        if self._lib.ZSTD_isError(r):
            raise ValueError("zstd: " + self._lib.ZSTD_getErrorName(r).decode())
        return r

    def compress(self, data, level):
        cap = self._lib.ZSTD_compressBound(len(data))
        out = ctypes.create_string_buffer(cap)
        n = self._check(self._lib.ZSTD_compress(out, cap, data, len(data), level))
        return out.raw[:n]

    def decompress(self, data, limit):
        size = self._lib.ZSTD_getFrameContentSize(data, len(data))
        if size >= (1 << 64) - 2:  # ZSTD_CONTENTSIZE_UNKNOWN (-1) or _ERROR (-2)
            raise ValueError("zstd: the frame does not declare its size")
        if size > limit:
            raise ValueError(f"zstd: the frame declares {size} bytes, over {limit}")
        out = ctypes.create_string_buffer(max(size, 1))
        n = self._check(self._lib.ZSTD_decompress(out, size, data, len(data)))
        return out.raw[:n]


def _zstd_codec(prefer=None):
    """A zstd codec: the zstandard module, else libzstd.so.1 through ctypes (prefer "zstandard"
    or "libzstd" takes only that one); None when there is none."""
    if prefer in (None, "zstandard"):
        try:
            import zstandard

            return _ZstdModule(zstandard)
        except ImportError:
            pass
    if prefer in (None, "libzstd"):
        for name in ("libzstd.so.1", ctypes.util.find_library("zstd")):
            try:
                return _ZstdLib(ctypes.CDLL(name)) if name else None
            except OSError:
                continue
    return None


_ZSTD = _zstd_codec()
# bytes a zstd answer may inflate to (an answer's frame declares its size)
_ANSWER_MAX = 1 << 32
COMPRESSIONS = ("gzip", "zstd", "none", "auto")


def _npy(a, compression):
    """The .npy bytes of a (a checked array), gzip or zstd level 1 compressed when asked."""
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    data = buf.getvalue()
    if compression == "zstd":
        return _ZSTD.compress(data, 1)
    return gzip.compress(data, 1) if compression == "gzip" else data


def _check_compression(compression):
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression: 'gzip', 'zstd', 'none' or 'auto', not {compression!r}")
    if compression == "zstd" and _ZSTD is None:
        raise ValueError("compression 'zstd': neither the zstandard module nor libzstd.so.1 is "
                         "here (use 'auto' or 'gzip')")


def _entries(items, what):
    """A losses/metrics argument as the list the API takes: a name becomes {"name": name}."""
    if items is None:
        return None
    if isinstance(items, (str, dict)):
        items = [items]
    out = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            out.append({"name": item})
        elif isinstance(item, dict):
            out.append(item)
        else:
            raise TypeError(f"{what}[{i}]: a name or a dict, not {type(item).__name__}")
    return out


def _json_default(o):
    """Lets numpy scalars and arrays (spacing=np.array(...)) appear in spec values."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def _dumps(obj):
    return json.dumps(obj, default=_json_default, allow_nan=False, separators=(",", ":")).encode()


def _multipart(spec, parts):
    """A multipart/form-data body: the JSON spec part, then one part per (name, bytes)."""
    payloads = [data for _, data in parts]
    while True:
        boundary = "segloss-" + secrets.token_hex(16)
        b = boundary.encode()
        if all(b not in p for p in payloads):
            break
    out = [
        b"--" + b + b"\r\n",
        b'Content-Disposition: form-data; name="spec"; filename="spec.json"\r\n',
        b"Content-Type: application/json\r\n\r\n",
        _dumps(spec),
        b"\r\n",
    ]
    for name, data in parts:
        out += [
            b"--" + b + b"\r\n",
            f'Content-Disposition: form-data; name="{name}"; filename="{name}.npy"\r\n'.encode(),
            b"Content-Type: application/octet-stream\r\n\r\n",
            data,
            b"\r\n",
        ]
    out.append(b"--" + b + b"--\r\n")
    return b"".join(out), "multipart/form-data; boundary=" + boundary


def _form(parts):
    """A multipart/form-data body of parts (name, filename or None, content type, bytes); returns
    (body, Content-Type)."""
    payloads = [data for _, _, _, data in parts]
    while True:
        boundary = "segloss-" + secrets.token_hex(16)
        b = boundary.encode()
        if all(b not in p for p in payloads):
            break
    out = []
    for name, filename, ctype, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        out += [
            b"--" + b + b"\r\n",
            f"Content-Disposition: {disposition}\r\n".encode(),
            f"Content-Type: {ctype}\r\n\r\n".encode(),
            data,
            b"\r\n",
        ]
    out.append(b"--" + b + b"--\r\n")
    return b"".join(out), "multipart/form-data; boundary=" + boundary


def _image_items(arrays, ids, what):
    """(id, checked array) pairs of a challenge body: arrays is a dict {id: array} (one image
    each, sizes may differ) or a stacked array [N, ...] whose images get ids (default
    "0".."N-1")."""
    if isinstance(arrays, dict):
        if ids is not None:
            raise TypeError(f"{what}: ids are the dict's keys; give ids only with a stacked array")
        items = list(arrays.items())
        for key, _ in items:
            if not isinstance(key, str):
                raise TypeError(f"{what}: image ids are strings, not {type(key).__name__}")
    else:
        stacked = _check_array(arrays, what)
        if stacked.ndim < 2:
            raise ValueError(f"{what}: a stacked array is [N, ...] with at least 2 axes")
        n = stacked.shape[0]
        ids = [str(i) for i in range(n)] if ids is None else [str(i) for i in ids]
        if len(ids) != n:
            raise ValueError(f"{what}: {len(ids)} ids for {n} images")
        items = list(zip(ids, stacked))
    if not items:
        raise ValueError(f"{what}: no images")
    return [(key, _check_array(a, f"{what}[{key!r}]")) for key, a in items]


def _images_body(arrays, ids, csv, shape, note, compression, what):
    """The multipart body of a reference or submission: one .npy part per image named by its id,
    or a Kaggle CSV part with its shape; a "note" text part when note is not None. compression
    is resolved (gzip, zstd or none)."""
    if (arrays is None) == (csv is None):
        raise TypeError(f"{what}: give arrays (a dict or a stacked array) or csv text, one of them")
    parts = []
    if csv is not None:
        if shape is None or len(shape) != 2:
            raise TypeError("csv: needs shape=(H, W), the images' height and width")
        text = csv.encode() if isinstance(csv, str) else bytes(csv)
        parts.append(("spec", None, "application/json", _dumps({"shape": [int(x) for x in shape]})))
        parts.append(("csv", "masks.csv", "text/csv", text))
    else:
        if shape is not None:
            raise TypeError("shape: only with csv")
        for key, a in _image_items(arrays, ids, what):
            if key in ("note", "csv", "spec"):
                raise ValueError(f"{what}: image id {key!r} is a reserved part name")
            suffix = {"gzip": ".npy.gz", "zstd": ".npy.zst"}.get(compression, ".npy")
            ctype = {"gzip": "application/gzip", "zstd": "application/zstd"}.get(
                compression, "application/x-npy")
            parts.append((key, key + suffix, ctype, _npy(a, compression)))
    if note is not None:
        parts.append(("note", None, "text/plain; charset=utf-8", str(note).encode()))
    return _form(parts)


def _retry_after(value):
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def _decode_body(data, encoding):
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        return data
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(data)
    if encoding == "zstd" and _ZSTD is not None:
        return _ZSTD.decompress(data, _ANSWER_MAX)
    if encoding == "deflate":
        try:
            return zlib.decompress(data)
        except zlib.error:
            return zlib.decompress(data, -15)
    raise SeglossError(None, "bad answer", f"unknown Content-Encoding {encoding!r}")


class _Answer:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body


class Client:
    """A seglossd at url (default: $SEGLOSS_URL, else http://127.0.0.1:8080).

    timeout: seconds to wait for a connection and for each read of the answer.
    retries: how many times a request is repeated after a 503 or 429 answer or a connection
    failure (refused, reset, connect timeout); the n-th wait is backoff * 2**(n-1) seconds, or
    Retry-After when that is longer, at most 30 s. Other errors are never retried, nor is a
    request whose answer did not come within timeout (the server may still be computing it).

    token: the bearer token of the challenge routes (default: $SEGLOSS_TOKEN): the organiser's
    admin token, or a participant's. It is sent only in the Authorization header and never
    appears in a message or repr. The challenge routes retry only 503 answers and failures
    before a connection, never a 429 (a quota); a submission is never sent twice.

    A Client holds no connection (each request opens its own) and may be shared by threads."""

    def __init__(self, url=None, timeout=300, retries=3, backoff=0.25, token=None):
        self.url = (url or os.environ.get("SEGLOSS_URL") or DEFAULT_URL).rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url: {self.url!r} is not an http:// or https:// address")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        # the bearer token of the challenge routes (the admin's or a participant's); never shown
        self._token = token or os.environ.get("SEGLOSS_TOKEN") or None
        self._server_zstd = None  # whether the catalog lists zstd, asked on the first "auto"

    def __repr__(self):
        return f"segloss.Client({self.url!r})"

    # ---- the API ---------------------------------------------------------------------------

    def score(
        self,
        pred,
        target,
        losses=None,
        metrics=None,
        *,
        weight=None,
        instances=None,
        transport="json",
        compression="gzip",
        **spec,
    ):
        """Scores a batch: POST /v1/score. Returns the parsed JSON answer (a dict with
        "losses", "metrics", "mode", "images", "classes", "shape", "conventions", ...).

        pred: prediction array [N, *S], [N, 1, *S] or [N, C, *S] (logits by default);
        target: label array [N, *S] (or [N, C, *S] of 0/1 for multilabel); weight: optional
        per-pixel weight map; instances: optional instance label map for
        distance_weighted_cross_entropy. Arrays are numpy arrays or anything np.asarray takes,
        of dtype bool, (u)int8/16/32, int64 or float16/32/64 (others raise TypeError).
        losses, metrics: lists of names ("dice") or dicts ({"name": "focal", "gamma": 2,
        "as": "focal_g2"}); None leaves the service's default (no losses; dice and iou).
        transport: "json" (base64 inside the JSON body) or "multipart" (multipart/form-data
        parts); compression: "gzip" (level 1), "zstd" (one frame, level 1), "none", or "auto"
        (zstd when a zstd codec is here and the server's catalog lists zstd, else gzip) for the
        .npy bytes.
        spec: the other top-level keys of the API, passed as they are: mode, prediction_type,
        ignore_index, threshold, empty, spacing, include_background, per_image.

        Raises SeglossError (status, title, detail) on an error answer."""
        if transport not in ("json", "multipart"):
            raise ValueError(f"transport: 'json' or 'multipart', not {transport!r}")
        compression = self._compression(compression)
        for key in ("prediction", "target", "weight", "instances"):
            if key in spec:
                raise TypeError(f"{key}: give arrays as score's arguments, not as spec keys")
        arrays = [
            ("prediction", _check_array(pred, "pred")),
            ("target", _check_array(target, "target")),
        ]
        if weight is not None:
            arrays.append(("weight", _check_array(weight, "weight")))
        if instances is not None:
            arrays.append(("instances", _check_array(instances, "instances")))

        body = {}
        parts = []
        for key, a in arrays:
            data = _npy(a, compression)
            entry = {"format": "npy", "compression": compression}
            if transport == "json":
                entry["data"] = base64.b64encode(data).decode("ascii")
            else:
                entry["part"] = key
                parts.append((key, data))
            body[key] = entry
        for key, items in (("losses", losses), ("metrics", metrics)):
            entries = _entries(items, key)
            if entries is not None:
                body[key] = entries
        body.update(spec)

        if transport == "json":
            payload, ctype = _dumps(body), "application/json"
        else:
            payload, ctype = _multipart(body, parts)
        answer = self._request("POST", "/v1/score", payload, {"Content-Type": ctype})
        return self._json(answer)

    def score_batches(self, batches, losses=None, metrics=None, *, parallel=1, **kwargs):
        """Scores a data set batch by batch: one POST /v1/score per batch, parallel of them at
        once. Returns the list of the answers (each as score returns it) in the batches' order,
        whatever order they arrive in.

        batches: an iterable of (pred, target) pairs, one batch each (a generator is fine: it is
        read only as far as the requests in flight need, so at most parallel batches are held);
        losses, metrics and kwargs (weight excepted, transport, compression, spec keys) as
        score's, the same for every batch.
        parallel: requests at once, 1..64 (default 1: one after another). Each is sent by its
        own thread over its own connection, with score's retries (503, 429, connection
        failures) per request; with a load balancer in front of several seglossd replicas, the
        batches are scored by all of them.

        The answers are not combined here: each is its batch's /v1/score answer (images,
        per-image values, the batch's means). The `segloss` command-line client combines a data
        set's batches into one result.

        Raises the error of the first failing batch in the batches' order, as a sequential run
        would, with the attribute batch (its 0-based index) set; batches after it are not
        started, and the ones already in flight are waited for and dropped."""
        if isinstance(parallel, bool) or not isinstance(parallel, int) or not (
            1 <= parallel <= PARALLEL_MAX
        ):
            raise ValueError(f"parallel: an integer 1..{PARALLEL_MAX}, not {parallel!r}")
        for key in ("weight", "instances"):
            if kwargs.get(key) is not None:
                raise TypeError(f"{key}: one map cannot serve every batch; use score per batch")
        # "auto" asks the catalog once here, not once per thread
        kwargs["compression"] = self._compression(kwargs.get("compression", "gzip"))
        items = iter(enumerate(batches))
        answers = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
            pending = collections.deque()

            def take():
                """Starts the next batch's request; False when there is none."""
                for i, batch in items:
                    try:
                        pred, target = batch
                    except (TypeError, ValueError):
                        raise TypeError(f"batches[{i}]: a (pred, target) pair") from None
                    pending.append(
                        (i, pool.submit(self.score, pred, target, losses, metrics, **kwargs))
                    )
                    return True
                return False

            more = True
            while more and len(pending) < parallel:
                more = take()
            while pending:
                i, future = pending.popleft()
                try:
                    answers.append(future.result())
                except Exception as e:
                    for _, later in pending:
                        later.cancel()
                    e.batch = i
                    raise
                if more:
                    more = take()
        return answers

    def weight_map(self, target, *, instances=None, compression="gzip", **params):
        """The U-Net border weight map of a mask batch: POST /v1/weight-map. Returns a float32
        numpy array of shape [N, *S].

        target: mask batch [N, H, W] or [N, D, H, W]; instances: optional instance label map
        (0 = background). params: w0 (10), sigma (5), class_weights ([1, 1]), neighbors (2),
        connectivity (8), spacing - the parameters of distance_weighted_cross_entropy.

        compression: as score's.

        Raises SeglossError on an error answer."""
        compression = self._compression(compression)
        for key in ("target", "instances"):
            if key in params:
                raise TypeError(f"{key}: give arrays as weight_map's arguments, not as params")
        body = {}
        for key, value in (("target", target), ("instances", instances)):
            if value is not None:
                data = _npy(_check_array(value, key), compression)
                body[key] = {
                    "format": "npy",
                    "compression": compression,
                    "data": base64.b64encode(data).decode("ascii"),
                }
        body.update(params)
        answer = self._request(
            "POST",
            "/v1/weight-map",
            _dumps(body),
            {"Content-Type": "application/json", "Accept": "application/x-npy"},
        )
        try:
            return np.load(io.BytesIO(answer.body), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise SeglossError(answer.status, "bad answer", f"not .npy bytes: {e}") from None

    def _compression(self, compression):
        """compression resolved: "auto" is zstd when a codec is here and the server's catalog
        (asked once per Client) lists zstd among its "compression" values, else gzip."""
        _check_compression(compression)
        if compression != "auto":
            return compression
        if _ZSTD is None:
            return "gzip"
        if self._server_zstd is None:
            try:
                self._server_zstd = "zstd" in (self.catalog().get("compression") or [])
            except SeglossError as e:
                if e.status is None:
                    raise  # no connection: the request itself would fail the same way
                self._server_zstd = False  # an older server without the key, or an error page
        return "zstd" if self._server_zstd else "gzip"

    def catalog(self):
        """Every loss and metric with its parameters, types, defaults and ranges:
        GET /v1/catalog, parsed."""
        return self._json(self._request("GET", "/v1/catalog"))

    def healthy(self):
        """Whether the server process runs (GET /healthz answers 200). One attempt, at most
        10 s; an unreachable server is not healthy."""
        return self._probe("/healthz")

    def ready(self):
        """Whether the server accepts work (GET /readyz answers 200; 503 while draining or
        while its compute queue is full). One attempt, at most 10 s."""
        return self._probe("/readyz")

    # ---- challenges ------------------------------------------------------------------------

    def _chal(self, method, path, body=None, ctype=None, idempotent=None, accept_json=True):
        """A challenge route: the token, no retry of 429, a POST not repeated once sent."""
        headers = {}
        if self._token:
            headers["Authorization"] = "Bearer " + self._token
        if ctype:
            headers["Content-Type"] = ctype
        if idempotent is None:
            idempotent = method != "POST"
        answer = self._request(
            method, path, body, headers, retry_statuses=(503,), idempotent=idempotent
        )
        if not accept_json:
            return answer
        return self._json(answer) if answer.body else None

    @staticmethod
    def _path(name, *rest):
        parts = [urllib.parse.quote(str(p), safe="") for p in (name,) + rest]
        return "/v1/challenges/" + "/".join(parts)

    def challenge_configure(self, name, config):
        """Creates or replaces challenge name's configuration (PUT /v1/challenges/{name}; a dict
        with title, spec, ranking, columns, split, quota, opens_at, closes_at, ...). Returns the
        challenge's description. Admin token."""
        return self._chal("PUT", self._path(name), _dumps(config), "application/json")

    def challenge(self, name):
        """The public description of challenge name (GET /v1/challenges/{name})."""
        return self._chal("GET", self._path(name))

    def challenge_reference(
        self, name, arrays=None, ids=None, *, csv=None, shape=None, compression="gzip"
    ):
        """Uploads the hidden reference (PUT /v1/challenges/{name}/reference), replacing any
        earlier one. arrays: a dict {image id: mask array} (images may differ in size), or a
        stacked array [N, ...] with ids (default "0".."N-1"); or csv: Kaggle CSV text
        (ImageId,EncodedPixels) with shape=(H, W). Returns {"images", "public", "private",
        "bytes", "sha256"}. Admin token."""
        body, ctype = _images_body(arrays, ids, csv, shape, None, self._compression(compression),
                                   "arrays")
        return self._chal("PUT", self._path(name, "reference"), body, ctype)

    def challenge_add_participant(self, name, participant):
        """Adds a participant; returns its token (shown this once: the server keeps only its
        hash). Admin token."""
        answer = self._chal(
            "POST", self._path(name, "participants"), _dumps({"name": participant}),
            "application/json",
        )
        return answer["token"]

    def challenge_participants(self, name):
        """The participants: a list of {"name", "created_at", "submissions", "scored",
        "revoked"}. Admin token."""
        return self._chal("GET", self._path(name, "participants"))["participants"]

    def challenge_revoke(self, name, participant):
        """Revokes a participant: its token stops working and its rows leave the leaderboards.
        Admin token."""
        self._chal("DELETE", self._path(name, "participants", participant))

    def challenge_rescore(self, name, wait=False, timeout=None, poll=0.25):
        """Starts a re-score of every scored submission (POST .../rescore). Returns its progress
        {"done", "failed", "total", "running"}; with wait, polls GET .../rescore until it no
        longer runs (at most timeout seconds, default the client's; then TimeoutError). Admin
        token."""
        path = self._path(name, "rescore")
        progress = self._chal("POST", path, b"", None, idempotent=False)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while wait and progress.get("running"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"re-score of {name!r} still running: {progress}")
            time.sleep(poll)
            progress = self._chal("GET", path)
        return progress

    def challenge_export(self, name):
        """Every submission with its status, error, hashes and all scores of both splits, as
        CSV text (GET .../submissions?format=csv). Admin token."""
        answer = self._chal(
            "GET", self._path(name, "submissions") + "?format=csv", accept_json=False
        )
        return answer.body.decode("utf-8")

    def submit(
        self, name, predictions=None, ids=None, *, note=None, csv=None, shape=None,
        compression="gzip",
    ):
        """Submits predictions (POST /v1/challenges/{name}/submissions): a dict {image id:
        array}, a stacked array [N, ...] with ids, or csv text with shape=(H, W); the ids must
        be the reference's. note: shown beside the row (at most 200 characters). Returns the
        201 answer: {"id", "status", "public": {column: value}, "public_rank", "quota": {...},
        ...}. Raises QuotaError (429) or WindowError (403 outside the window), with
        retry_after; SeglossError for anything else (422: an invalid submission). Participant
        token."""
        body, ctype = _images_body(predictions, ids, csv, shape, note,
                                   self._compression(compression), "predictions")
        try:
            return self._chal("POST", self._path(name, "submissions"), body, ctype)
        except SeglossError as e:
            cls = None
            if e.status == 429:
                cls = QuotaError
            elif e.status == 403 and (" opens at " in e.detail or " closed at " in e.detail):
                cls = WindowError
            if cls is None:
                raise
            raise cls(e.status, e.title, e.detail, e.problem, e.retry_after,
                      e.request_id) from None

    def submissions(self, name):
        """The token's submissions (a participant: its own; the admin: all), newest first."""
        return self._chal("GET", self._path(name, "submissions"))["submissions"]

    def leaderboard(self, name, split="public", csv=False):
        """The leaderboard of split "public" or "private" (the private one: admin token, or
        anyone once revealed). Returns the parsed JSON {"challenge", "split", "columns",
        "rows": [{"rank", "participant", "scores", ...}]}, or with csv the CSV text."""
        if split not in ("public", "private"):
            raise ValueError(f"split: 'public' or 'private', not {split!r}")
        path = self._path(name, "leaderboard") + "?split=" + split
        if csv:
            answer = self._chal("GET", path + "&format=csv", accept_json=False)
            return answer.body.decode("utf-8")
        return self._chal("GET", path)

    # ---- HTTP ------------------------------------------------------------------------------

    def _probe(self, path):
        try:
            self._request("GET", path, retries=0, timeout=min(self.timeout, PROBE_TIMEOUT))
            return True
        except SeglossError:
            return False

    def _json(self, answer):
        try:
            return json.loads(answer.body)
        except ValueError as e:
            raise SeglossError(answer.status, "bad answer", f"not JSON: {e}") from None

    def _connection(self, timeout):
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def _once(self, method, path, body, headers, timeout, idempotent=True):
        """One attempt. Returns an _Answer; raises _Retryable for a failure before any answer
        that is safe to repeat, SeglossConnectionError for one that is not (with idempotent
        false, any failure after the connection was made: the request may have arrived)."""
        conn = self._connection(timeout)
        try:
            try:
                conn.connect()
            except OSError as e:  # refused, unreachable, connect timeout, DNS
                raise _Retryable(f"connect to {self.url}: {_reason(e)}") from None
            try:
                conn.request(method, self._prefix + path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except socket.timeout:
                raise SeglossConnectionError(
                    f"{method} {self.url}{path}: no answer within {timeout} s"
                ) from None
            except (ConnectionError, http.client.IncompleteRead) as e:
                # reset or closed before a whole answer (RemoteDisconnected too): scoring is a
                # pure function, so asking again loses nothing; a submission may have counted
                if not idempotent:
                    raise SeglossConnectionError(
                        f"{method} {self.url}{path}: {_reason(e)} (not repeated: it may have "
                        "arrived)"
                    ) from None
                raise _Retryable(f"{method} {self.url}{path}: {_reason(e)}") from None
            except (OSError, http.client.HTTPException) as e:
                raise SeglossConnectionError(f"{method} {self.url}{path}: {_reason(e)}") from None
            try:
                data = _decode_body(data, resp.getheader("Content-Encoding"))
            except (OSError, EOFError, zlib.error, ValueError) as e:
                raise SeglossError(resp.status, "bad answer", f"undecodable body: {e}") from None
            return _Answer(resp.status, resp.reason, resp, data)
        finally:
            conn.close()

    def _request(
        self, method, path, body=None, headers=None, retries=None, timeout=None,
        retry_statuses=(429, 503), idempotent=True,
    ):
        """Sends the request, retrying as the class says (answers of retry_statuses; failures
        after connecting only when idempotent); returns the 2xx _Answer or raises."""
        retries = self.retries if retries is None else retries
        timeout = self.timeout if timeout is None else timeout
        headers = dict(headers or {})
        headers.setdefault("Accept-Encoding", "zstd, gzip" if _ZSTD is not None else "gzip")
        headers.setdefault("User-Agent", "segloss-python/" + __version__)
        attempt = 0
        while True:
            delay = min(self.backoff * 2**attempt, MAX_DELAY)
            try:
                answer = self._once(method, path, body, headers, timeout, idempotent)
            except _Retryable as e:
                if attempt >= retries:
                    tries = attempt + 1
                    raise SeglossConnectionError(
                        f"{e} (after {tries} attempt{'s' if tries > 1 else ''})"
                    ) from None
            else:
                if 200 <= answer.status < 300:
                    return answer
                error = _problem(answer)
                if answer.status not in retry_statuses or attempt >= retries:
                    raise error
                if error.retry_after is not None:
                    delay = min(max(delay, error.retry_after), MAX_DELAY)
            time.sleep(delay)
            attempt += 1


class _Retryable(Exception):
    """A failure before any answer that the retry loop may repeat."""


def _reason(e):
    return str(e) or type(e).__name__


def _problem(answer):
    """The SeglossError of an error answer (problem+json, or whatever the body was)."""
    problem = None
    ctype = (answer.headers.getheader("Content-Type") or "").split(";")[0].strip().lower()
    if ctype.endswith("json"):
        try:
            parsed = json.loads(answer.body)
            if isinstance(parsed, dict):
                problem = parsed
        except ValueError:
            pass
    title = (problem or {}).get("title") or answer.reason or "HTTP error"
    detail = (problem or {}).get("detail") or (problem or {}).get("error")
    if not detail:
        detail = answer.body.decode("utf-8", "replace").strip()[:500] or "(no detail)"
    return SeglossError(
        answer.status,
        title,
        detail,
        problem=problem,
        retry_after=_retry_after(answer.headers.getheader("Retry-After")),
        request_id=answer.headers.getheader("X-Request-ID"),
    )


def score(pred, target, losses=None, metrics=None, *, url=None, **kwargs):
    """Client(url).score(pred, target, losses, metrics, **kwargs): scores one batch with the
    default timeout and retries (see Client.score)."""
    return Client(url).score(pred, target, losses, metrics, **kwargs)


def weight_map(target, *, url=None, **kwargs):
    """Client(url).weight_map(target, **kwargs): the U-Net weight map as a float32 array (see
    Client.weight_map)."""
    return Client(url).weight_map(target, **kwargs)
