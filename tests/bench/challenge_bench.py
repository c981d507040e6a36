"""challenge_bench.py - the challenges' three targets (issue "Challenges", README "Run a
challenge"), measured against a real seglossd on a real data directory; figures, not pass/fail
tests (make bench-challenge):

1. a submission of 100 images of 256x256 against a /v1/score of the same arrays in the same run
   (target: at most 1.25x), with the contract's example spec (binary labels, Dice and HD95);
2. a public leaderboard of 1,000 participants with 20 submissions each (target: under 20 ms);
3. a re-score of 1,000 stored submissions while /v1/score traffic (wrk) keeps at least 80 % of its
   throughput without the re-score.

The 20,000 and 1,000 stored submissions of 2 and 3 are copies of one real scored submission
(its row, with other ids, participants, times and values) written into the database while
seglossd is stopped: scoring 21,000 submissions over HTTP first would take most of an hour and
measure nothing these targets are about. Python 3 standard library + numpy."""

import argparse
import base64
import io
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "clients"))
import harness  # noqa: E402


def call(url, method, path, body=None, token=None, raw=None, ctype="application/json"):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": ctype} if data is not None else {}
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def npy_b64(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return {"format": "npy", "data": base64.b64encode(buf.getvalue()).decode()}


CONFIG = {
    "title": "Bench", "spec": {"mode": "binary", "prediction_type": "labels",
                               "metrics": ["dice", {"name": "hausdorff", "percentile": 95,
                                                    "as": "hd95"}]},
    "ranking": [{"key": "metrics.dice.mean", "order": "desc"},
                {"key": "metrics.hd95.mean", "order": "asc"}],
    "columns": ["metrics.dice.mean", "metrics.hd95.mean", "metrics.dice.global"],
    "split": {"public_fraction": 0.3, "seed": 1},
    "quota": {"per_day": None, "total": None, "concurrent": 4},
}


class Bench:
    def __init__(self, seglossd):
        self.seglossd = seglossd
        self.dir = tempfile.mkdtemp(prefix="segloss-bench-chal-")
        self.srv = None

    def start(self, *extra):
        self.srv = harness.Server(self.seglossd, "--data-dir", self.dir, *extra)
        self.url = self.srv.url
        with open(os.path.join(self.dir, "admin.token")) as f:
            self.admin = f.read().strip()

    def stop(self):
        self.srv.stop()


def bench_submission(b, reps):
    rng = np.random.default_rng(1)
    n, h = 100, 256
    yy, xx = np.mgrid[:h, :h]
    target = np.zeros((n, h, h), np.uint8)
    pred = np.zeros((n, h, h), np.uint8)
    for i in range(n):
        cy, cx, r = rng.integers(60, 196, 2).tolist() + [int(rng.integers(20, 50))]
        target[i] = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        pred[i] = (yy - cy - 3) ** 2 + (xx - cx + 2) ** 2 < (r + 2) ** 2
    ids = [f"case_{i:03d}" for i in range(n)]
    call(b.url, "PUT", "/v1/challenges/bench", CONFIG, b.admin)
    st, _ = call(b.url, "PUT", "/v1/challenges/bench/reference",
                 {"target": npy_b64(target), "ids": ids}, b.admin)
    assert st == 201, st
    st, body = call(b.url, "POST", "/v1/challenges/bench/participants", {"name": "p0"}, b.admin)
    tok = json.loads(body)["token"]
    score_body = json.dumps({"prediction": npy_b64(pred), "target": npy_b64(target),
                             **CONFIG["spec"]}).encode()
    sub_body = json.dumps({"prediction": npy_b64(pred), "ids": ids}).encode()
    t_score, t_sub = [], []
    for _ in range(reps):  # alternated, so that both see the same machine
        t0 = time.perf_counter()
        st, _ = call(b.url, "POST", "/v1/score", raw=score_body)
        t_score.append(time.perf_counter() - t0)
        assert st == 200, st
        t0 = time.perf_counter()
        st, body = call(b.url, "POST", "/v1/challenges/bench/submissions", raw=sub_body,
                        token=tok)
        t_sub.append(time.perf_counter() - t0)
        assert st == 201, body[:300]
    ms = statistics.median(t_score) * 1e3
    mb = statistics.median(t_sub) * 1e3
    print(f"1. submission of 100 x 256x256 (uint8 labels, Dice + HD95, {len(score_body) >> 20} "
          f"MiB JSON): /v1/score median {ms:.1f} ms, submission median {mb:.1f} ms, ratio "
          f"{mb / ms:.2f} (target <= 1.25; {reps} of each, alternated)")
    return tok, json.loads(body)["id"]


def populate(b, nparts, per_part, first_sub):
    """Copies submission first_sub's row (per_part x nparts times) with new ids, participants,
    times and values; seglossd must be stopped."""
    db = sqlite3.connect(os.path.join(b.dir, "segloss.db"))
    db.execute("PRAGMA journal_mode=WAL")
    row = db.execute("SELECT * FROM submissions WHERE id = ?", (first_sub,)).fetchone()
    cols = [c[1] for c in db.execute("PRAGMA table_info(submissions)")]
    ix = {c: i for i, c in enumerate(cols)}
    rng = random.Random(3)
    pids = []
    for p in range(nparts):
        cur = db.execute("INSERT INTO participants (challenge, name, token_hash, created_at) "
                         "VALUES ('bench', ?, ?, 0)", (f"team-{p:04d}", os.urandom(32)))
        pids.append(cur.lastrowid)
    t0 = row[ix["received_at"]]
    rows = []
    for p in pids:
        for k in range(per_part):
            r = list(row)
            r[ix["seq"]] = None
            r[ix["id"]] = os.urandom(8).hex()
            r[ix["participant"]] = p
            r[ix["received_at"]] = t0 - rng.randrange(10 ** 11)
            vals = {"metrics.dice.mean": rng.random(), "metrics.dice.global": rng.random(),
                    "metrics.hd95.mean": rng.random() * 10}
            r[ix["pub_values"]] = json.dumps(vals, sort_keys=True, separators=(",", ":"))
            r[ix["priv_values"]] = json.dumps(vals, sort_keys=True, separators=(",", ":"))
            rows.append(r)
    db.executemany(f"INSERT INTO submissions VALUES ({','.join('?' * len(cols))})", rows)
    db.commit()
    db.close()


def bench_leaderboard(b, reps, sub):
    """Reads of the public leaderboard right after a write that changes it: a disqualification
    set or cleared (PATCH), which renders the leaderboard before it answers; and the writes'
    own time, which carries that ranking."""
    def timed(method, path, body=None):
        t0 = time.perf_counter()
        st, out = call(b.url, method, path, body, b.admin)
        assert st == 200, (st, out[:200])
        return time.perf_counter() - t0, out

    reads, writes = [], []
    for k in range(reps):
        dt, _ = timed("PATCH", f"/v1/challenges/bench/submissions/{sub}",
                      {"disqualified": k % 2 == 0})
        writes.append(dt)
        dt, body = timed("GET", "/v1/challenges/bench/leaderboard?split=public")
        reads.append(dt)
    rows = len(json.loads(body)["rows"])

    def show(v):
        v = sorted(v)
        return (f"median {statistics.median(v) * 1e3:.1f} ms, p95 "
                f"{v[int(0.95 * len(v))] * 1e3:.1f} ms")
    print(f"2. public leaderboard, {rows} participants x 20 submissions (target < 20 ms): the "
          f"read after each of {reps} writes {show(reads)}; the writes (a disqualification "
          f"set or cleared, ranking 20,000 submissions before they answer) {show(writes)}")


def wrk_rps(url, seconds, script):
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{seconds}s", "-s", script, url + "/v1/score"],
                         capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    return float(m.group(1)) if m else 0.0


def bench_rescore(b, seconds):
    lua = os.path.join(b.dir, "post.lua")
    rng = np.random.default_rng(5)
    body = {"prediction": npy_b64(rng.random((1, 64, 64)).astype(np.float32)),
            "target": npy_b64((rng.random((1, 64, 64)) > 0.5).astype(np.uint8)),
            "metrics": ["dice"], "losses": ["cross_entropy"]}
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = {json.dumps(json.dumps(body))}\n")
    wrk_rps(b.url, 3, lua)  # warm-up, not counted
    before = wrk_rps(b.url, seconds, lua)
    st, _ = call(b.url, "POST", "/v1/challenges/bench/rescore", token=b.admin)
    t0 = time.perf_counter()
    during = wrk_rps(b.url, seconds, lua)
    st, prog = call(b.url, "GET", "/v1/challenges/bench/rescore", token=b.admin)
    p = json.loads(prog)
    done_during = p["done"] + p["failed"]
    while p["done"] + p["failed"] < p["total"]:
        time.sleep(0.5)
        p = json.loads(call(b.url, "GET", "/v1/challenges/bench/rescore", token=b.admin)[1])
    total_s = time.perf_counter() - t0
    after = wrk_rps(b.url, seconds, lua)  # the same load once the re-score is over
    base = (before + after) / 2
    print(f"3. re-score of {p['total']} stored submissions under wrk (-t2 -c8, 1x64x64 "
          f"/v1/score, {seconds} s runs): {before:.0f} req/s before and {after:.0f} after, "
          f"{during:.0f} req/s during ({during / base:.0%} of their mean; target >= 80 %); "
          f"{done_during} re-scored during the load, all {p['total']} after {total_s:.0f} s "
          f"({p['failed']} failed)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=8)
    args = ap.parse_args()
    b = Bench(args.seglossd)
    try:
        b.start()
        _, sub = bench_submission(b, args.reps)
        b.stop()
        populate(b, 1000, 20, sub)
        b.start()
        bench_leaderboard(b, 50, sub)
        b.stop()
        # 3: a challenge with 1,000 stored submissions (the leaderboard's 20,000 trimmed)
        db = sqlite3.connect(os.path.join(b.dir, "segloss.db"))
        db.execute("DELETE FROM submissions WHERE seq NOT IN (SELECT seq FROM submissions "
                   "ORDER BY seq LIMIT 1000)")
        db.commit()
        db.close()
        b.start()
        bench_rescore(b, args.seconds)
    finally:
        if b.srv:
            b.stop()
        shutil.rmtree(b.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
