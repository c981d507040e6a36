#!/usr/bin/env python3
"""cluster_bench.py - challenge submissions per second through nginx, 3 seglossd replicas on one
PostgreSQL against 1 (and 1 on SQLite), on the same data (make bench-cluster); figures, not
pass/fail tests.

    python3 tests/bench/cluster_bench.py --seglossd build/seglossd [--submissions 60]
        [--clients 6] [--images 8] [--size 256] [--repeat 3] [--configs pg:3,pg:1,sqlite:1]

Each configuration is the loopback topology of tests/cluster/test_cluster.py (the repository's
docker/nginx/segloss.conf on Debian's nginx, each replica `seglossd --threads 1`) with the
challenge store: --db on a throwaway PostgreSQL (tests/pg/pgserver.py, one database per
configuration) and a shared --blob-dir, or --data-dir (SQLite). One challenge per
configuration, the same seeded reference (--images masks of --size squared, Dice, IoU and HD95)
and the same prediction; --clients participants each send --submissions / --clients submissions
one after another, all clients at once. Every answer must be 201 with the same public scores.
All configurations run at once and their rounds are interleaved. Prints the wall time (median
and best of --repeat) and submissions/s of each. Python 3 standard library + numpy."""

import argparse
import os
import statistics
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
sys.path.insert(0, os.path.join(HERE, "..", "pg"))
sys.path.insert(0, os.path.join(HERE, "..", "challenges"))
import pgserver  # noqa: E402  (tests/pg/pgserver.py)
import test_challenges as tc  # noqa: E402  (call, stacked)
import test_cluster  # noqa: E402  (its Cluster: replicas and nginx on loopback)


def make_config(pg, kind, nrep, args, n):
    """Starts one configuration; returns (cluster, url, admin token)."""
    c = test_cluster.Cluster(args)
    token_file = os.path.join(c.tmp, "admin.token")
    admin = os.urandom(32).hex()
    with open(token_file, "w") as f:
        f.write(admin + "\n")
    os.chmod(token_file, 0o600)
    if kind == "pg":
        db = pg.createdb(f"bench{n}")
        flags = ["--db", db, "--db-password-file", pg.password_file, "--blob-dir",
                 os.path.join(c.tmp, "blobs")]
    else:
        flags = ["--data-dir", os.path.join(c.tmp, "data")]
    flags += ["--admin-token-file", token_file]
    if not all(c.start_replica(i, flags) for i in range(nrep)) or not c.start_nginx():
        c.dump_logs()
        c.cleanup()
        raise RuntimeError(f"{kind}:{nrep} did not start")
    return c, f"http://127.0.0.1:{c.nginx_port}", admin


def setup_challenge(url, admin, ref, ids, clients):
    cfg = {"title": "Bench", "description": "seeded blobs",
           "spec": {"mode": "binary", "prediction_type": "labels",
                    "metrics": ["dice", "iou", {"name": "hausdorff", "percentile": 95,
                                                "as": "hd95"}]},
           "ranking": [{"key": "metrics.dice.mean", "order": "desc"}],
           "columns": ["metrics.dice.mean", "metrics.iou.mean"],
           "split": {"public_fraction": 0.5, "seed": 1},
           "quota": {"per_day": None, "total": None, "concurrent": 4}, "final_selections": 1}
    for method, path, body in (("PUT", "/v1/challenges/b", cfg),
                               ("PUT", "/v1/challenges/b/reference",
                                tc.stacked(ref, ids, "target"))):
        a = tc.call(url, method, path, body, admin)
        if a.status not in (200, 201):
            raise RuntimeError(f"{method} {path}: {a.status} {a.raw[:200]!r}")
    toks = []
    for k in range(clients):
        a = tc.call(url, "POST", "/v1/challenges/b/participants", {"name": f"c{k}"}, admin)
        toks.append(a.json["token"])
    return toks


def blobs(rng, n, size):
    """n smooth 0/1 masks of size squared."""
    out = np.empty((n, size, size), np.uint8)
    for i in range(n):
        f = rng.normal(size=(size, size))
        for _ in range(3):
            f = (f + np.roll(f, 1, 0) + np.roll(f, -1, 0) + np.roll(f, 1, 1)
                 + np.roll(f, -1, 1)) / 5
        out[i] = f > 0.1 * f.std()
    return out


def round_(url, toks, body, per_client, scores):
    """All clients at once, per_client submissions each; returns seconds."""
    errors = []

    def client(tok):
        for _ in range(per_client):
            a = tc.call(url, "POST", "/v1/challenges/b/submissions", body, tok, timeout=600)
            if a.status != 201:
                errors.append(f"{a.status} {a.raw[:200]!r}")
            else:
                scores.add(tuple(sorted(a.json["public"].items())))
    th = [threading.Thread(target=client, args=(t,)) for t in toks]
    t0 = time.monotonic()
    for x in th:
        x.start()
    for x in th:
        x.join()
    secs = time.monotonic() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} submissions failed: {errors[:2]}")
    return secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--nginx-conf", default=os.path.join(HERE, "..", "..", "docker", "nginx"))
    ap.add_argument("--submissions", type=int, default=60)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--configs", default="pg:3,pg:1,sqlite:1")
    args = ap.parse_args()
    args.keep = False
    args.seglossd = os.path.abspath(args.seglossd)
    configs = [(k, int(n)) for k, n in (x.split(":") for x in args.configs.split(","))]
    per_client = -(-args.submissions // args.clients)
    total = per_client * args.clients
    rng = np.random.default_rng(19)
    ids = [f"i{i:03d}" for i in range(args.images)]
    ref = blobs(rng, args.images, args.size)
    pred = blobs(rng, args.images, args.size)
    body = tc.stacked(pred, ids, "prediction")
    print(f"data: {args.images} masks of {args.size}x{args.size} per submission (Dice, IoU, "
          f"HD95); {args.clients} clients x {per_client} submissions = {total} per round")
    print(f"machine: {os.cpu_count()} cores; replicas: seglossd --threads 1 each, behind nginx "
          "(docker/nginx/segloss.conf)")
    pg = pgserver.PgCluster() if any(k == "pg" for k, _ in configs) else None
    running = []
    times = {}
    scores = set()
    status = 0
    try:
        urls = {}
        for n, (kind, nrep) in enumerate(configs):
            c, url, admin = make_config(pg, kind, nrep, args, n)
            running.append(c)
            toks = setup_challenge(url, admin, ref, ids, args.clients)
            urls[(kind, nrep)] = (url, toks)
            round_(url, toks[:1], body, 1, scores)  # warm up
        for _ in range(args.repeat):
            for key, (url, toks) in urls.items():
                times.setdefault(key, []).append(round_(url, toks, body, per_client, scores))
    except Exception as e:  # report, clean up, exit 1
        print(f"bench-cluster: {e}")
        status = 1
    finally:
        for c in running:
            c.cleanup()
        if pg:
            pg.stop()
    base = None
    for (kind, nrep), ts in times.items():
        med = statistics.median(ts)
        if (kind, nrep) == ("pg", 1):
            base = med
        print(f"  {nrep} replica{'s' if nrep > 1 else ' '} {kind:<6}: median {med:6.2f} s, best "
              f"{min(ts):6.2f} s, {total / med:6.2f} submissions/s (median of {len(ts)})")
    if base:
        for (kind, nrep), ts in times.items():
            if (kind, nrep) != ("pg", 1):
                print(f"  {nrep} replica(s) {kind}: {base / statistics.median(ts):.2f}x the "
                      "submissions/s of 1 replica on PostgreSQL")
    if len(scores) == 1:
        print("every submission's public scores were the same")
    elif scores:
        print(f"FAIL: {len(scores)} different public scores for the same submission")
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
