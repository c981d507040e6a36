#!/usr/bin/env python3
"""test_cluster.py - the compose topology, natively: 3 seglossd replicas behind Debian's nginx
running the repository's docker/nginx/segloss.conf, all on loopback ports.

  python3 tests/cluster/test_cluster.py --seglossd build/seglossd --golden tests/golden/cases \
      [--nginx-conf docker/nginx] [--nginx /usr/sbin/nginx] [--requests 480] [--concurrency 6]

Checks, through nginx: /healthz, /readyz, X-Request-ID, a gzip request body and gzip answers
passed through untouched, nginx's own 413; a bounded load of golden requests (each answer compared
with the case's expected values, which come from peer implementations) while one replica is
SIGKILLed with a job running (nginx must resend its requests elsewhere); then SIGTERM on a replica
with several long requests in flight (it must finish them and exit 0, while nginx sends new work
to the other). Every request must get 200 and the golden values. Prints "ok"/"FAIL" lines and
closes with "cluster: N passed, M failed"; exits 1 when anything failed.

Every process it starts (in its own session) is killed on the way out, also on failure.
Python 3 standard library only.
"""

import argparse
import base64
import copy
import datetime
import glob
import gzip
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tally import Tally  # noqa: E402  (tests/tally.py)

START_TIMEOUT = 15.0  # seconds for a replica or nginx to come up
REQUEST_TIMEOUT = 60.0  # seconds per request through nginx
DRAIN_EXIT_TIMEOUT = 40.0  # seconds for a drained replica to exit (its --drain-seconds is 30)
HEAVY_TILES = 2048  # the heavy request: the surface case's images repeated this many times
MAX_SHOWN = 8  # failing requests printed per phase


T = Tally("cluster")


# ---- the golden rules ------------------------------------------------------------------------


def compare(want, got, path, rtol, atol, out):
    """golden README: objects compare want's keys, arrays elementwise with equal length, numbers
    within atol + rtol*|want|, null must be null, strings and booleans equal."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            out.append(f"{path} = {str(got)[:60]}, want an object")
            return
        for k, v in want.items():
            p = f"{path}.{k}" if path else k
            if k not in got:
                out.append(f"{p}: missing")
            else:
                compare(v, got[k], p, rtol, atol, out)
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            out.append(f"{path}: {str(got)[:60]}, want an array of {len(want)}")
            return
        for i, (w, g) in enumerate(zip(want, got)):
            compare(w, g, f"{path}[{i}]", rtol, atol, out)
    elif want is None:
        if got is not None:
            out.append(f"{path} = {got}, want null")
    elif isinstance(want, bool) or isinstance(want, str):
        if got != want:
            out.append(f"{path} = {got!r}, want {want!r}")
    elif isinstance(want, (int, float)):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            out.append(f"{path} = {got!r}, want {want}")
        elif not abs(got - want) <= atol + rtol * abs(want):
            out.append(f"{path} = {got!r}, want {want} (tol {atol + rtol * abs(want):.3g})")
    else:
        out.append(f"{path}: cannot compare {type(want).__name__}")


class Case:
    def __init__(self, cid, body, expect, rtol, atol):
        self.id = cid
        self.body = body
        self.gz = gzip.compress(body, 6)
        self.expect = expect
        self.rtol = rtol
        self.atol = atol

    def mismatches(self, status, headers, data):
        """[] when the answer is a 200 application/json body with the expected values."""
        if status != 200:
            return [f"status {status}: {data[:200]!r}"]
        if headers.get("content-encoding", "") == "gzip":
            try:
                data = gzip.decompress(data)
            except OSError as e:
                return [f"gzip answer does not inflate: {e}"]
        elif headers.get("content-encoding"):
            return [f"Content-Encoding {headers['content-encoding']}"]
        if not headers.get("content-type", "").startswith("application/json"):
            return [f"Content-Type {headers.get('content-type')}"]
        try:
            doc = json.loads(data)
        except ValueError as e:
            return [f"the body is not JSON: {e}"]
        out = []
        for k, v in self.expect.items():
            if k != "status":
                compare(v, doc.get(k), k, self.rtol, self.atol, out)
        return out


def load_cases(golden_dir):
    """The /v1/score cases that answer 200 (weight-map and error cases left out)."""
    cases = []
    for path in sorted(glob.glob(os.path.join(golden_dir, "*.json"))):
        with open(path, "rb") as f:
            doc = json.load(f)
        expect = doc.get("expect", {})
        if expect.get("status") != 200 or "weight_map" in expect:
            continue
        body = json.dumps(doc["request"]).encode()
        cases.append(Case(doc["id"], body, expect, doc.get("rtol", 1e-5), doc.get("atol", 1e-6)))
    return cases


def tiled_case(case, tiles):
    """A long request with golden values: the case's images (list arrays of masks) repeated
    `tiles` times as raw zlib arrays, each image scored on its own, so per_image repeats the
    peers' values, the mean stays and undefined counts scale."""
    req = json.loads(case.body)
    for key in ("prediction", "target"):
        a = req[key]
        if a.get("format") != "list" or a.get("dtype") != "uint8":
            return None
        data = bytes(a["data"]) * tiles
        shape = [a["shape"][0] * tiles] + a["shape"][1:]
        req[key] = {"format": "raw", "dtype": "uint8", "shape": shape, "compression": "zlib",
                    "data": base64.b64encode(zlib.compress(data, 6)).decode()}
    if req.get("losses"):
        return None
    expect = copy.deepcopy(case.expect)
    for m in expect.get("metrics", {}).values():
        if "per_image" in m:
            m["per_image"] = m["per_image"] * tiles
        if isinstance(m.get("undefined"), int):
            m["undefined"] *= tiles
    return Case(case.id + f"_x{tiles}", json.dumps(req).encode(), expect, case.rtol, case.atol)


# ---- HTTP ------------------------------------------------------------------------------------


def http_request(port, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT):
    """One request on a fresh connection: (status, lower-case headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def metrics(port):
    """The gauges of a replica's /metrics, or None when it does not answer."""
    try:
        status, _, data = http_request(port, "GET", "/metrics", timeout=5)
    except OSError:
        return None
    if status != 200:
        return None
    out = {}
    for line in data.decode().splitlines():
        m = re.match(r"^(segloss_[a-z_]+) ([0-9.eE+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, step=0.01):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(step)


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join("       | " + ln for ln in lines[-n:])
    except OSError:
        return ""


# ---- the processes ---------------------------------------------------------------------------


class Proc:
    def __init__(self, name, argv, tmp):
        self.name = name
        self.out = os.path.join(tmp, name + ".out")
        self.err = os.path.join(tmp, name + ".err")
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            # own session: a signal for the test's terminal does not reach it, and cleanup can
            # kill it with everything it forked (nginx's workers) by its process group
            self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                      start_new_session=True)
        self.port = None

    def alive(self):
        return self.p.poll() is None

    def kill_group(self, sig):
        if self.alive():
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass


class Cluster:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="segloss-cluster-")
        # nginx's workers run as an unprivileged user when the test runs as root
        os.chmod(self.tmp, 0o711)
        self.replicas = []
        self.nginx = None
        self.nginx_port = None
        self.procs = []

    def start_replica(self, i, extra=()):
        """Starts seglossd{i} (extra: more flags, e.g. the store's); returns it, None if not."""
        argv = [self.args.seglossd, "--port", "0", "--bind", "127.0.0.1", "--threads", "1",
                "--max-per-ip", "0", "--max-images", str(8 * HEAVY_TILES),
                "--drain-seconds", "30", *extra]
        r = Proc(f"seglossd{i}", argv, self.tmp)
        self.procs.append(r)

        def port():
            try:
                with open(r.out) as f:
                    m = re.search(r"seglossd listening on http://127\.0\.0\.1:(\d+)", f.read())
            except OSError:
                m = None
            return int(m.group(1)) if m else (None if r.alive() else -1)

        p = wait_until(port, START_TIMEOUT)
        if not p or p < 0:
            return None
        r.port = p
        self.replicas.append(r)
        return r

    def write_nginx_files(self, port):
        """nginx.conf (main context and temp paths, here) including the repository's
        segloss.conf; segloss-upstream.conf with the compose file's server parameters for each
        loopback replica; segloss-listen.conf."""
        conf_dir = os.path.abspath(self.args.nginx_conf)
        with open(os.path.join(conf_dir, "segloss-upstream.conf")) as f:
            lines = [ln.split("#")[0].strip() for ln in f]
        servers = [ln for ln in lines if ln.startswith("server ")]
        if len(servers) != 1:
            raise RuntimeError("segloss-upstream.conf: want one `server` line")
        params = " ".join(servers[0].rstrip(";").split()[2:])
        with open(os.path.join(self.tmp, "segloss-upstream.conf"), "w") as f:
            for r in self.replicas:
                f.write(f"server 127.0.0.1:{r.port} {params};\n")
        with open(os.path.join(self.tmp, "segloss-listen.conf"), "w") as f:
            f.write(f"listen 127.0.0.1:{port};\n")
        t = self.tmp
        with open(os.path.join(t, "nginx.conf"), "w") as f:
            f.write(f"""worker_processes 2;
pid {t}/nginx.pid;
error_log {t}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    client_body_temp_path {t}/body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;
    include {os.path.join(conf_dir, "segloss.conf")};
}}
""")

    def nginx_argv(self, *extra):
        return [self.args.nginx, "-e", os.path.join(self.tmp, "nginx-startup.log"), "-p",
                self.tmp + "/", "-c", os.path.join(self.tmp, "nginx.conf"), *extra]

    def start_nginx(self):
        for _attempt in range(3):
            port = free_port()
            self.write_nginx_files(port)
            t = subprocess.run(self.nginx_argv("-t", "-q"), capture_output=True, text=True,
                               timeout=30)
            if t.returncode != 0:
                T.check(False, "nginx -t accepts docker/nginx/segloss.conf",
                        (t.stderr + tail(os.path.join(self.tmp, "nginx-startup.log"))).strip())
                return False
            n = Proc("nginx", self.nginx_argv("-g", "daemon off;"), self.tmp)
            self.procs.append(n)

            def up():
                if not n.alive():
                    return -1
                try:
                    s, _, _ = http_request(port, "GET", "/healthz", timeout=2)
                    return s == 200
                except OSError:
                    return False

            ok = wait_until(up, START_TIMEOUT, 0.02)
            if ok is True:
                self.nginx, self.nginx_port = n, port
                return True
            n.kill_group(signal.SIGKILL)
            n.p.wait(5)
            # another process may have taken the port in between: try another one
        T.check(False, "nginx starts", tail(os.path.join(self.tmp, "nginx-error.log")) +
                tail(os.path.join(self.tmp, "nginx-startup.log")))
        return False

    def cleanup(self):
        for p in self.procs:
            if p is self.nginx and p.alive():
                p.kill_group(signal.SIGQUIT)  # graceful: finish and stop the workers
                try:
                    p.p.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            p.kill_group(signal.SIGKILL)
        for p in self.procs:
            try:
                p.p.wait(10)
            except subprocess.TimeoutExpired:
                print(f"     cluster: {p.name} (pid {p.p.pid}) did not exit after SIGKILL")
        if self.args.keep:
            print(f"     cluster: files kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def nginx_log(self):
        out = []
        try:
            with open(self.nginx.out) as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except OSError:
            pass
        return out

    def dump_logs(self):
        for p in self.procs:
            for path in (p.err,):
                text = tail(path, 8)
                if text:
                    print(f"     {p.name} stderr:\n{text}")
        text = tail(os.path.join(self.tmp, "nginx-error.log"), 20)
        if text:
            print(f"     nginx error log:\n{text}")


# ---- load ------------------------------------------------------------------------------------


class Result:
    def __init__(self, what, rid):
        self.what = what
        self.rid = rid
        self.problems = []


def send_case(port, case, rid, gzip_body=False, accept_gzip=False):
    res = Result(case.id, rid)
    headers = {"Content-Type": "application/json", "X-Request-ID": rid}
    body = case.body
    if gzip_body:
        headers["Content-Encoding"] = "gzip"
        body = case.gz
    if accept_gzip:
        headers["Accept-Encoding"] = "gzip"
    try:
        status, h, data = http_request(port, "POST", "/v1/score", body, headers)
    except (OSError, http.client.HTTPException) as e:
        res.problems = [f"{type(e).__name__}: {e}"]
        return res
    res.problems = case.mismatches(status, h, data)
    if h.get("x-request-id") != rid:
        res.problems.append(f"X-Request-ID {h.get('x-request-id')!r}, want {rid!r}")
    if not accept_gzip and h.get("content-encoding"):
        res.problems.append("a gzip answer the client did not ask for")
    res.gzip_answer = h.get("content-encoding") == "gzip"
    return res


def report(results, what):
    bad = [r for r in results if r.problems]
    for r in bad[:MAX_SHOWN]:
        print(f"     cluster: {r.rid} ({r.what}): " + "; ".join(r.problems[:3]))
    return T.check(len(results) > 0 and not bad,
                   f"{what}: {len(results) - len(bad)}/{len(results)} requests answered 200 "
                   "with the golden values")


def run_workers(n, fn):
    threads = [threading.Thread(target=fn, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def join_all(threads, timeout):
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


# ---- the phases ------------------------------------------------------------------------------


def phase_basics(c, cases):
    port = c.nginx_port
    s, h, _ = http_request(port, "GET", "/healthz")
    T.check(s == 200, "GET /healthz through nginx is 200", f"status {s}")
    s, h, _ = http_request(port, "GET", "/readyz")
    T.check(s == 200, "GET /readyz through nginx is 200", f"status {s}")
    rid = h.get("x-request-id", "")
    T.check(re.fullmatch(r"[0-9a-f]{32}", rid) is not None,
            "nginx makes up an X-Request-ID when the client sends none", repr(rid))
    s, h, data = http_request(port, "GET", "/v1/catalog")
    T.check(s == 200 and h.get("content-type", "").startswith("application/json"),
            "GET /v1/catalog through nginx", f"status {s}")

    case = max(cases, key=lambda k: len(k.body))
    r = send_case(port, case, "cluster-gzip-body", gzip_body=True)
    T.check(not r.problems, f"a Content-Encoding: gzip body ({len(case.gz)} bytes of "
            f"{len(case.body)}) passes nginx untouched and is scored right ({case.id})",
            "; ".join(r.problems[:3]))
    gz = [send_case(port, k, f"cluster-accept-gzip-{i}", accept_gzip=True)
          for i, k in enumerate(cases)]
    n_gz = sum(1 for r in gz if getattr(r, "gzip_answer", False))
    T.check(not any(r.problems for r in gz) and n_gz > 0,
            f"Accept-Encoding: gzip: {n_gz} of {len(gz)} answers come gzipped by seglossd "
            "through nginx and inflate to the golden values",
            "; ".join(p for r in gz for p in r.problems[:1])[:300])

    # nginx refuses a body over client_max_body_size (= --max-body-mb) at its headers
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("POST", "/v1/score")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(257 * 1024 * 1024))
        conn.endheaders()
        r413 = conn.getresponse()
        body = r413.read()
        ok = (r413.status == 413 and r413.getheader("Content-Type", "").startswith(
            "application/problem+json") and json.loads(body).get("detail")
            and json.loads(body).get("error") == json.loads(body).get("detail"))
        T.check(bool(ok), "a 257 MiB Content-Length gets nginx's 413 as problem+json (detail and error)",
                f"status {r413.status}: {body[:200]!r}")
    except (OSError, http.client.HTTPException, ValueError) as e:
        T.check(False, "a 257 MiB Content-Length gets nginx's 413 as problem+json", str(e))
    finally:
        conn.close()


def phase_kill(c, cases, heavy, n_requests, concurrency):
    """Bounded load through nginx; once a third is done, SIGKILL the replica that runs a long
    request (found while the light load pauses for a moment), with the light load going on."""
    rng = random.Random(9)
    order = [cases[i % len(cases)] for i in range(n_requests)]
    rng.shuffle(order)
    results = []
    lock = threading.Lock()
    next_i = [0]
    in_flight = [0]
    go = threading.Event()
    go.set()
    done = threading.Semaphore(0)

    def worker(_w):
        while True:
            go.wait()
            with lock:
                i = next_i[0]
                next_i[0] += 1
                in_flight[0] += 1
            if i >= len(order):
                with lock:
                    in_flight[0] -= 1
                return
            r = send_case(c.nginx_port, order[i], f"cluster-load-{i}", gzip_body=(i % 3 == 1),
                          accept_gzip=(i % 2 == 0))
            with lock:
                results.append(r)
                in_flight[0] -= 1
            done.release()

    t0 = time.monotonic()
    threads = run_workers(concurrency, worker)
    for _ in range(n_requests // 3):
        done.acquire(timeout=REQUEST_TIMEOUT)

    # a long request through nginx; the replica that runs it is the one to kill. The light
    # load pauses until it is found (its requests in flight done first: one queued behind the
    # long request would hold the pause), so that no golden request can be mistaken for it.
    go.clear()
    quiet = wait_until(lambda: in_flight[0] == 0, REQUEST_TIMEOUT, 0.001)
    T.check(quiet, "the light load pauses (its requests in flight answered)")
    heavy_res = []
    ht = run_workers(1, lambda _i: heavy_res.append(
        send_case(c.nginx_port, heavy, "cluster-heavy-kill")))

    def running_heavy():
        for r in c.replicas:
            m = metrics(r.port)
            if m and m.get("segloss_workers_busy", 0) >= 1:
                return r
        return None

    victim = wait_until(running_heavy, 20.0, 0.002)
    go.set()
    T.check(victim is not None, "a replica is running the long request (workers_busy, /metrics)")
    if victim is None:
        victim = c.replicas[0]
    # the light load is back in flight when the replica dies
    wait_until(lambda: in_flight[0] >= min(concurrency, 2) or next_i[0] >= len(order), 2.0,
               0.001)
    victim.kill_group(signal.SIGKILL)
    victim.p.wait(5)
    killed_at = len(results)
    T.info(f"SIGKILL {victim.name} (127.0.0.1:{victim.port}) after {killed_at} answers, "
           f"{time.monotonic() - t0:.2f} s")

    finished = join_all(threads + ht, 120.0)
    T.check(finished, "the load finished within 120 s")
    elapsed = time.monotonic() - t0
    results = results + heavy_res
    T.info(f"{len(results)} requests ({concurrency} at a time) in {elapsed:.2f} s")
    report(results, f"load with {victim.name} killed mid-run")

    # nginx resent the long request to another replica after the victim's connection broke
    log = {e.get("id"): e for e in c.nginx_log()}
    e = log.get("cluster-heavy-kill", {})
    tried = [a.strip() for a in e.get("upstream", "").split(",")]
    T.check(len(tried) >= 2 and tried[0] == f"127.0.0.1:{victim.port}" and e.get("status") == 200,
            "nginx resent the request cut off by the SIGKILL to another replica",
            f"upstream {e.get('upstream')!r}, upstream_status {e.get('upstream_status')!r}")
    retried = sum(1 for e in log.values() if "," in e.get("upstream", ""))
    T.info(f"{retried} requests were resent to another replica by nginx")
    c.replicas.remove(victim)
    return victim


def parse_ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def phase_drain(c, cases, heavy, n_heavy):
    """n_heavy long requests through nginx; SIGTERM the replica holding several of them while
    light requests keep coming."""
    results = []
    lock = threading.Lock()
    stop_light = threading.Event()

    def heavy_worker(i):
        r = send_case(c.nginx_port, heavy, f"cluster-heavy-drain-{i}")
        with lock:
            results.append(r)

    def light_worker(w):
        i = 0
        while not stop_light.is_set() and i < 150:
            k = cases[(w * 7 + i) % len(cases)]
            r = send_case(c.nginx_port, k, f"cluster-drain-light-{w}-{i}", accept_gzip=True)
            with lock:
                results.append(r)
            i += 1

    t0 = time.monotonic()
    heavy_threads = run_workers(n_heavy, heavy_worker)
    light_threads = run_workers(2, light_worker)

    def loaded_replica():
        best = None
        for r in c.replicas:
            m = metrics(r.port)
            if not m:
                continue
            others = m.get("segloss_inflight_requests", 0) - 1  # not this /metrics request
            if others >= 3 and m.get("segloss_workers_busy", 0) >= 1:
                if best is None or others > best[1]:
                    best = (r, others, m)
        return best

    found = wait_until(loaded_replica, 20.0, 0.005)
    T.check(found is not None, "a replica has a job running and more requests in flight "
            "(segloss_workers_busy, segloss_inflight_requests)")
    if found is None:
        found = (c.replicas[0], 0, {})
    target, inflight, m = found
    term_wall = time.time()
    target.kill_group(signal.SIGTERM)
    T.info(f"SIGTERM {target.name} (127.0.0.1:{target.port}) with {inflight:.0f} requests in "
           f"flight ({m.get('segloss_workers_busy', 0):.0f} running, "
           f"{m.get('segloss_queue_depth', 0):.0f} queued), "
           f"{time.monotonic() - t0:.2f} s into the phase")

    # while it drains: /readyz 503 on the replica itself, 200 through nginx
    def readyz_503():
        try:
            s, _, _ = http_request(target.port, "GET", "/readyz", timeout=2)
            return s == 503
        except OSError:
            return not target.alive()

    T.check(wait_until(readyz_503, 5.0) is True and target.alive(),
            f"{target.name}'s own /readyz answers 503 while it drains")
    s, _, _ = http_request(c.nginx_port, "GET", "/readyz")
    T.check(s == 200, "GET /readyz through nginx stays 200 (another replica is ready)",
            f"status {s}")

    try:
        rc = target.p.wait(DRAIN_EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        rc = None
    T.check(rc == 0, f"{target.name} exits 0 after the drain",
            "still running" if rc is None else f"exit status {rc}")
    T.info(f"{target.name} exited {time.monotonic() - t0:.2f} s into the phase")
    ok = join_all(heavy_threads, 120.0)
    stop_light.set()
    ok = join_all(light_threads, 60.0) and ok
    T.check(ok, "the drain phase's requests finished within 120 s")
    n_heavy_ok = sum(1 for r in results if r.what == heavy.id and not r.problems)
    T.info(f"{len(results)} requests, {n_heavy_ok} of {n_heavy} long ones answered right")
    report(results, f"requests around the drain of {target.name}")

    # the draining replica itself completed requests after SIGTERM: accepted work was finished,
    # not dropped or handed over; what it refused (503) nginx sent elsewhere
    after_ok = refused = 0
    with open(target.err) as f:
        for line in f:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("path") != "/v1/score" or parse_ts(e["ts"]) < term_wall:
                continue
            after_ok += e.get("status") == 200
            refused += e.get("status") == 503
    T.check(after_ok >= 1, f"{target.name} finished {after_ok} accepted /v1/score requests after "
            f"SIGTERM and answered {refused} new ones 503 (resent by nginx)")
    c.replicas.remove(target)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seglossd", required=True)
    ap.add_argument("--golden", required=True)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--nginx-conf", default=os.path.join(here, "..", "..", "docker", "nginx"))
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--requests", type=int, default=480)
    ap.add_argument("--concurrency", type=int, default=6)
    ap.add_argument("--drain-requests", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    args.seglossd = os.path.abspath(args.seglossd)

    # a signal to the test is an exception, so that cleanup runs
    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    t_start = time.monotonic()
    cases = load_cases(args.golden)
    T.check(len(cases) >= 10, f"{len(cases)} golden /v1/score cases that answer 200")
    surface = [k for k in cases if k.id.startswith("surface_")]
    # the first surface case whose arrays are uint8 lists (tiled_case repeats those)
    heavy = next((h for h in (tiled_case(k, HEAVY_TILES) for k in surface) if h), None)
    T.check(heavy is not None, "a long request made of a surface-metrics case's images repeated")
    for path in (args.seglossd, args.nginx):
        if not os.access(path, os.X_OK):
            T.check(False, f"{path} is executable")
    if T.failed:
        print(f"cluster: {T.passed} passed, {T.failed} failed")
        return 1

    c = Cluster(args)
    try:
        for i in range(3):
            r = c.start_replica(i)
            T.check(r is not None, f"seglossd{i} starts on an ephemeral loopback port",
                    tail(os.path.join(c.tmp, f"seglossd{i}.err")))
        if len(c.replicas) == 3 and c.start_nginx():
            T.check(True, f"nginx with docker/nginx/segloss.conf on 127.0.0.1:{c.nginx_port} "
                    f"in front of {', '.join(str(r.port) for r in c.replicas)}")
            phase_basics(c, cases)
            phase_kill(c, cases, heavy, args.requests, args.concurrency)
            phase_drain(c, cases, heavy, args.drain_requests)
            final = send_case(c.nginx_port, cases[0], "cluster-final")
            T.check(not final.problems, "the last replica still answers through nginx",
                    "; ".join(final.problems))
        if T.failed:
            c.dump_logs()
    except Exception as e:  # noqa: BLE001 - any error is a failed check, then cleanup
        T.check(False, "the test ran to its end", f"{type(e).__name__}: {e}")
        c.dump_logs()
    finally:
        c.cleanup()
    T.info(f"{time.monotonic() - t_start:.1f} s")
    print(f"cluster: {T.passed} passed, {T.failed} failed")
    return 1 if T.failed else 0


if __name__ == "__main__":
    sys.exit(main())
