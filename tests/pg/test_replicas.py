"""test_replicas.py - several seglossd processes on one PostgreSQL and one --blob-dir (the
replicas of CHALLENGES.md "Replicas"), on a throwaway server this program starts
(tests/pg/pgserver.py): migrations raced by three replicas starting at once, a quota held exactly
when one participant's submissions reach two replicas at once, leaderboards the same on every
replica, a new reference seen by a replica that had the old one cached, and a replica killed
while scoring (its answered submissions survive; the cut one fails as interrupted once its lease
expires, and does not count).

Expected scores come from the Dice written out in tests/challenges/test_challenges.py, never from
seglossd. Each test is "replicas/NAME" for make test T=PATTERN.
Python 3 standard library + numpy (Debian's python3-numpy)."""

import argparse
import base64
import json
import os
import signal
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "challenges"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "clients"))
import harness  # noqa: E402  (tests/clients/harness.py)
import pgserver  # noqa: E402  (tests/pg/pgserver.py)
import test_challenges as tc  # noqa: E402  (tests/challenges/test_challenges.py)

LEASE_S = 2


class Cluster:
    """Replicas of one database and blob directory; .start() adds one, .admin is the token."""

    def __init__(self, pg, seglossd):
        self.pg = pg
        self.seglossd = seglossd
        self.dir = tempfile.mkdtemp(prefix="segloss-replicas-")
        self.db = pg.createdb(os.path.basename(self.dir).lower())
        self.token_file = os.path.join(self.dir, "admin.token")
        self.admin = os.urandom(32).hex()
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, self.admin.encode() + b"\n")
        os.close(fd)
        self.replicas = []

    def args(self):
        return ["--db", self.db, "--db-password-file", self.pg.password_file,
                "--blob-dir", os.path.join(self.dir, "blobs"),
                "--admin-token-file", self.token_file, "--lease-seconds", str(LEASE_S)]

    def start(self):
        srv = harness.Server(self.seglossd, *self.args())
        self.replicas.append(srv)
        return srv

    def stop(self):
        for srv in self.replicas:
            srv.stop()


def call(srv, method, path, body=None, token=None, ctype=None, timeout=60):
    return tc.call(srv.url, method, path, body, token, ctype, timeout)


def setup(a, cl, name, config, participants):
    """Creates challenge name with the squares reference through replica a; returns tokens."""
    r = call(a, "PUT", f"/v1/challenges/{name}", config, cl.admin)
    assert r.status in (200, 201), r.raw
    arr = np.stack([tc.REF[i] for i in tc.IDS])
    r = call(a, "PUT", f"/v1/challenges/{name}/reference", tc.stacked(arr, tc.IDS, "target"),
             cl.admin)
    assert r.status in (200, 201), r.raw
    tokens = {}
    for p in participants:
        r = call(a, "POST", f"/v1/challenges/{name}/participants", {"name": p}, cl.admin)
        assert r.status == 201, r.raw
        tokens[p] = r.json["token"]
    return tokens


def submit(srv, name, token, pred):
    arr = np.stack([pred[i] for i in tc.IDS]).astype(np.uint8)
    return call(srv, "POST", f"/v1/challenges/{name}/submissions",
                tc.stacked(arr, tc.IDS, "prediction"), token)


def board(srv, name):
    r = call(srv, "GET", f"/v1/challenges/{name}/leaderboard")
    return [(x["participant"], x["submission"], x["scores"]) for x in r.json["rows"]]


# ---- tests -------------------------------------------------------------------------------


def test_migrations_race(t, pg, seglossd):
    """Three replicas start at once on a new database: all serve, the schema was made once."""
    cl = Cluster(pg, seglossd)
    try:
        errors = []

        def go():
            try:
                cl.start()
            except Exception as e:  # reported below
                errors.append(repr(e))
        th = [threading.Thread(target=go) for _ in range(3)]
        for x in th:
            x.start()
        for x in th:
            x.join()
        t.check(not errors and len(cl.replicas) == 3, "three replicas starting together all "
                "start", repr(errors)[:400])
        db = os.path.basename(cl.db)
        t.check(pg.psql(db, "SELECT version FROM segloss_schema") == "1" and
                pg.psql(db, "SELECT count(*) FROM segloss_schema") == "1" and
                pg.psql(db, "SELECT count(*) FROM segloss_jobs") == "1",
                "the schema was migrated once: version 1, one job row")
        live = pg.psql(db, "SELECT count(*) FROM segloss_replicas")
        t.check(live == "3", "each replica holds a lease", live)
        ok = all(call(s, "GET", "/v1/challenges", token=cl.admin).status == 200
                 for s in cl.replicas)
        t.check(ok, "every replica answers the challenge routes")
    finally:
        cl.stop()


def test_quota_across(t, pg, seglossd):
    """per_day 3 and 10 submissions at once, every other one to the other replica: exactly 3
    x 201 and 7 x 429; both replicas list the same 3 and serve the same leaderboard."""
    cl = Cluster(pg, seglossd)
    try:
        a, b = cl.start(), cl.start()
        cfg = dict(tc.CONFIG, quota={"per_day": 3, "total": None, "concurrent": 10})
        tokens = setup(a, cl, "q", cfg, ("team-a", "team-b"))
        out = []
        lock = threading.Lock()

        def go(srv):
            r = submit(srv, "q", tokens["team-a"], tc.shifted(1))
            with lock:
                out.append(r.status)
        th = [threading.Thread(target=go, args=(a if i % 2 else b,)) for i in range(10)]
        for x in th:
            x.start()
        for x in th:
            x.join()
        t.check(out.count(201) == 3 and out.count(429) == 7, "10 at once on two replicas with "
                "3 slots: 3 x 201 and 7 x 429", repr(sorted(out)))
        la = call(a, "GET", "/v1/challenges/q/submissions", token=tokens["team-a"]).json
        lb = call(b, "GET", "/v1/challenges/q/submissions", token=tokens["team-a"]).json
        ids_a = sorted(s["id"] for s in la["submissions"])
        t.check(len(ids_a) == 3 and ids_a == sorted(s["id"] for s in lb["submissions"]),
                "both replicas list the same 3 submissions", repr(ids_a))
        # a leaderboard read (and cached) on b, then a write on a: b serves the new standings
        before = board(b, "q")
        r = submit(a, "q", tokens["team-b"], tc.shifted(0))
        after_b, after_a = board(b, "q"), board(a, "q")
        want = tc.expected_mean(tc.shifted(0), tc.PUBLIC)
        t.check(r.status == 201 and len(before) == 1 and len(after_b) == 2 and
                after_b == after_a and after_b[0][0] == "team-b" and
                tc.close(after_b[0][2]["metrics.dice.mean"], want),
                "a submission on one replica is on the other's leaderboard at once",
                repr(after_b)[:300])
    finally:
        cl.stop()


def test_new_reference(t, pg, seglossd):
    """Replica b scores with the reference cached; a new reference is put through a: b's next
    submission is scored against the new one, and the re-score it started brings the earlier
    submission to its new score (Dice against the new masks, worked here)."""
    cl = Cluster(pg, seglossd)
    try:
        a, b = cl.start(), cl.start()
        tokens = setup(a, cl, "ref", tc.CONFIG, ("team-a",))
        pred = tc.shifted(0)
        r1 = submit(b, "ref", tokens["team-a"], pred)
        t.check(r1.status == 201 and tc.close(r1.json["public"]["metrics.dice.mean"], 1.0),
                "b scores against the first reference (a perfect prediction: 1)", r1.raw[:200])
        # the new reference: every mask shifted one column right (a perfect prediction for
        # the old one then overlaps each public 2x2 square in 2 of its 4 pixels: Dice 1/2)
        new = {i: m.astype(np.uint8) for i, m in tc.shifted(1).items()}
        arr = np.stack([new[i] for i in tc.IDS])
        r = call(a, "PUT", "/v1/challenges/ref/reference", tc.stacked(arr, tc.IDS, "target"),
                 cl.admin)
        t.check(r.status == 200, "a replaces the reference", r.raw[:200])
        want = sum(tc.dice(pred[i], new[i]) for i in tc.PUBLIC) / len(tc.PUBLIC)
        r2 = submit(b, "ref", tokens["team-a"], pred)
        t.check(r2.status == 201 and tc.close(r2.json["public"]["metrics.dice.mean"], want),
                f"b scores the next submission against the new reference ({want:.6f})",
                r2.raw[:200])
        deadline = time.monotonic() + 60
        p = {}
        while time.monotonic() < deadline:
            p = call(b, "GET", "/v1/challenges/ref/rescore", token=cl.admin).json
            if p["total"] and p["done"] + p["failed"] == p["total"]:
                break
            time.sleep(0.2)
        s1 = call(a, "GET", f"/v1/challenges/ref/submissions/{r1.json['id']}",
                  token=cl.admin).json
        t.check(p.get("done") == 1 and p.get("total") == 1 and not s1["stale"] and
                tc.close(s1["public"]["metrics.dice.mean"], want),
                "the re-score (one replica at a time) re-scored the first submission",
                repr(p) + repr(s1.get("public")))
    finally:
        cl.stop()


def test_kill_replica(t, pg, seglossd):
    """Replica b is SIGKILLed while scoring a stream of submissions: every submission it
    answered is there on a with its scores; the ones cut off are failed "interrupted" once b's
    lease (2 s) has expired, and a's next answer counts only the scored ones."""
    cl = Cluster(pg, seglossd)
    try:
        a, b = cl.start(), cl.start()
        n, h = 16, 256
        rng = np.random.default_rng(7)
        ref = (rng.random((n, h, h)) > 0.5).astype(np.uint8)
        ids = [f"img{i:02d}" for i in range(n)]
        cfg = dict(tc.CONFIG, split={"public_fraction": 0.5, "seed": 1},
                   spec={"mode": "binary", "prediction_type": "probabilities",
                         "metrics": ["dice", {"name": "hausdorff", "percentile": 95,
                                              "as": "hd95"}]},
                   columns=["metrics.dice.mean"], quota={"per_day": None, "concurrent": 8})
        call(a, "PUT", "/v1/challenges/k9", cfg, cl.admin)
        call(a, "PUT", "/v1/challenges/k9/reference", tc.stacked(ref, ids, "target"), cl.admin)
        tok = call(a, "POST", "/v1/challenges/k9/participants", {"name": "p"},
                   cl.admin).json["token"]
        pred = tc.npy(rng.random((n, h, h)).astype(np.float32))
        body = json.dumps({"prediction": {"format": "npy", "data": base64.b64encode(pred)
                                          .decode()}, "ids": ids}).encode()
        answered = {}
        stop = threading.Event()

        def stream():
            while not stop.is_set():
                r = call(b, "POST", "/v1/challenges/k9/submissions", body, tok,
                         "application/json", timeout=30)
                if r.status == 201:
                    answered[r.json["id"]] = r.json["public"]["metrics.dice.mean"]
        th = [threading.Thread(target=tc._safe, args=(stream,)) for _ in range(2)]
        for x in th:
            x.start()
        deadline = time.monotonic() + 60
        while len(answered) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.15)
        os.kill(b.proc.pid, signal.SIGKILL)
        b.proc.wait()
        stop.set()
        for x in th:
            x.join()
        killed_at = time.monotonic()
        subs = {}
        while time.monotonic() < killed_at + 6 * LEASE_S + 10:
            r = call(a, "GET", "/v1/challenges/k9/submissions", token=cl.admin)
            subs = {s["id"]: s for s in r.json["submissions"]}
            if not any(s["status"] == "scoring" for s in subs.values()):
                break
            time.sleep(0.2)
        waited = time.monotonic() - killed_at
        kept = all(k in subs and subs[k]["status"] == "scored" and
                   tc.close(subs[k]["public"]["metrics.dice.mean"], v)
                   for k, v in answered.items())
        t.check(len(answered) >= 3 and kept, f"all {len(answered)} submissions b answered are "
                "on a with their scores")
        inter = [s for s in subs.values() if s["status"] == "failed" and
                 s.get("error") == "interrupted"]
        stuck = [s for s in subs.values() if s["status"] == "scoring"]
        t.check(not stuck and len(inter) <= 2, "the cut ones fail as interrupted after the "
                f"lease (none left scoring after {waited:.1f} s)", repr(stuck)[:200])
        t.info(f"{len(inter)} submission(s) cut off by the kill, failed after {waited:.1f} s")
        r = call(a, "POST", "/v1/challenges/k9/submissions", body, tok, "application/json")
        scored = len([s for s in subs.values() if s["status"] == "scored"])
        t.check(r.status == 201 and r.json["quota"]["used_total"] == scored + 1,
                "interrupted submissions do not count", r.raw[:200])
    finally:
        cl.stop()


TESTS = [test_migrations_race, test_quota_across, test_new_reference, test_kill_replica]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--golden", default="tests/golden/cases")
    args = ap.parse_args()
    t = harness.Tally("replicas")
    want = [fn for fn in TESTS if harness.selected("replicas/" + fn.__name__[5:])]
    if want:
        pg = pgserver.PgCluster()
        try:
            for fn in want:
                tc.run(t, fn, pg, args.seglossd)
        finally:
            pg.stop()
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
