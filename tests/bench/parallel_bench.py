#!/usr/bin/env python3
"""parallel_bench.py - `segloss score --parallel N` through nginx in front of seglossd replicas
(make bench-parallel); figures, not pass/fail tests.

    python3 tests/bench/parallel_bench.py --seglossd build/seglossd --segloss build/segloss \
        [--images 1000] [--size 256] [--batch-size 16] [--parallel 1,6] [--replicas 3,1] \
        [--repeat 3]

A seeded data set of --images binary images (float32 logits and uint8 masks, --size squared) is
scored with Dice, IoU and HD95 in batches of --batch-size, through the native cluster of
tests/cluster/test_cluster.py (the repository's docker/nginx/segloss.conf on Debian's nginx, each
replica `seglossd --threads 1`, all on loopback), for every number of replicas and every
--parallel value. Prints the wall time (median and best of --repeat runs) and images/s of each,
and checks that every run's --json output is the same bytes (the server's elapsed_ms and url
aside). All clusters run at once and the runs are interleaved, one of each configuration per
round. The machine's cores bound what more replicas can give: the figures say how many there
are. Python 3 standard library + numpy."""

import argparse
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
import test_cluster  # noqa: E402  (its Cluster: replicas and nginx on loopback)


def write_dataset(d, n, size, seed=27):
    """pred.npy (float32 logits) and target.npy (uint8 0/1) of n smooth blob images."""
    rng = np.random.default_rng(seed)
    pred = np.empty((n, size, size), dtype=np.float32)
    tgt = np.empty((n, size, size), dtype=np.uint8)
    for i in range(n):
        f = rng.normal(size=(size, size))
        for _ in range(3):
            f = (f + np.roll(f, 1, 0) + np.roll(f, -1, 0) + np.roll(f, 1, 1) + np.roll(f, -1, 1)) / 5
        f = (f - f.mean()) / f.std()
        tgt[i] = f > 0.3
        pred[i] = 2.5 * (f - 0.3) + rng.normal(scale=0.9, size=f.shape)
    paths = []
    for name, a in (("pred.npy", pred), ("target.npy", tgt)):
        p = os.path.join(d, name)
        buf = io.BytesIO()
        np.save(buf, a, allow_pickle=False)
        with open(p, "wb") as f:
            f.write(buf.getvalue())
        paths.append(p)
    return paths


def steady(text, url):
    return re.sub(r'^\s*"elapsed_ms": .*\n', "", text, flags=re.M).replace(url, "URL")


def score(segloss, url, pred, target, batch_size, parallel):
    """One run of the CLI; returns (seconds, steady stdout). Raises on a non-zero exit."""
    args = [segloss, "score", "--url", url, "--pred", pred, "--target", target,
            "--batch-size", str(batch_size), "--metric", "dice", "--metric", "iou",
            "--metric", "hausdorff:percentile=95,as=hd95", "--no-per-image", "--no-progress",
            "--json", "--parallel", str(parallel)]
    t0 = time.monotonic()
    p = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    secs = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {p.returncode}: {p.stderr[-800:]}")
    return secs, steady(p.stdout, url)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--segloss", default="build/segloss")
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--nginx-conf", default=os.path.join(HERE, "..", "..", "docker", "nginx"))
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--parallel", default="1,6")
    ap.add_argument("--replicas", default="3,1")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    args.keep = False
    parallels = [int(x) for x in args.parallel.split(",")]
    replicas = [int(x) for x in args.replicas.split(",")]
    work = tempfile.mkdtemp(prefix="segloss-parallel-bench-")
    pred, target = write_dataset(work, args.images, args.size)
    nb = -(-args.images // args.batch_size)
    print(f"data set: {args.images} images of {args.size}x{args.size} (float32 logits, uint8 "
          f"masks), Dice, IoU, HD95; --batch-size {args.batch_size}: {nb} batches")
    print(f"machine: {os.cpu_count()} cores; replicas: seglossd --threads 1 each, behind nginx "
          "(docker/nginx/segloss.conf, least_conn)")
    outputs = set()
    times = {}
    status = 0
    clusters = []
    try:
        # every cluster up at once (idle replicas cost nothing), then the runs interleaved,
        # one of each configuration per round, so that a drift in the machine's load (other
        # work on its cores) falls on all of them alike
        urls = {}
        for nrep in replicas:
            c = test_cluster.Cluster(args)
            clusters.append(c)
            if not all(c.start_replica(i) for i in range(nrep)) or not c.start_nginx():
                c.dump_logs()
                raise RuntimeError("the cluster did not start")
            urls[nrep] = f"http://127.0.0.1:{c.nginx_port}"
            score(args.segloss, urls[nrep], pred, target, args.batch_size, 1)  # warm up
        for _ in range(args.repeat):
            for nrep in replicas:
                for par in parallels:
                    secs, out = score(args.segloss, urls[nrep], pred, target, args.batch_size, par)
                    times.setdefault((nrep, par), []).append(secs)
                    outputs.add(out)
    except Exception as e:  # report, clean up, exit 1
        print(f"bench-parallel: {e}")
        status = 1
    finally:
        for c in clusters:
            c.cleanup()
    rows = []
    for (nrep, par), ts in times.items():
        med = statistics.median(ts)
        rows.append((nrep, par, med, min(ts)))
        print(f"  {nrep} replica{'s' if nrep > 1 else ' '} --parallel {par:<2}: "
              f"median {med:6.2f} s, best {min(ts):6.2f} s, "
              f"{args.images / med:7.1f} images/s (median of {len(ts)})")
    if len(outputs) == 1:
        print("every run's --json output was the same bytes (elapsed_ms and url aside)")
    elif outputs:
        print(f"FAIL: the runs gave {len(outputs)} different outputs")
        status = 1
    base = next((r for r in rows if r[1] == min(parallels) and r[0] == min(replicas)), None)
    for r in rows:
        if base and r is not base:
            print(f"  {r[0]} replica(s) --parallel {r[1]}: {base[2] / r[2]:.2f}x the images/s of "
                  f"{base[0]} replica(s) --parallel {base[1]}")
    shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
