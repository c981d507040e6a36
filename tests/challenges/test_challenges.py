"""test_challenges.py - challenges (CHALLENGES.md) over real HTTP against a real seglossd on a
real data directory: configuration, the reference and submission forms, participants, the whole
authentication matrix, quotas (exact under concurrency), the window, leaderboards with ties,
finals and the private reveal, disqualification, revocation, re-scoring, the admin's export,
/metrics, the access log, and durability across kill -9.

Expected scores come from the definitions written out here, never from seglossd: Dice of masks
P and T is 2|P and T| / (|P| + |T|) (Dice 1945; 1 when both are empty, the API's empty "one"
convention), IoU |P and T| / |P or T|; a mean is over the images of the split.

Each test is "challenges/NAME" (NAME: the function without test_) for make test T=PATTERN.
With --pg the same tests run against PostgreSQL (tests/pg/pgserver.py starts a throwaway server;
each fixture gets a database of its own, --blob-dir and --admin-token-file in its directory, a
2 s lease), named "challenges_pg/NAME".
Python 3 standard library + numpy (Debian's python3-numpy)."""

import argparse
import base64
import gzip
import io
import json
import os
import re
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "clients"))
import harness  # noqa: E402  (tests/clients/harness.py)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pg"))
import pgserver  # noqa: E402  (tests/pg/pgserver.py)

# --pg: the PostgreSQL server every fixture's database lives on (None: SQLite in a data dir)
PG = None
# a fixture's lease on PostgreSQL, seconds: a killed seglossd's submissions fail this soon
PG_LEASE_S = 2

# ---- HTTP ------------------------------------------------------------------------------------


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def detail(self):
        return (self.json or {}).get("detail", "") if isinstance(self.json, dict) else ""


def call(url, method, path, body=None, token=None, ctype=None, timeout=60):
    """One request; body: a dict (JSON), bytes (with ctype), or None."""
    headers = {}
    data = None
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    elif body is not None:
        data = body
        headers["Content-Type"] = ctype
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Answer(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.headers, e.read())


def npy(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def multipart(parts):
    """parts: [(name, bytes)] -> (body, content type)."""
    b = "segloss-test-boundary-7d1f"
    out = io.BytesIO()
    for name, data in parts:
        out.write(f"--{b}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                  f"filename=\"{name}.npy\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                  .encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{b}--\r\n".encode())
    return out.getvalue(), "multipart/form-data; boundary=" + b


def stacked(arr, ids, key, note=None):
    body = {key: {"format": "list", "dtype": str(arr.dtype), "shape": list(arr.shape),
                  "data": arr.ravel().tolist()}, "ids": ids}
    if note is not None:
        body["note"] = note
    return body


# ---- hand-worked scores ---------------------------------------------------------------------


def dice(p, t):
    """Dice of two 0/1 masks, 2|P and T| / (|P| + |T|), 1 when both are empty."""
    inter = float(np.logical_and(p, t).sum())
    s = float(p.sum() + t.sum())
    return 1.0 if s == 0 else 2 * inter / s


def iou(p, t):
    inter = float(np.logical_and(p, t).sum())
    union = float(np.logical_or(p, t).sum())
    return 1.0 if union == 0 else inter / union


# The reference of the main challenge: four 4x4 masks a, b, c, d (public: a and b).
REF = {
    "a": np.array([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]], np.uint8),
    "b": np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.uint8),
    "c": np.array([[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1]], np.uint8),
    "d": np.array([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]], np.uint8),
}
IDS = ["a", "b", "c", "d"]
PUBLIC = ["a", "b"]

CONFIG = {
    "title": "Squares 2027", "description": "four 4x4 masks",
    "spec": {"mode": "binary", "prediction_type": "labels", "metrics": ["dice", "iou"]},
    "ranking": [{"key": "metrics.dice.mean", "order": "desc"}],
    "columns": ["metrics.dice.mean", "metrics.iou.mean", "metrics.dice.global"],
    "split": {"public_ids": PUBLIC},
    "quota": {"per_day": 100, "total": None, "concurrent": 4},
    "final_selections": 1,
}


def shifted(k):
    """A prediction: the reference with every mask shifted k columns right (0: perfect)."""
    return {i: np.roll(m, k, axis=1) * (np.arange(4) >= k)[None, :] for i, m in REF.items()}


def expected_mean(pred, ids, fn=dice):
    return sum(fn(pred[i], REF[i]) for i in ids) / len(ids)


def expected_global_dice(pred, ids):
    tp = sum(float(np.logical_and(pred[i], REF[i]).sum()) for i in ids)
    s = sum(float(pred[i].sum() + REF[i].sum()) for i in ids)
    return 2 * tp / s


# ---- the fixture ---------------------------------------------------------------------------


class Env:
    """A seglossd with a fresh data directory and the admin token it made."""

    def __init__(self, seglossd, *extra, data_dir=None):
        self.seglossd = seglossd
        self.dir = data_dir or tempfile.mkdtemp(prefix="segloss-chal-")
        self.extra = extra
        if PG:
            # a database of its own, and the admin token every replica would share
            self.db = PG.createdb(os.path.basename(self.dir).lower())
            path = os.path.join(self.dir, "admin.token")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, os.urandom(32).hex().encode() + b"\n")
            os.close(fd)
        self.start()

    def store_args(self):
        """seglossd's flags for this fixture's store."""
        if not PG:
            return ["--data-dir", self.dir]
        return ["--db", self.db, "--db-password-file", PG.password_file,
                "--blob-dir", os.path.join(self.dir, "blobs"),
                "--admin-token-file", os.path.join(self.dir, "admin.token"),
                "--lease-seconds", str(PG_LEASE_S)]

    def start(self):
        self.srv = harness.Server(self.seglossd, *self.store_args(), *self.extra)
        self.url = self.srv.url
        with open(os.path.join(self.dir, "admin.token")) as f:
            self.admin = f.read().strip()

    def stop(self):
        """Stops seglossd (SIGTERM: it drains and exits 0); returns its exit status (99: the
        memory checker of make valgrind found errors)."""
        self.srv.stop()
        return self.srv.proc.returncode

    def call(self, method, path, body=None, token=None, ctype=None):
        return call(self.url, method, path, body, token, ctype)

    def setup(self, name="squares", config=None, participants=("team-a", "team-b", "team-c")):
        cfg = config or CONFIG
        a = self.call("PUT", f"/v1/challenges/{name}", cfg, self.admin)
        assert a.status in (200, 201), a.raw
        arr = np.stack([REF[i] for i in IDS])
        a = self.call("PUT", f"/v1/challenges/{name}/reference", stacked(arr, IDS, "target"),
                      self.admin)
        assert a.status in (200, 201), a.raw
        tokens = {}
        for p in participants:
            a = self.call("POST", f"/v1/challenges/{name}/participants", {"name": p}, self.admin)
            assert a.status == 201, a.raw
            tokens[p] = a.json["token"]
        return tokens

    def submit(self, name, token, pred, note=None):
        arr = np.stack([pred[i] for i in IDS]).astype(np.uint8)
        return self.call("POST", f"/v1/challenges/{name}/submissions",
                         stacked(arr, IDS, "prediction", note), token)


def close(a, b, tol=1e-9):
    return a is not None and b is not None and abs(a - b) <= tol


# ---- tests -------------------------------------------------------------------------------


def test_off(t, seglossd):
    srv = harness.Server(seglossd)
    try:
        a = call(srv.url, "GET", "/v1/challenges")
        t.check(a.status == 404 and "--data-dir" in a.detail(), "without --data-dir: 404 naming "
                "the flag", a.raw)
        a = call(srv.url, "PUT", "/v1/challenges/x", CONFIG, "tok")
        t.check(a.status == 404 and "--data-dir" in a.detail(), "PUT without --data-dir: 404")
        a = call(srv.url, "POST", "/v1/score", {"prediction": [[[0.9, 0.1]]],
                                                  "target": [[[1, 0]]], "metrics": ["dice"]})
        t.check(a.status == 200, "/v1/score still works without a data dir", a.raw)
    finally:
        srv.stop()


def test_admin_token(t, env):
    path = os.path.join(env.dir, "admin.token")
    if PG:
        # given with --admin-token-file; neither it nor the database password is logged
        env.srv.err.flush()
        with open(env.srv.err.name) as f:
            log = f.read()
        t.check(env.admin not in log and PG.password not in log, "the log never holds the "
                "admin token or the database password")
        a = env.call("GET", "/v1/challenges", token=env.admin)
        t.check(a.status == 200, "the admin token from --admin-token-file works", a.raw[:200])
        return
    mode = stat.S_IMODE(os.stat(path).st_mode)
    t.check(mode == 0o600, "admin.token is mode 0600", oct(mode))
    t.check(re.fullmatch(r"[0-9a-f]{64}", env.admin) is not None, "the admin token is 256 bits "
            "in hex")
    env.srv.err.flush()
    with open(env.srv.err.name) as f:
        log = f.read()
    t.check(path in log and env.admin not in log, "the log names the token's path, never its "
            "value")


def test_config(t, env):
    a = env.call("PUT", "/v1/challenges/cfg-1", CONFIG, env.admin)
    t.check(a.status == 201 and a.json["version"] == 1, "PUT creates: 201, version 1", a.raw)
    t.check(a.json.get("quota", {}).get("per_day") == 100 and a.json.get("keep") == "best",
            "the answer shows the configuration with defaults filled", a.raw)
    a = env.call("PUT", "/v1/challenges/cfg-1", CONFIG, env.admin)
    t.check(a.status == 200 and a.json["version"] == 2, "PUT replaces: 200, version 2", a.raw)
    bad = dict(CONFIG, ranking=[{"key": "metrics.hd95.mean", "order": "asc"}])
    a = env.call("PUT", "/v1/challenges/cfg-2", bad, env.admin)
    t.check(a.status == 422 and "ranking[0].key" in a.detail(), "a ranking key the spec does "
            "not produce: 422 naming ranking[0].key", a.raw)
    bad = dict(CONFIG, spec={"losses": ["nope"]})
    a = env.call("PUT", "/v1/challenges/cfg-2", bad, env.admin)
    t.check(a.status == 422 and a.detail().startswith("spec."), "a bad spec: 422 with the "
            "path prefixed spec.", a.raw)
    bad = {k: v for k, v in CONFIG.items() if k != "title"}
    a = env.call("PUT", "/v1/challenges/cfg-2", bad, env.admin)
    t.check(a.status == 422 and "title" in a.detail(), "title is required", a.raw)
    a = env.call("PUT", "/v1/challenges/Bad_Name", CONFIG, env.admin)
    t.check(a.status == 422, "a bad challenge name on PUT: 422", a.raw)
    a = env.call("GET", "/v1/challenges/Bad_Name")
    t.check(a.status == 404, "a bad challenge name elsewhere: 404", a.raw)
    bad = dict(CONFIG, quota={"per_day": 2.5})
    a = env.call("PUT", "/v1/challenges/cfg-2", bad, env.admin)
    t.check(a.status == 422 and "quota.per_day" in a.detail(), "quota.per_day 2.5 is refused, "
            "not rounded", a.raw)
    a = env.call("GET", "/v1/challenges/cfg-1")
    t.check(a.status == 200 and "split" not in a.json, "the public description has no split",
            a.raw)
    a = env.call("GET", "/v1/challenges/cfg-1", token=env.admin)
    t.check(a.status == 200 and "split" in a.json, "the admin sees the split", a.raw)
    a = env.call("GET", "/v1/challenges")
    names = [c["name"] for c in a.json["challenges"]] if a.status == 200 else []
    t.check("cfg-1" in names, "GET /v1/challenges lists it", a.raw)


def test_reference_forms(t, env):
    env.call("PUT", "/v1/challenges/ref-1", CONFIG, env.admin)
    arr = np.stack([REF[i] for i in IDS])
    a = env.call("PUT", "/v1/challenges/ref-1/reference", stacked(arr, IDS, "target"), env.admin)
    t.check(a.status == 201 and a.json["images"] == 4 and a.json["public"] == 2 and
            a.json["private"] == 2, "stacked JSON reference: 201, 4 images, 2 public", a.raw)
    sha_json = a.json.get("sha256")
    # the same images as one .npy part each (one gzip'd): the same reference version
    parts = [(i, npy(REF[i])) for i in IDS]
    parts[1] = (parts[1][0], gzip.compress(parts[1][1]))
    body, ct = multipart(parts)
    a = env.call("PUT", "/v1/challenges/ref-1/reference", body, env.admin, ct)
    t.check(a.status == 200 and a.json.get("sha256") == sha_json, "the same images as .npy "
            "parts: 200 and the same sha256", a.raw)
    # images of different sizes
    sizes = {"a": np.zeros((3, 5), np.uint8), "b": np.ones((4, 4), np.uint8),
             "c": np.eye(6, dtype=np.uint8), "d": np.zeros((2, 2), np.uint8)}
    body, ct = multipart([(i, npy(sizes[i])) for i in IDS])
    a = env.call("PUT", "/v1/challenges/ref-2", CONFIG, env.admin)
    a = env.call("PUT", "/v1/challenges/ref-2/reference", body, env.admin, ct)
    t.check(a.status == 201 and a.json["images"] == 4, "images of different sizes: 201", a.raw)
    # Kaggle CSV: 1-based runs, column-major; "1 2" in a 2x2 image is the first column
    csv = b"ImageId,EncodedPixels\na,1 2\nb,\nc,3 2\nd,1 1\n"
    body, ct = multipart([("csv", csv), ("spec", json.dumps({"shape": [2, 2]}).encode())])
    a = env.call("PUT", "/v1/challenges/ref-3", CONFIG, env.admin)
    a = env.call("PUT", "/v1/challenges/ref-3/reference", body, env.admin, ct)
    t.check(a.status == 201 and a.json["images"] == 4, "a Kaggle CSV reference: 201", a.raw)
    # a value that is not a 0/1 label names the image
    bad = arr.copy()
    bad[2, 0, 0] = 7
    a = env.call("PUT", "/v1/challenges/ref-1/reference", stacked(bad, IDS, "target"), env.admin)
    t.check(a.status == 422 and "'c'" in a.detail(), "a label 7 in binary mode: 422 naming the "
            "id", a.raw)
    a = env.call("GET", "/v1/challenges/ref-2")
    imgs = (a.json.get("reference") or {}).get("images", []) if a.status == 200 else []
    t.check([i.get("shape") for i in imgs] == [[3, 5], [4, 4], [6, 6], [2, 2]] and
            all(set(i) == {"id", "shape", "dtype"} for i in imgs), "the description shows ids, "
            "shapes and dtypes of the reference, nothing else", a.raw)


def test_mixed_sizes(t, env):
    """A reference of different sizes is scored per shape and combined: the mean is over all
    images, the global Dice from summed counts."""
    ref = {"a": np.array([[1, 1, 0]], np.uint8), "b": np.array([[1, 0], [0, 1]], np.uint8),
           "c": np.array([[1, 0, 0]], np.uint8)}
    pred = {"a": np.array([[1, 0, 0]], np.uint8), "b": np.array([[1, 1], [0, 1]], np.uint8),
            "c": np.array([[0, 0, 0]], np.uint8)}
    cfg = dict(CONFIG, split={"public_fraction": 1.0})
    env.call("PUT", "/v1/challenges/mixed", cfg, env.admin)
    body, ct = multipart([(i, npy(ref[i])) for i in "abc"])
    a = env.call("PUT", "/v1/challenges/mixed/reference", body, env.admin, ct)
    tok = env.call("POST", "/v1/challenges/mixed/participants", {"name": "p"}, env.admin).json
    body, ct = multipart([(i, npy(pred[i])) for i in "abc"])
    a = env.call("POST", "/v1/challenges/mixed/submissions", body, tok["token"], ct)
    # by hand: a: 2*1/(1+2) = 2/3; b: 2*2/(3+2) = 4/5; c: 2*0/(0+1) = 0; mean 22/45
    # global: tp 3, |P| 4, |T| 5: 6/9
    want_mean = (2 / 3 + 4 / 5 + 0) / 3
    got = (a.json or {}).get("public", {})
    t.check(a.status == 201 and close(got.get("metrics.dice.mean"), want_mean),
            "mixed sizes: Dice mean over all images (22/45)", a.raw)
    t.check(close(got.get("metrics.dice.global"), 6 / 9), "mixed sizes: global Dice from "
            "summed counts (6/9)", a.raw)


def test_reference_cached(t, env):
    """A reference is loaded once per version and shared: with its blob gone from the disk after
    the first submission, the next ones still score."""
    tokens = env.setup("cached", participants=("p1",))
    a = env.submit("cached", tokens["p1"], shifted(1))
    sha = env.call("GET", "/v1/challenges/cached", token=env.admin).json["reference"]["sha256"]
    path = os.path.join(env.dir, "blobs", sha[:2], sha)
    t.check(a.status == 201 and os.path.exists(path), "the reference's blob is blobs/ab/abcd...",
            path)
    os.rename(path, path + ".away")
    try:
        a = env.submit("cached", tokens["p1"], shifted(0))
        t.check(a.status == 201 and close(a.json["public"]["metrics.dice.mean"], 1.0),
                "with the blob gone the next submission still scores: the reference is not "
                "read again", a.raw)
    finally:
        os.rename(path + ".away", path)


def test_participants(t, env):
    env.call("PUT", "/v1/challenges/parts", CONFIG, env.admin)
    a = env.call("POST", "/v1/challenges/parts/participants", {"name": "alpha"}, env.admin)
    t.check(a.status == 201 and re.fullmatch(r"[0-9a-f]{64}", a.json.get("token", "")),
            "add: 201 with a 256-bit token", a.raw)
    tok = a.json["token"]
    a = env.call("POST", "/v1/challenges/parts/participants", {"name": "alpha"}, env.admin)
    t.check(a.status == 409, "a taken name: 409", a.raw)
    a = env.call("POST", "/v1/challenges/parts/participants", {"name": "bad name"}, env.admin)
    t.check(a.status == 422, "a bad name: 422", a.raw)
    a = env.call("GET", "/v1/challenges/parts/participants", token=env.admin)
    ps = a.json.get("participants", []) if a.status == 200 else []
    t.check([p["name"] for p in ps] == ["alpha"] and ps[0]["revoked"] is False and
            "token" not in ps[0], "list: names, no tokens", a.raw)
    a = env.call("DELETE", "/v1/challenges/parts/participants/alpha", token=env.admin)
    t.check(a.status == 204, "revoke: 204", a.raw)
    a = env.call("GET", "/v1/challenges/parts/submissions", token=tok)
    t.check(a.status == 401 and "Bearer" in (a.headers.get("WWW-Authenticate") or ""),
            "a revoked token: 401 with WWW-Authenticate: Bearer", a.raw)


def test_auth_matrix(t, env):
    """Every route with: no token, an unknown token, the participant's own token, another
    challenge's participant, a revoked participant, the admin."""
    tokens = env.setup("auth-a")
    other = env.setup("auth-b", participants=("stranger",))["stranger"]
    mine = tokens["team-a"]
    revoked = tokens["team-c"]
    env.call("DELETE", "/v1/challenges/auth-a/participants/team-c", token=env.admin)
    sub = env.submit("auth-a", mine, shifted(0))
    sid = sub.json["id"]
    pred = stacked(np.stack([REF[i] for i in IDS]), IDS, "prediction")
    ref = stacked(np.stack([REF[i] for i in IDS]), IDS, "target")
    C = "/v1/challenges/auth-a"
    # (method, path, body, expected for: anon, unknown, mine, other, revoked, admin)
    rows = [
        ("GET", "/v1/challenges", None, (200, 401, 200, 200, 401, 200)),
        ("GET", C, None, (200, 401, 200, 401, 401, 200)),
        ("PUT", C, CONFIG, (401, 401, 403, 401, 401, 200)),
        ("PUT", C + "/reference", ref, (401, 401, 403, 401, 401, 200)),
        ("POST", C + "/participants", {"name": "zz-new"}, (401, 401, 403, 401, 401, 201)),
        ("GET", C + "/participants", None, (401, 401, 403, 401, 401, 200)),
        ("DELETE", C + "/participants/nobody", None, (401, 401, 403, 401, 401, 404)),
        ("POST", C + "/submissions", pred, (401, 401, 201, 401, 401, 403)),
        ("GET", C + "/submissions", None, (401, 401, 200, 401, 401, 200)),
        ("GET", C + "/submissions/" + sid, None, (401, 401, 200, 401, 401, 200)),
        ("PUT", C + "/submissions/" + sid + "/final", None, (401, 401, 200, 401, 401, 403)),
        ("DELETE", C + "/submissions/" + sid + "/final", None, (401, 401, 200, 401, 401, 403)),
        ("PATCH", C + "/submissions/" + sid, {"disqualified": False},
         (401, 401, 403, 401, 401, 200)),
        ("GET", C + "/leaderboard?split=public", None, (200, 401, 200, 401, 401, 200)),
        ("GET", C + "/leaderboard?split=private", None, (401, 401, 403, 401, 401, 200)),
        ("POST", C + "/rescore", None, (401, 401, 403, 401, 401, 202)),
        ("GET", C + "/rescore", None, (401, 401, 403, 401, 401, 200)),
    ]
    who = [None, "f" * 64, mine, other, revoked, env.admin]
    names = ["anonymous", "unknown token", "participant", "another challenge's participant",
             "revoked", "admin"]
    for method, path, body, want in rows:
        for k, tok in enumerate(who):
            b = body
            if method == "POST" and path.endswith("/participants"):
                b = {"name": f"zz-{k}"}
            a = env.call(method, path, b, tok)
            ok = a.status == want[k]
            if ok and a.status == 401:
                ok = "Bearer" in (a.headers.get("WWW-Authenticate") or "")
            t.check(ok, f"{method} {path.replace(sid, '{id}')} as {names[k]}: {want[k]}",
                    f"{a.status} {a.raw[:200]!r}")
    # the admin sees another participant's submission, a participant does not
    a = env.call("GET", C + "/submissions/" + sid, token=tokens["team-b"])
    t.check(a.status == 404, "another participant's submission: 404", a.raw)


def test_submission(t, env):
    tokens = env.setup("sub-1")
    pred = shifted(1)
    a = env.submit("sub-1", tokens["team-a"], pred, note="first try")
    j = a.json or {}
    t.check(a.status == 201, "a submission: 201", a.raw)
    for k in ("id", "participant", "received_at", "sha256", "bytes", "status", "note", "public",
              "public_rank", "quota"):
        t.check(k in j, f"the 201 answer has {k}")
    t.check(j.get("status") == "scored" and j.get("participant") == "team-a" and
            j.get("note") == "first try", "status scored, participant, note", a.raw)
    pub = j.get("public", {})
    t.check(close(pub.get("metrics.dice.mean"), expected_mean(pred, PUBLIC)),
            "public Dice mean = the hand calculation over the public ids", a.raw)
    t.check(close(pub.get("metrics.iou.mean"), expected_mean(pred, PUBLIC, iou)),
            "public IoU mean = the hand calculation", a.raw)
    t.check(close(pub.get("metrics.dice.global"), expected_global_dice(pred, PUBLIC)),
            "public global Dice from summed counts", a.raw)
    t.check("private" not in j and "per_image" not in a.raw.decode(), "no private scores, no "
            "per-image values for a participant", a.raw)
    t.check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", j.get("received_at", "")),
            "received_at is RFC 3339 UTC with Z", a.raw)
    q = j.get("quota", {})
    t.check(q.get("used_today") == 1 and q.get("per_day") == 100 and
            q.get("remaining_today") == 99 and q.get("total") is None, "the quota part", a.raw)
    a = env.call("GET", "/v1/challenges/sub-1/submissions", token=tokens["team-a"])
    subs = a.json.get("submissions", []) if a.status == 200 else []
    t.check(len(subs) == 1 and subs[0]["final"] is False and "per_image" not in a.raw.decode(),
            "the participant lists its own submission, without per-image values", a.raw)
    a = env.call("GET", "/v1/challenges/sub-1/submissions", token=tokens["team-b"])
    t.check(a.status == 200 and a.json["submissions"] == [], "another participant sees none")
    a = env.call("GET", "/v1/challenges/sub-1/submissions", token=env.admin)
    s = a.json["submissions"][0] if a.status == 200 and a.json["submissions"] else {}
    per = s.get("per_image", {}).get("public", {}) or {}
    got = per.get("metrics", {}).get("dice", {}).get("per_image")
    want = [dice(pred[i], REF[i]) for i in per.get("ids", [])]
    t.check(got is not None and len(got) == 2 and all(close(g, w) for g, w in zip(got, want)),
            "the admin sees per-image values with their ids", a.raw[:300])
    t.check(s.get("reference_sha256") and s.get("config_version") == 1 and
            s.get("server_version"), "the audit fields", a.raw[:300])
    # a spec key in the body is refused and the failed submission is listed, not counted
    body = stacked(np.stack([pred[i] for i in IDS]), IDS, "prediction")
    body["threshold"] = 0.3
    a = env.call("POST", "/v1/challenges/sub-1/submissions", body, tokens["team-a"])
    t.check(a.status == 422 and "threshold" in a.detail(), "a spec key in the body: 422", a.raw)
    body = stacked(np.stack([pred[i] for i in IDS[:3]]), IDS[:3], "prediction")
    a = env.call("POST", "/v1/challenges/sub-1/submissions", body, tokens["team-a"])
    t.check(a.status == 422 and "1 missing" in a.detail() and "'d'" in a.detail(),
            "a missing id: 422 saying how many and which", a.raw)
    body = stacked(np.stack([np.zeros((3, 3), np.uint8)] * 4), IDS, "prediction")
    a = env.call("POST", "/v1/challenges/sub-1/submissions", body, tokens["team-a"])
    t.check(a.status == 422 and "[3, 3]" in a.detail() and "[4, 4]" in a.detail(),
            "a wrong shape: 422 naming both shapes", a.raw)
    a = env.call("GET", "/v1/challenges/sub-1/submissions", token=tokens["team-a"])
    st = [s["status"] for s in a.json["submissions"]]
    t.check(st == ["failed", "failed", "failed", "scored"] and
            all("error" in s for s in a.json["submissions"][:3]), "failed ones are listed "
            "newest first with their error", a.raw[:300])
    a = env.submit("sub-1", tokens["team-a"], pred)
    t.check(a.status == 201 and a.json["quota"]["used_today"] == 2, "failed submissions did "
            "not count", a.raw)


def test_quota_day(t, env):
    cfg = dict(CONFIG, quota={"per_day": 2, "total": None, "concurrent": 1})
    tokens = env.setup("quota-d", config=cfg)
    tok = tokens["team-a"]
    st = [env.submit("quota-d", tok, shifted(0)).status for _ in range(2)]
    a = env.submit("quota-d", tok, shifted(0))
    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    want = (midnight - now).total_seconds()
    ra = int(a.headers.get("Retry-After") or -1)
    t.check(st == [201, 201] and a.status == 429, "per_day 2: the third is 429", a.raw)
    t.check(abs(ra - want) <= 3, "Retry-After is the seconds to the next UTC midnight",
            f"{ra} vs {want}")
    reset = midnight.strftime("%Y-%m-%dT%H:%M:%SZ")
    t.check("2 of 2" in a.detail() and reset in a.detail(), "the detail says the count and "
            "the reset time", a.raw)
    a = env.call("GET", "/v1/challenges/quota-d/submissions", token=tok)
    t.check(len(a.json["submissions"]) == 2, "a refused submission is not stored", a.raw[:200])
    cfg = dict(CONFIG, quota={"per_day": None, "total": 1, "concurrent": 1})
    tokens = env.setup("quota-t", config=cfg)
    env.submit("quota-t", tokens["team-a"], shifted(0))
    a = env.submit("quota-t", tokens["team-a"], shifted(0))
    t.check(a.status == 429 and "total" in a.detail(), "total 1: the second is 429", a.raw)


def test_quota_exact(t, env):
    """k slots left and n > k submissions at once: exactly k 201s."""
    cfg = dict(CONFIG, quota={"per_day": 3, "total": None, "concurrent": 10})
    tokens = env.setup("quota-x", config=cfg)
    out = []
    lock = threading.Lock()

    def go():
        a = env.submit("quota-x", tokens["team-a"], shifted(1))
        with lock:
            out.append(a.status)

    th = [threading.Thread(target=go) for _ in range(8)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    t.check(out.count(201) == 3 and out.count(429) == 5, "8 at once with 3 slots: 3 x 201 and "
            "5 x 429", repr(sorted(out)))
    cfg = dict(CONFIG, quota={"per_day": 50, "total": None, "concurrent": 1})
    tokens = env.setup("quota-c", config=cfg)
    out.clear()
    th = [threading.Thread(target=lambda: out.append(
        env.submit("quota-c", tokens["team-a"], shifted(1)).status)) for _ in range(6)]
    for x in th:
        x.start()
    for x in th:
        x.join()
    t.check(out.count(201) >= 1 and out.count(201) + out.count(429) == 6,
            "concurrent 1: at least one 201, the others 429", repr(sorted(out)))


def test_window(t, env):
    past = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    future = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    tokens = env.setup("win-closed", config=dict(CONFIG, closes_at=past))
    a = env.submit("win-closed", tokens["team-a"], shifted(0))
    t.check(a.status == 403 and past in a.detail(), "after closes_at: 403 naming the time",
            a.raw)
    tokens = env.setup("win-later", config=dict(CONFIG, opens_at=future))
    a = env.submit("win-later", tokens["team-a"], shifted(0))
    t.check(a.status == 403 and future in a.detail(), "before opens_at: 403 naming the time",
            a.raw)


def test_leaderboard(t, env):
    tokens = env.setup("lb", participants=("p1", "p2", "p3", "p4"))
    # p1 and p2 tie (both perfect); p3 is worse; p4 submits something with a null Dice? no:
    # p4 submits the worst. p1 submits before p2.
    env.submit("lb", tokens["p1"], shifted(0))
    time.sleep(1.1)
    env.submit("lb", tokens["p2"], shifted(0))
    env.submit("lb", tokens["p3"], shifted(1))
    env.submit("lb", tokens["p3"], shifted(2))  # worse than its first: best keeps the first
    env.submit("lb", tokens["p4"], shifted(3))
    a = env.call("GET", "/v1/challenges/lb/leaderboard?split=public")
    rows = a.json.get("rows", []) if a.status == 200 else []
    got = [(r["rank"], r["participant"]) for r in rows]
    t.check(got == [(1, "p1"), (1, "p2"), (3, "p3"), (4, "p4")], "ties share a rank (1, 1, 3) "
            "and stand by earlier submission", repr(got))
    p3 = next((r for r in rows if r["participant"] == "p3"), {})
    t.check(p3.get("entries") == 2 and close(p3.get("scores", {}).get("metrics.dice.mean"),
                                               expected_mean(shifted(1), PUBLIC)),
            "keep best: p3's better submission stands; entries 2", repr(p3))
    t.check(a.json.get("version") == 1 and a.json.get("split") == "public" and
            [c["key"] for c in a.json.get("columns", [])] == CONFIG["columns"],
            "the leaderboard's header fields", a.raw[:300])
    a = env.call("GET", "/v1/challenges/lb/leaderboard?split=public&format=csv")
    lines = a.raw.decode().splitlines()
    t.check(a.status == 200 and lines[0] == "rank,participant,submission,submitted_at," +
            ",".join(CONFIG["columns"]) and lines[1].startswith("1,p1,"), "CSV leaderboard",
            a.raw[:300])
    env.call("PUT", "/v1/challenges/lb", dict(CONFIG, keep="latest"), env.admin)
    a = env.call("GET", "/v1/challenges/lb/leaderboard")
    p3 = next((r for r in a.json.get("rows", []) if r["participant"] == "p3"), {})
    t.check(close(p3.get("scores", {}).get("metrics.dice.mean"),
                  expected_mean(shifted(2), PUBLIC)), "keep latest: p3's latest stands",
            repr(p3))


def test_finals_private(t, env):
    tokens = env.setup("fin", participants=("p1", "p2"))
    s1 = env.submit("fin", tokens["p1"], shifted(1)).json["id"]
    s2 = env.submit("fin", tokens["p1"], shifted(0)).json["id"]
    env.submit("fin", tokens["p2"], shifted(2))
    a = env.call("GET", "/v1/challenges/fin/leaderboard?split=private")
    t.check(a.status == 401, "private before the reveal, anonymous: 401", a.raw)
    a = env.call("GET", "/v1/challenges/fin/leaderboard?split=private", token=tokens["p1"])
    t.check(a.status == 403, "private before the reveal, participant: 403", a.raw)
    a = env.call("GET", "/v1/challenges/fin/leaderboard?split=private", token=env.admin)
    p1 = next((r for r in a.json.get("rows", []) if r["participant"] == "p1"), {})
    # no finals selected, final_selections 1: the best public submission (s2) stands
    t.check(p1.get("submission") == s2 and close(
        p1.get("scores", {}).get("metrics.dice.mean"), expected_mean(shifted(0), ["c", "d"])),
        "no finals: the best public submission goes private", repr(p1))
    a = env.call("PUT", f"/v1/challenges/fin/submissions/{s1}/final", token=tokens["p1"])
    t.check(a.status == 200 and a.json.get("final") is True, "select a final: 200", a.raw)
    a = env.call("PUT", f"/v1/challenges/fin/submissions/{s2}/final", token=tokens["p1"])
    t.check(a.status == 409, "over final_selections: 409", a.raw)
    a = env.call("GET", "/v1/challenges/fin/leaderboard?split=private", token=env.admin)
    p1 = next((r for r in a.json.get("rows", []) if r["participant"] == "p1"), {})
    t.check(p1.get("submission") == s1, "a selected final stands on the private leaderboard",
            repr(p1))
    env.call("PUT", "/v1/challenges/fin", dict(CONFIG, private_visible=True), env.admin)
    a = env.call("GET", "/v1/challenges/fin/leaderboard?split=private")
    t.check(a.status == 200 and len(a.json["rows"]) == 2, "after the reveal anyone sees the "
            "private leaderboard", a.raw)
    a = env.call("GET", f"/v1/challenges/fin/submissions/{s1}", token=tokens["p1"])
    t.check(a.status == 200 and "private" in a.json, "after the reveal a participant sees its "
            "private scores", a.raw)
    a = env.call("DELETE", f"/v1/challenges/fin/submissions/{s1}/final", token=tokens["p1"])
    t.check(a.status == 200 and a.json.get("final") is False, "unselect: 200", a.raw)


def test_disqualify_revoke(t, env):
    tokens = env.setup("dq", participants=("p1", "p2", "p3"))
    s1 = env.submit("dq", tokens["p1"], shifted(0)).json["id"]
    env.submit("dq", tokens["p2"], shifted(1))
    env.submit("dq", tokens["p3"], shifted(2))
    a = env.call("PATCH", f"/v1/challenges/dq/submissions/{s1}",
                 {"disqualified": True, "reason": "copied"}, env.admin)
    t.check(a.status == 200 and a.json.get("disqualified") is True, "disqualify: 200", a.raw)
    a = env.call("GET", "/v1/challenges/dq/leaderboard")
    t.check([r["participant"] for r in a.json["rows"]] == ["p2", "p3"], "a disqualified "
            "submission leaves the leaderboard", a.raw)
    env.call("DELETE", "/v1/challenges/dq/participants/p3", token=env.admin)
    a = env.call("GET", "/v1/challenges/dq/leaderboard")
    t.check([r["participant"] for r in a.json["rows"]] == ["p2"], "a revoked participant's "
            "rows leave the leaderboard", a.raw)


def test_rescore(t, env):
    tokens = env.setup("rs")
    pred = shifted(1)
    for p in tokens:
        env.submit("rs", tokens[p], pred)
    # a new threshold does not change label predictions; a new metric does change the values:
    # recall (TP / (TP + FN)) joins the spec
    cfg = dict(CONFIG, spec={"mode": "binary", "prediction_type": "labels",
                             "metrics": ["dice", "iou", "recall"]},
               columns=["metrics.dice.mean", "metrics.recall.mean"])
    a = env.call("PUT", "/v1/challenges/rs", cfg, env.admin)
    t.check(a.status == 200 and a.json["version"] == 2, "a new spec: version 2", a.raw)
    deadline = time.monotonic() + 30
    prog = {}
    while time.monotonic() < deadline:
        prog = env.call("GET", "/v1/challenges/rs/rescore", token=env.admin).json or {}
        if prog.get("total") == 3 and prog.get("done") == 3:
            break
        time.sleep(0.1)
    t.check(prog.get("total") == 3 and prog.get("done") == 3 and prog.get("failed") == 0,
            "the re-score covers the 3 scored submissions", repr(prog))
    a = env.call("GET", "/v1/challenges/rs/leaderboard")
    row = a.json["rows"][0] if a.status == 200 and a.json["rows"] else {}
    want = sum(float(np.logical_and(pred[i], REF[i]).sum()) / REF[i].sum() for i in PUBLIC) / 2
    t.check(row.get("stale") is False and close(row.get("scores", {}).get(
        "metrics.recall.mean"), want), "re-scored rows have the new metric (recall by hand) "
        "and are not stale", repr(row))
    a = env.call("POST", "/v1/challenges/rs/rescore", token=env.admin)
    t.check(a.status == 202 and a.json.get("total") == 3, "POST rescore: 202", a.raw)
    a = env.call("GET", "/v1/challenges/rs/submissions", token=env.admin)
    s = a.json["submissions"][0] if a.status == 200 else {}
    t.check(s.get("config_version") == 2, "the audit records the configuration version", a.raw)


def test_export(t, env):
    tokens = env.setup("exp", participants=("p1",))
    env.submit("exp", tokens["p1"], shifted(1), note='says "hi", twice')
    a = env.call("GET", "/v1/challenges/exp/submissions?format=csv", token=env.admin)
    lines = a.raw.decode().splitlines()
    head = lines[0].split(",") if lines else []
    t.check(a.status == 200 and "public.metrics.dice.mean" in head and
            "private.metrics.dice.mean" in head and "sha256" in head and
            "reference_sha256" in head, "the export has both splits' scores and the hashes",
            a.raw[:300])
    t.check(len(lines) == 2 and '"says ""hi"", twice"' in lines[1], "CSV quoting of a note",
            a.raw[:400])
    a = env.call("GET", "/v1/challenges/exp/submissions?format=csv", token=tokens["p1"])
    t.check(a.status == 403, "the export is the admin's", a.raw)


def test_metrics(t, env):
    tokens = env.setup("met", participants=("p1",))
    env.submit("met", tokens["p1"], shifted(1))
    v = env.srv.metric('segloss_challenge_submissions{challenge="met",status="scored"}')
    t.check(v == 1, "/metrics counts submissions by status and challenge", repr(v))


def test_access_log(t, seglossd):
    env = Env(seglossd, "--access-log", "1")
    try:
        tokens = env.setup("log", participants=("p1",))
        env.submit("log", tokens["p1"], shifted(0))
        env.call("GET", "/v1/challenges/log/submissions", token=tokens["p1"])
        env.srv.err.flush()
        with open(env.srv.err.name) as f:
            log = f.read()
        t.check("/v1/challenges/log/submissions" in log, "the access log has the requests")
        t.check(tokens["p1"] not in log and env.admin not in log and
                "Bearer" not in log and "uthorization" not in log,
                "the access log never holds a token or Authorization")
    finally:
        env.stop()


def test_kill9(t, seglossd):
    """kill -9 during a stream of submissions; after a restart every answered submission is
    there with its scores, and one cut off mid-scoring is failed ("interrupted")."""
    env = Env(seglossd)
    try:
        # big images so that a submission takes a while to score
        n, h = 16, 256
        rng = np.random.default_rng(7)
        ref = (rng.random((n, h, h)) > 0.5).astype(np.uint8)
        ids = [f"img{i:02d}" for i in range(n)]
        cfg = dict(CONFIG, split={"public_fraction": 0.5, "seed": 1},
                   spec={"mode": "binary", "prediction_type": "probabilities",
                         "metrics": ["dice", {"name": "hausdorff", "percentile": 95,
                                              "as": "hd95"}]},
                   columns=["metrics.dice.mean"], quota={"per_day": None, "concurrent": 8})
        env.call("PUT", "/v1/challenges/k9", cfg, env.admin)
        a = env.call("PUT", "/v1/challenges/k9/reference", stacked(ref, ids, "target"),
                     env.admin)
        tok = env.call("POST", "/v1/challenges/k9/participants", {"name": "p"}, env.admin).json[
            "token"]
        answered = {}
        stop = threading.Event()
        pred = npy(rng.random((n, h, h)).astype(np.float32))
        body = json.dumps({"prediction": {"format": "npy", "data": base64.b64encode(pred)
                                          .decode()}, "ids": ids}).encode()

        def stream():
            while not stop.is_set():
                a = call(env.url, "POST", "/v1/challenges/k9/submissions", body, tok,
                         "application/json", timeout=30)
                if a.status == 201:
                    answered[a.json["id"]] = a.json["public"]["metrics.dice.mean"]
        th = [threading.Thread(target=_safe, args=(stream,)) for _ in range(2)]
        for x in th:
            x.start()
        deadline = time.monotonic() + 60
        while len(answered) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.15)
        os.kill(env.srv.proc.pid, signal.SIGKILL)
        env.srv.proc.wait()
        stop.set()
        for x in th:
            x.join()
        env.srv.out.close()
        env.srv.err.close()
        env.start()
        a = env.call("GET", "/v1/challenges/k9/submissions", token=env.admin)
        deadline = time.monotonic() + 6 * PG_LEASE_S + 10
        while PG and a.status == 200 and time.monotonic() < deadline and any(
                s["status"] == "scoring" for s in a.json["submissions"]):
            # PostgreSQL: the killed replica's rows fail once its lease has expired
            time.sleep(0.2)
            a = env.call("GET", "/v1/challenges/k9/submissions", token=env.admin)
        subs = {s["id"]: s for s in a.json.get("submissions", [])} if a.status == 200 else {}
        kept = all(k in subs and subs[k]["status"] == "scored" and
                   close(subs[k]["public"]["metrics.dice.mean"], v) for k, v in answered.items())
        t.check(len(answered) >= 3 and kept, f"all {len(answered)} answered submissions "
                "survive kill -9 with their scores", repr(list(subs.values())[:2])[:300])
        stuck = [s for s in subs.values() if s["status"] == "scoring"]
        inter = [s for s in subs.values() if s["status"] == "failed" and
                 "interrupted" in (s.get("error") or "")]
        t.check(not stuck, "no submission is left scoring after the restart")
        t.check(len(inter) <= 2, "at most the two cut-off ones are failed: interrupted",
                repr(inter)[:200])
        if inter:
            t.info(f"{len(inter)} submission(s) were cut off mid-scoring and marked interrupted")
        a = call(env.url, "POST", "/v1/challenges/k9/submissions", body, tok,
                 "application/json", timeout=60)
        t.check(a.status == 201 and a.json["quota"]["used_total"] == len(
            [s for s in subs.values() if s["status"] == "scored"]) + 1,
            "interrupted submissions do not count", a.raw[:300])
    finally:
        env.stop()


def _safe(fn):
    try:
        fn()
    except Exception:  # the server was killed under it
        pass


TESTS_ENV = [test_admin_token, test_config, test_reference_forms, test_mixed_sizes,
             test_reference_cached, test_participants, test_auth_matrix, test_submission, test_quota_day,
             test_quota_exact, test_window, test_leaderboard, test_finals_private,
             test_disqualify_revoke, test_rescore, test_export, test_metrics]
TESTS_ALONE = [test_off, test_access_log, test_kill9]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--golden", default="tests/golden/cases")
    ap.add_argument("--pg", action="store_true", help="the same tests on a PostgreSQL this "
                    "program starts (tests/pg/pgserver.py)")
    args = ap.parse_args()
    name = "challenges_pg" if args.pg else "challenges"
    t = harness.Tally(name)
    want = {fn: harness.selected(name + "/" + fn.__name__[5:])
            for fn in TESTS_ENV + TESTS_ALONE}
    global PG
    if args.pg and any(want.values()):
        PG = pgserver.PgCluster()
    try:
        return run_all(t, args, want)
    finally:
        if PG:
            PG.stop()


def run_all(t, args, want):
    if any(want[fn] for fn in TESTS_ENV):
        env = Env(args.seglossd)
        try:
            for fn in TESTS_ENV:
                if want[fn]:
                    run(t, fn, env)
        finally:
            code = env.stop()
        t.check(code == 0, "seglossd stopped cleanly (exit 0; 99 under make valgrind: errors)",
                f"exit status {code}")
    for fn in TESTS_ALONE:
        if want[fn]:
            run(t, fn, args.seglossd)
    return t.finish()


def run(t, fn, *args):
    try:
        fn(t, *args)
    except Exception as e:  # a test that raises fails, the others still run
        import traceback
        traceback.print_exc()
        t.check(False, fn.__name__ + " ran to its end", repr(e))


if __name__ == "__main__":
    sys.exit(main())
