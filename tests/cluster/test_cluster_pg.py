#!/usr/bin/env python3
"""test_cluster_pg.py - challenges on 3 seglossd replicas that share one PostgreSQL and one
--blob-dir, behind Debian's nginx running docker/nginx/segloss.conf, all on loopback (make
test-cluster; CHALLENGES.md "Replicas").

  python3 tests/cluster/test_cluster_pg.py --seglossd build/seglossd [--nginx-conf docker/nginx]

The PostgreSQL is a throwaway one this program starts (tests/pg/pgserver.py: initdb in a
temporary directory, an unprivileged user when run as root). Through nginx: four participants
send 8 submissions each at once with a quota of 3 a day (exactly 3 x 201 and 5 x 429 each); a
replica is SIGKILLed while it scores a submission (found by the submission's owner in the
database; every answered submission survives with its scores, the cut one fails "interrupted"
once the lease has expired and does not count); a re-score is running when the replica holding
the job is SIGKILLed (another one takes the job over and finishes it); two new replicas join
(nginx reloaded) and every replica, asked directly and through nginx, serves the same
leaderboards with the scores worked out here (Dice by numpy, never seglossd's values).
Deadlines are generous (a loaded 2-core machine): every wait polls until its condition holds.

Prints "ok"/"FAIL" lines and closes with "pgcluster: N passed, M failed". Every process it
starts is killed on the way out. Python 3 standard library + numpy (Debian's python3-numpy)."""

import argparse
import os
import shutil
import signal
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)
sys.path.insert(0, os.path.join(TESTS, "pg"))
sys.path.insert(0, os.path.join(TESTS, "challenges"))
import pgserver  # noqa: E402  (tests/pg/pgserver.py)
import test_challenges as tc  # noqa: E402  (tests/challenges/test_challenges.py: hand-worked Dice)
import test_cluster as tcl  # noqa: E402  (tests/cluster/test_cluster.py: replicas and nginx)
from tally import Tally  # noqa: E402  (tests/tally.py)

T = Tally("pgcluster")
tcl.T = T  # the cluster helpers' own checks (nginx -t, nginx starts) count here
LEASE_S = 2  # --lease-seconds: a killed replica's submissions fail this soon (plus a sweep)
DEADLINE = 180.0  # seconds any one wait may take on a loaded machine
QUOTA = 3  # per_day of the quota challenge
TEAMS = 4
SENDS = 8  # submissions per team, all at once

# the heavy challenge: random 0/1 masks, Dice and HD95 (a distance transform per image) so that
# a submission takes long enough to be caught while it is scored
N_IMG, SIDE = 12, 320
IMG_IDS = [f"img{i:02d}" for i in range(N_IMG)]
PUB = IMG_IDS[: N_IMG // 2]


def np_dice(p, t):
    """Dice of two 0/1 masks (tc.dice), by numpy."""
    return tc.dice(p, t)


def mean_dice(pred, ref, ids):
    return sum(np_dice(pred[IMG_IDS.index(i)], ref[IMG_IDS.index(i)]) for i in ids) / len(ids)


class Stack:
    """PostgreSQL, the replicas (tcl.Cluster with the store's flags) and nginx."""

    def __init__(self, args):
        self.args = args
        self.pg = pgserver.PgCluster()
        self.db = self.pg.createdb("cluster")
        self.c = tcl.Cluster(args)
        self.blobs = os.path.join(self.c.tmp, "blobs")
        self.token_file = os.path.join(self.c.tmp, "admin.token")
        self.admin = os.urandom(32).hex()
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, self.admin.encode() + b"\n")
        os.close(fd)
        self.n = 0
        self.owner = {}  # replica id in segloss_replicas -> its Proc
        self.probe = None  # (challenge, token, body) of learn_owners

    def flags(self):
        return ["--db", self.pg.uri("cluster"), "--db-password-file", self.pg.password_file,
                "--blob-dir", self.blobs, "--admin-token-file", self.token_file,
                "--lease-seconds", str(LEASE_S)]

    def start_replica(self):
        r = self.c.start_replica(self.n, self.flags())
        T.check(r is not None, f"seglossd{self.n} starts with --db (PostgreSQL) and --blob-dir",
                tcl.tail(os.path.join(self.c.tmp, f"seglossd{self.n}.err")))
        self.n += 1
        return r

    def url(self, r=None):
        return f"http://127.0.0.1:{r.port if r else self.c.nginx_port}"

    def call(self, method, path, body=None, token=None, ctype=None, r=None, timeout=120):
        """A request through nginx, or to replica r directly."""
        return tc.call(self.url(r), method, path, body, token, ctype, timeout)

    def sql(self, query):
        return self.pg.psql("cluster", query)

    def reload_nginx(self):
        """Rewrites the upstream list with the live replicas and reloads nginx (SIGHUP)."""
        self.c.write_nginx_files(self.c.nginx_port)
        os.kill(self.c.nginx.p.pid, signal.SIGHUP)

        # the new workers send to every replica: each one seen in nginx's log answering
        def all_seen():
            seen = set()
            for _ in range(6 * len(self.c.replicas)):
                tcl.http_request(self.c.nginx_port, "GET", "/v1/challenges")
            for e in self.c.nginx_log()[-12 * len(self.c.replicas):]:
                seen.add(e.get("upstream", "").split(",")[-1].strip())
            return all(f"127.0.0.1:{r.port}" in seen for r in self.c.replicas)
        return tcl.wait_until(all_seen, 30.0, 0.2)

    def learn_owners(self, name, token, body):
        """Maps each live replica to its id in the store: a submission sent to it directly is
        admitted under that id (submissions.owner)."""
        for r in self.c.replicas:
            if r in self.owner.values():
                continue
            a = self.call("POST", f"/v1/challenges/{name}/submissions", body, token, r=r)
            if a.status != 201:
                return False
            self.owner[self.sql(f"SELECT owner FROM submissions WHERE id = '{a.json['id']}'")] = r
        return True

    def kill(self, r):
        r.kill_group(signal.SIGKILL)
        r.p.wait(10)
        self.c.replicas.remove(r)

    def stop(self):
        try:
            self.c.cleanup()
        finally:
            self.pg.stop()


def poll(pred, timeout=DEADLINE, step=0.1):
    return tcl.wait_until(pred, timeout, step)


# ---- the phases --------------------------------------------------------------------------


def phase_quota(s):
    """TEAMS participants send SENDS submissions each, all at once, through nginx, with
    per_day QUOTA: exactly QUOTA x 201 and SENDS - QUOTA x 429 per participant."""
    cfg = dict(tc.CONFIG, quota={"per_day": QUOTA, "total": None, "concurrent": SENDS})
    a = s.call("PUT", "/v1/challenges/sq", cfg, s.admin)
    T.check(a.status == 201, "PUT a challenge through nginx", a.raw[:200])
    arr = np.stack([tc.REF[i] for i in tc.IDS])
    a = s.call("PUT", "/v1/challenges/sq/reference", tc.stacked(arr, tc.IDS, "target"), s.admin)
    T.check(a.status in (200, 201), "PUT its reference through nginx", a.raw[:200])
    tokens = {}
    for k in range(TEAMS):
        a = s.call("POST", "/v1/challenges/sq/participants", {"name": f"team-{k}"}, s.admin)
        tokens[k] = a.json["token"] if a.status == 201 else None
    T.check(all(tokens.values()), f"{TEAMS} participants registered through nginx")
    bodies = {k: tc.stacked(np.stack([tc.shifted(k)[i] for i in tc.IDS]).astype(np.uint8),
                            tc.IDS, "prediction") for k in range(TEAMS)}
    out = {k: [] for k in range(TEAMS)}
    lock = threading.Lock()
    go = threading.Barrier(TEAMS * SENDS)

    def send(k):
        go.wait()
        a = s.call("POST", "/v1/challenges/sq/submissions", bodies[k], tokens[k])
        with lock:
            out[k].append((a.status, a.json))
    th = [threading.Thread(target=tc._safe, args=(lambda k=k: send(k),))
          for k in range(TEAMS) for _ in range(SENDS)]
    for x in th:
        x.start()
    for x in th:
        x.join(DEADLINE)
    for k in range(TEAMS):
        st = sorted(x[0] for x in out[k])
        T.check(st.count(201) == QUOTA and st.count(429) == SENDS - QUOTA,
                f"team-{k}: {SENDS} at once through nginx with {QUOTA} a day: exactly {QUOTA} x "
                f"201 and {SENDS - QUOTA} x 429", repr(st))
    ids = {k: sorted(j["id"] for st, j in out[k] if st == 201) for k in range(TEAMS)}
    owners = s.sql("SELECT count(DISTINCT owner) FROM submissions WHERE challenge = 'sq'")
    T.info(f"the {TEAMS * QUOTA} admitted submissions were scored by {owners} replicas")
    return tokens, ids


def heavy_setup(s):
    rng = np.random.default_rng(19)
    ref = (rng.random((N_IMG, SIDE, SIDE)) > 0.5).astype(np.uint8)
    cfg = {"title": "Noise", "description": "random masks",
           "spec": {"mode": "binary", "prediction_type": "labels",
                    "metrics": ["dice", {"name": "hausdorff", "percentile": 95, "as": "hd95"}]},
           "ranking": [{"key": "metrics.dice.mean", "order": "desc"}],
           "columns": ["metrics.dice.mean"], "split": {"public_ids": PUB},
           "quota": {"per_day": None, "total": None, "concurrent": 8}, "final_selections": 1}
    a = s.call("PUT", "/v1/challenges/heavy", cfg, s.admin)
    b = s.call("PUT", "/v1/challenges/heavy/reference", tc.stacked(ref, IMG_IDS, "target"),
               s.admin)
    T.check(a.status == 201 and b.status in (200, 201), "the heavy challenge and its reference",
            a.raw[:200] + b.raw[:200])
    toks = {}
    for p in ("p",):
        a = s.call("POST", "/v1/challenges/heavy/participants", {"name": p}, s.admin)
        toks[p] = a.json["token"]
    return ref, toks, rng


def probe_setup(s):
    """A challenge of its own whose submissions, one sent to each replica directly, tell the
    replicas' ids in the store."""
    a = s.call("PUT", "/v1/challenges/probe", tc.CONFIG, s.admin)
    arr = np.stack([tc.REF[i] for i in tc.IDS])
    b = s.call("PUT", "/v1/challenges/probe/reference", tc.stacked(arr, tc.IDS, "target"),
               s.admin)
    c = s.call("POST", "/v1/challenges/probe/participants", {"name": "probe"}, s.admin)
    if a.status != 201 or b.status not in (200, 201) or c.status != 201:
        return False
    body = tc.stacked(np.stack([tc.shifted(0)[i] for i in tc.IDS]).astype(np.uint8), tc.IDS,
                      "prediction")
    s.probe = ("probe", c.json["token"], body)
    return s.learn_owners(*s.probe)


def pred_body(pred):
    return tc.stacked(pred, IMG_IDS, "prediction")


def phase_kill_scoring(s, ref, toks, rng):
    """A stream of submissions through nginx; the replica scoring one (its owner in the
    database) is SIGKILLed. Returns {id: (pred, public dice)} of the answered ones."""
    preds = [(rng.random((N_IMG, SIDE, SIDE)) > 0.4 + 0.02 * i).astype(np.uint8)
             for i in range(6)]
    answered = {}
    cut = []
    stop = threading.Event()
    lock = threading.Lock()

    def stream(w):
        i = w
        while not stop.is_set():
            p = preds[i % len(preds)]
            i += 2
            t0 = time.monotonic()
            a = s.call("POST", "/v1/challenges/heavy/submissions", pred_body(p), toks["p"])
            with lock:
                if a.status == 201:
                    answered[a.json["id"]] = (p, a.json["public"]["metrics.dice.mean"],
                                              time.monotonic() - t0)
                else:
                    cut.append((a.status, a.raw[:200]))
    th = [threading.Thread(target=tc._safe, args=(lambda w=w: stream(w),)) for w in range(2)]
    for x in th:
        x.start()
    poll(lambda: len(answered) >= 2)
    # a submission being scored now, and the replica that admitted (and scores) it
    found = {}

    def scoring():
        rows = s.sql("SELECT id, owner FROM submissions WHERE challenge = 'heavy' AND "
                     "status = 'scoring' ORDER BY seq LIMIT 1")
        if rows and rows.split("|")[1] in s.owner:
            found["id"], found["owner"] = rows.split("|")
            found["r"] = s.owner[found["owner"]]
            return True
        return False

    # the submission may be answered between the look and the kill (a few ms of its ~1 s): what
    # the kill cut is what its owner still had scoring after it (or already failed by a sweep);
    # none cut: a new replica joins and the next one is tried
    victim, cut_ids = None, []
    for _attempt in range(3):
        found.clear()
        poll(scoring, step=0.02)
        victim = found.get("r")
        if victim is None:
            break
        s.kill(victim)
        cut_ids = s.sql(f"SELECT id FROM submissions WHERE owner = '{found['owner']}' AND "
                        "(status = 'scoring' OR error = 'interrupted')").split()
        if cut_ids:
            break
        T.info(f"{found['id']} was answered before the kill landed: another try")
        s.start_replica()
        s.learn_owners(*s.probe)
        s.reload_nginx()
    T.check(victim is not None and cut_ids, "a replica is SIGKILLed while it scores a "
            "submission (status scoring, its owner in the store)", repr(found))
    if not cut_ids:
        stop.set()
        return answered
    n_before = len(answered)
    T.info(f"SIGKILL {victim.name} while it scores {', '.join(cut_ids)}, after {n_before} "
           f"answers (a submission takes ~{np.median([v[2] for v in answered.values()]):.2f} s)")
    poll(lambda: len(answered) >= n_before + 2)
    stop.set()
    for x in th:
        x.join(DEADLINE)
    T.check(len(answered) >= n_before + 2, "submissions through nginx go on after the kill "
            f"({len(answered) - n_before} more answered)")
    T.info(f"{len(cut)} request(s) cut by the kill answered by nginx: {cut[:2]!r}")

    # the cut submission fails once the victim's lease has expired; no row stays 'scoring'
    t0 = time.monotonic()

    def settled():
        return s.sql("SELECT count(*) FROM submissions WHERE challenge = 'heavy' AND "
                     "status = 'scoring'") == "0"
    ok = poll(settled)
    sts = [s.call("GET", f"/v1/challenges/heavy/submissions/{i}", token=s.admin).json
           for i in cut_ids]
    T.check(ok and all(st and st.get("status") == "failed" and st.get("error") == "interrupted"
                       and st["id"] not in answered for st in sts),
            f"the cut submission fails as interrupted after the lease ({LEASE_S} s; "
            f"{time.monotonic() - t0:.1f} s after the kill), and was not answered",
            repr(sts)[:300])
    # every answered submission is stored with the scores it was answered with, which are the
    # Dice worked out here
    lst = s.call("GET", "/v1/challenges/heavy/submissions", token=s.admin).json
    subs = {x["id"]: x for x in lst["submissions"]}
    kept = all(k in subs and subs[k]["status"] == "scored" and
               tc.close(subs[k]["public"]["metrics.dice.mean"], v[1]) and
               tc.close(v[1], mean_dice(v[0], ref, PUB)) for k, v in answered.items())
    T.check(kept, f"all {len(answered)} answered submissions survive with their scores (Dice by "
            "numpy)")
    scored = sum(1 for x in subs.values() if x["status"] == "scored" and
                 x["participant"] == "p")
    a = s.call("POST", "/v1/challenges/heavy/submissions", pred_body(preds[0]), toks["p"])
    T.check(a.status == 201 and a.json["quota"]["used_total"] == scored + 1,
            "the interrupted submission does not count against the quota",
            f"{a.raw[:200]!r}, {scored} scored before")
    if a.status == 201:
        answered[a.json["id"]] = (preds[0], a.json["public"]["metrics.dice.mean"], 0)
    return answered


def phase_kill_rescore(s, ref, toks, rng, answered):
    """More submissions, then a new reference: the re-score runs on one replica (the job row's
    owner), which is SIGKILLed; another takes the job over once the lease has expired and
    finishes it: every submission re-scored against the new reference."""
    preds = [(rng.random((N_IMG, SIDE, SIDE)) > 0.5).astype(np.uint8) for _ in range(4)]
    lock = threading.Lock()

    def more(w):
        for i in range(5):
            p = preds[(w + i) % len(preds)]
            a = s.call("POST", "/v1/challenges/heavy/submissions", pred_body(p), toks["p"])
            if a.status == 201:
                with lock:
                    answered[a.json["id"]] = (p, a.json["public"]["metrics.dice.mean"], 0)
    th = [threading.Thread(target=tc._safe, args=(lambda w=w: more(w),)) for w in range(2)]
    for x in th:
        x.start()
    for x in th:
        x.join(DEADLINE)
    new = ref.copy()
    new[:, :, : SIDE // 2] = 1 - new[:, :, : SIDE // 2]
    a = s.call("PUT", "/v1/challenges/heavy/reference", tc.stacked(new, IMG_IDS, "target"),
               s.admin)
    T.check(a.status == 200, f"a new reference through nginx starts a re-score of "
            f"{len(answered)}+ submissions", a.raw[:200])
    holder = {}

    def running():
        o = s.sql("SELECT owner FROM segloss_jobs WHERE name = 'rescore'")
        p = s.call("GET", "/v1/challenges/heavy/rescore", token=s.admin).json or {}
        # mid-run: one submission re-scored, more to go
        if o in s.owner and s.owner[o] in s.c.replicas and p.get("total") and \
                p["done"] >= 1 and p["done"] + p["failed"] <= p["total"] - 3:
            holder["r"], holder["p"] = s.owner[o], p
            return True
        return False
    poll(running, step=0.02)
    victim = holder.get("r")
    T.check(victim is not None, "a replica holds the re-score job while it runs "
            "(segloss_jobs.owner)")
    if victim is None:
        return new
    s.kill(victim)
    t0 = time.monotonic()
    after = s.call("GET", "/v1/challenges/heavy/rescore", token=s.admin).json or {}
    T.check(after.get("done", 0) + after.get("failed", 0) < after.get("total", 0),
            f"the re-score is unfinished when {victim.name} dies", repr(after))
    T.info(f"SIGKILL {victim.name} holding the re-score at {holder['p']}")
    prog = {}

    def finished():
        nonlocal prog
        prog = s.call("GET", "/v1/challenges/heavy/rescore", token=s.admin).json or {}
        return prog.get("total") and prog["done"] + prog["failed"] == prog["total"] and \
            s.sql("SELECT count(*) FROM submissions WHERE challenge = 'heavy' AND "
                  "status = 'scored' AND stale <> 0") == "0"
    ok = poll(finished, step=0.2)
    T.info(f"re-score {prog} {time.monotonic() - t0:.1f} s after the kill, on "
           f"{', '.join(r.name for r in s.c.replicas)}")
    T.check(ok and prog.get("failed") == 0, "another replica takes the re-score over and "
            "finishes it (none stale, none failed)", repr(prog))
    lst = s.call("GET", "/v1/challenges/heavy/submissions", token=s.admin).json
    subs = {x["id"]: x for x in lst["submissions"]}
    good = all(k in subs and subs[k]["status"] == "scored" and not subs[k]["stale"] and
               tc.close(subs[k]["public"]["metrics.dice.mean"], mean_dice(v[0], new, PUB))
               for k, v in answered.items())
    T.check(good, f"all {len(answered)} answered submissions carry Dice against the new "
            "reference (numpy)")
    return new


def phase_boards(s, ref, answered):
    """Two new replicas join (nginx reloaded); each replica directly and nginx serve the same
    leaderboards, with the values worked out here."""
    while len(s.c.replicas) < 3:
        s.start_replica()
    T.check(s.reload_nginx(), "nginx reloaded with the 3 live replicas, each one answering")
    want_sq = sorted(((f"team-{k}", tc.expected_mean(tc.shifted(k), tc.PUBLIC))
                      for k in range(TEAMS)), key=lambda x: -x[1])
    best = max(mean_dice(v[0], ref, PUB) for v in answered.values())
    boards = {}
    for r in s.c.replicas + [None] * 3:
        for name in ("sq", "heavy"):
            a = s.call("GET", f"/v1/challenges/{name}/leaderboard", r=r)
            rows = [(x["participant"], x["submission"], x["scores"]) for x in a.json["rows"]] \
                if a.status == 200 else None
            boards.setdefault(name, []).append(rows)
    same = all(b.count(b[0]) == len(b) and b[0] for b in boards.values())
    T.check(same, f"{len(s.c.replicas)} replicas asked directly and nginx 3 times serve the "
            "same leaderboards", repr({k: [len(x or []) for x in v] for k, v in boards.items()}))
    sq = boards["sq"][0] or []
    got = {x[0]: x[2]["metrics.dice.mean"] for x in sq}
    vals = [x[2]["metrics.dice.mean"] for x in sq]
    T.check(len(sq) == TEAMS and all(tc.close(got.get(p), v) for p, v in want_sq) and
            vals == sorted(vals, reverse=True),
            "the quota challenge's leaderboard: each team's Dice worked by hand, best first",
            repr(sq)[:300])
    hv = boards["heavy"][0] or []
    T.check(len(hv) == 1 and hv[0][0] == "p" and tc.close(hv[0][2]["metrics.dice.mean"], best),
            "the re-scored challenge's leaderboard: the best Dice against the new reference",
            f"{hv!r:.300} want {best}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--nginx-conf", default=os.path.join(HERE, "..", "..", "docker", "nginx"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    args.seglossd = os.path.abspath(args.seglossd)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    t_start = time.monotonic()
    s = None
    try:
        s = Stack(args)
        T.info(f"PostgreSQL on 127.0.0.1:{s.pg.port}")
        for _ in range(3):
            s.start_replica()
        if len(s.c.replicas) == 3 and s.c.start_nginx():
            T.check(True, f"nginx on 127.0.0.1:{s.c.nginx_port} in front of 3 replicas on one "
                    "PostgreSQL and one --blob-dir")
            tokens, ids = phase_quota(s)
            ref, toks, rng = heavy_setup(s)
            T.check(probe_setup(s), 
                    "each replica's id in the store (a submission sent to it directly)")
            answered = phase_kill_scoring(s, ref, toks, rng)
            new = phase_kill_rescore(s, ref, toks, rng, answered)
            phase_boards(s, new, answered)
            # the quota challenge's answered submissions, listed alike by every replica
            lists = [sorted(x["id"] for x in s.call("GET", "/v1/challenges/sq/submissions",
                                                    token=s.admin, r=r).json["submissions"])
                     for r in s.c.replicas]
            want = sorted(i for k in ids for i in ids[k])
            T.check(all(x == want for x in lists), f"every replica lists the {len(want)} "
                    "admitted quota submissions, no more")
        if T.failed:
            s.c.dump_logs()
    except Exception as e:  # noqa: BLE001 - any error is a failed check, then cleanup
        T.check(False, "the test ran to its end", f"{type(e).__name__}: {e}")
        if s:
            s.c.dump_logs()
    finally:
        if s:
            s.stop()
    T.info(f"{time.monotonic() - t_start:.1f} s")
    print(f"pgcluster: {T.passed} passed, {T.failed} failed")
    return 1 if T.failed else 0


if __name__ == "__main__":
    sys.exit(main())
