"""page_bench.py - GET /challenges/{c} over HTTP on a real seglossd whose data directory holds
1,000 participants with 5 scored submissions each ("a page of 1,000 participants renders
server-side in under 50 ms"); a figure, not a pass/fail test (make bench-pages).

The 5,000 stored submissions are copies of one real scored submission with other ids,
participants, times and values, written into the database while seglossd is stopped
(tests/bench/challenge_bench.py's populate). Timed: the page right after a start (nothing
cached), N reads of the cached page, N reads each right after a write that changes the standings
(the page made again: the store's rankable submissions read for the chart, the cached leaderboard
parsed, the page rendered), and the JSON leaderboard for comparison. Times are client-side over loopback (urllib), so they
include the transfer of the page. Python 3 standard library + numpy."""

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import challenge_bench as cb  # noqa: E402  (its server fixture, CONFIG and populate)


def get(url, path):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url + path, timeout=120) as r:
        body = r.read()
        status = r.status
    return time.perf_counter() - t0, status, body


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--participants", type=int, default=1000)
    ap.add_argument("--subs", type=int, default=5)
    ap.add_argument("--reps", type=int, default=31)
    args = ap.parse_args()
    b = cb.Bench(args.seglossd)
    try:
        b.start()
        rng = np.random.default_rng(7)
        n, h = 10, 32
        target = (rng.random((n, h, h)) > 0.6).astype(np.uint8)
        pred = (rng.random((n, h, h)) > 0.6).astype(np.uint8)
        ids = [f"img{i:02d}" for i in range(n)]
        st, out = cb.call(b.url, "PUT", "/v1/challenges/bench", cb.CONFIG, b.admin)
        assert st == 201, out[:300]
        st, out = cb.call(b.url, "PUT", "/v1/challenges/bench/reference",
                          {"target": cb.npy_b64(target), "ids": ids}, b.admin)
        assert st == 201, out[:300]
        st, out = cb.call(b.url, "POST", "/v1/challenges/bench/participants", {"name": "p0"},
                          b.admin)
        tok = json.loads(out)["token"]
        st, out = cb.call(b.url, "POST", "/v1/challenges/bench/submissions",
                          {"prediction": cb.npy_b64(pred), "ids": ids}, tok)
        assert st == 201, out[:300]
        sub = json.loads(out)["id"]
        b.stop()
        cb.populate(b, args.participants, args.subs, sub)
        b.start()
        cold, st, page = get(b.url, "/challenges/bench")
        assert st == 200, st
        # seglossd ranks every public leaderboard in the background after a start: a first
        # reader a second later pays only for the page
        b.stop()
        b.start()
        time.sleep(1)
        warmed, st, page = get(b.url, "/challenges/bench")
        assert st == 200, st
        rows = page.count(b"<tr data-participant=")
        warm = []
        for _ in range(args.reps):
            dt, st, page = get(b.url, "/challenges/bench")
            warm.append(dt)
        # the page right after a write that changes the standings (a disqualification set or
        # cleared): the write renders the JSON leaderboard, the page is made again at its read
        fresh = []
        for k in range(args.reps):
            st, out = cb.call(b.url, "PATCH", f"/v1/challenges/bench/submissions/{sub}",
                              {"disqualified": k % 2 == 0}, b.admin)
            assert st == 200, out[:300]
            dt, st, _ = get(b.url, "/challenges/bench")
            fresh.append(dt)
        js = []
        for _ in range(args.reps):
            dt, st, _ = get(b.url, "/v1/challenges/bench/leaderboard")
            js.append(dt)
        warm.sort()
        fresh.sort()
        p95 = warm[int(0.95 * (len(warm) - 1) + 0.5)]
        print(f"GET /challenges/bench over HTTP, {rows} rows ({args.participants} participants x "
              f"{args.subs} submissions, {len(page) >> 10} KiB): first read right after a start "
              f"{cold * 1e3:.1f} ms, 1 s after a start {warmed * 1e3:.1f} ms; then median {statistics.median(warm) * 1e3:.1f} ms, p95 "
              f"{p95 * 1e3:.1f} ms over {args.reps} reads of the cached page; made again after "
              f"each of {args.reps} writes: median {statistics.median(fresh) * 1e3:.1f} ms, p95 "
              f"{fresh[int(0.95 * (len(fresh) - 1) + 0.5)] * 1e3:.1f} ms (target < 50 ms); the "
              f"JSON leaderboard median {statistics.median(js) * 1e3:.1f} ms")
    finally:
        if b.srv:
            b.stop()
        shutil.rmtree(b.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
