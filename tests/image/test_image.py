#!/usr/bin/env python3
"""test_image.py - the container image and the compose stack, for real (make test-image).

  python3 tests/image/test_image.py [--repo .] [--build build] [--golden tests/golden/cases]

1. A Docker engine: `docker info`, else (as root) a dockerd started here, logging to
   BUILD/image/dockerd.log, with the overlay2 storage driver or, failing that, vfs; stopped at the
   end. A dockerd this test did not start is left running.
2. Base images: debian:12 and debian:12-slim, made locally when missing (no image registry is
   needed): `debootstrap --variant=minbase bookworm` into BUILD/image/rootfs from the Debian
   mirror of this machine's /etc/apt/sources.list*, `docker import`ed as debian:12 and tagged
   debian:12-slim too (one minbase tree serves both). Skipped when the images exist.
3. Both images built with the classic builder and `--network host` (apt inside the build uses the
   base image's sources): docker/Dockerfile (its build stage runs make test) and docker/nginx,
   tagged as docker/compose.yaml names them.
4. One seglossd container (read-only root, all capabilities dropped, as compose runs it)
   published on a free loopback port: runs as uid 10001, cannot write its root filesystem, its
   HEALTHCHECK turns healthy; the golden runner (build/tests/golden --url) and e2e's functional
   checks (build/tests/e2e --url) pass against it; `docker stop` during a long request drains: the
   request gets 200 with its hand-known values and the container exits 0.
5. The compose stack (docker-compose, project segloss-imagetest, nginx on a free loopback port
   through NGINX_PORT): 3 healthy replicas behind nginx; the golden runner through nginx; golden
   load through nginx while the replica running a long request is `docker kill`ed: every request
   answers 200 with the golden values and nginx resent the cut-off one; `docker-compose down -v`
   removes every container, network and volume of the project. Before the kill, the challenge
   checks through nginx: the replicas share the postgres service (docker/postgres, the same
   Debian base) and the blobs volume; two participants send 6 submissions each at once with a
   quota of 2 a day (exactly 2 x 201 and 4 x 429 each), each replica asked directly scores a
   submission against the reference another one stored, and every replica and nginx serve the
   same leaderboard with the Dice worked out in tests/challenges/test_challenges.py. The secrets
   (database password, admin token) are files made in BUILD/image/secrets.

Every docker call has a timeout, so a broken engine fails the test instead of hanging it. Prints
"ok"/"FAIL" lines and closes with "image: N passed, M failed"; exits 1 when anything failed. The
images stay (the next run is warm); BUILD/image holds the logs.
"""

import argparse
import base64
import glob
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib

import numpy as np  # python3-numpy (the challenge checks' hand-worked masks)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cluster"))
from tally import Tally  # noqa: E402  (tests/tally.py)
import test_cluster as tc  # noqa: E402  (the golden cases and their comparison)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "challenges"))
import test_challenges as chal  # noqa: E402  (hand-worked Dice of the squares challenge)

T = Tally("image")

DOCKERD_START_TIMEOUT = 60  # seconds for a dockerd started here to answer
DOCKER_TIMEOUT = 60  # seconds for a small docker command (inspect, run, kill, rm)
DEBOOTSTRAP_TIMEOUT = 1200
IMPORT_TIMEOUT = 600
BUILD_TIMEOUT = 2400  # the seglossd image build runs the whole make test
HEALTHY_TIMEOUT = 90  # HEALTHCHECK every 10 s: healthy after the first one or two
SUITE_TIMEOUT = 900  # golden or e2e against a container
STOP_TIMEOUT = 40  # docker stop -t: seglossd drains for SEGLOSS_DRAIN_SECONDS (30) at most
COMPOSE_TIMEOUT = 300  # docker-compose up / down
REQUEST_TIMEOUT = 120  # one request through nginx or to a container
PROJECT = "segloss-imagetest"
CONTAINER = "segloss-imagetest-seglossd"
PKG_MIRROR_DEFAULT = "http://deb.debian.org/debian"
STORAGE_DRIVERS = ("overlay2", "vfs")  # for a dockerd started here, the first that comes up


def run(argv, timeout, log=None, env=None, input_bytes=None):
    """Runs argv; returns (returncode, output text). A timeout is returncode -9 with a note;
    output goes to log (appended) instead when log is a path."""
    t0 = time.monotonic()
    try:
        if log:
            with open(log, "ab") as f:
                f.write(f"\n$ {' '.join(argv)}\n".encode())
                f.flush()
                p = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, timeout=timeout,
                                   env=env, input=input_bytes,
                                   stdin=None if input_bytes is not None else subprocess.DEVNULL)
            out = ""
        else:
            p = subprocess.run(argv, capture_output=True, timeout=timeout, env=env,
                               input=input_bytes,
                               stdin=None if input_bytes is not None else subprocess.DEVNULL)
            out = (p.stdout + p.stderr).decode(errors="replace")
        return p.returncode, out
    except subprocess.TimeoutExpired:
        return -9, f"{argv[0]} {argv[1] if len(argv) > 1 else ''}: no answer in {timeout} s " \
                   f"(after {time.monotonic() - t0:.0f} s)"
    except OSError as e:
        return -1, f"{argv[0]}: {e}"


def docker(*args, timeout=DOCKER_TIMEOUT):
    return run(["docker", *args], timeout)


def tail_file(path, n=25):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("       | " + ln for ln in lines[-n:])


# ---- 1. the engine ---------------------------------------------------------------------------


class Engine:
    """The Docker engine: one that runs already, or a dockerd started (and stopped) here."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None
        self.log = os.path.join(workdir, "dockerd.log")

    def answers(self):
        rc, out = docker("info", "--format", "{{.ServerVersion}} {{.Driver}}", timeout=20)
        return out.strip() if rc == 0 else None

    def up(self):
        info = self.answers()
        if info:
            T.info(f"a running Docker engine answers ({info}); it is left running")
            return True
        if os.geteuid() != 0:
            T.check(False, "a Docker engine", "docker info fails and only root can start dockerd")
            return False
        for driver in STORAGE_DRIVERS:
            with open(self.log, "ab") as f:
                f.write(f"\n==== dockerd --storage-driver {driver}\n".encode())
                f.flush()
                self.proc = subprocess.Popen(
                    ["dockerd", "--storage-driver", driver], stdin=subprocess.DEVNULL, stdout=f,
                    stderr=subprocess.STDOUT, start_new_session=True)
            info = tc.wait_until(lambda: self.proc.poll() is not None or self.answers(),
                                 DOCKERD_START_TIMEOUT, 0.5)
            if isinstance(info, str):
                T.check(True, f"dockerd started here answers ({info}; log {self.log})")
                return True
            T.info(f"dockerd --storage-driver {driver} did not come up; log:\n"
                   + tail_file(self.log, 10))
            self.stop()
        T.check(False, "dockerd starts (overlay2 or vfs)", tail_file(self.log))
        return False

    def stop(self):
        """Stops the dockerd started here (none: nothing to do). Bounded."""
        if not self.proc:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None


# ---- 2. base images --------------------------------------------------------------------------


def apt_mirror():
    """The Debian archive URI of this machine's apt sources (one-line or deb822 format): the
    first one serving a main suite (a codename without -updates/-security), else
    deb.debian.org."""
    entries = []  # (uri, [suites])
    for path in sorted(glob.glob("/etc/apt/sources.list") +
                       glob.glob("/etc/apt/sources.list.d/*")):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = {}
                for ln in stanza.splitlines():
                    m = re.match(r"^([A-Za-z-]+):\s*(.*)$", ln)
                    if m and not ln.startswith("#"):
                        fields[m.group(1).lower()] = m.group(2).split()
                if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
                    entries += [(u, fields.get("suites", [])) for u in fields.get("uris", [])]
        elif path.endswith(".list") or path == "/etc/apt/sources.list":
            for ln in text.splitlines():
                ln = re.sub(r"\[[^]]*\]", " ", ln.split("#")[0]).split()
                if len(ln) >= 3 and ln[0] == "deb":
                    entries.append((ln[1], [ln[2]]))
    for uri, suites in entries:
        if uri.startswith(("http://", "https://")) and "security" not in uri and any(
                re.fullmatch(r"[a-z]+", s) for s in suites):
            return uri.rstrip("/")
    return PKG_MIRROR_DEFAULT


def image_exists(name):
    return docker("image", "inspect", name, "--format", "{{.Id}}")[0] == 0


def base_images(workdir):
    """debian:12 and debian:12-slim exist afterwards (made from one debootstrap when missing)."""
    want = ["debian:12", "debian:12-slim"]
    have = [n for n in want if image_exists(n)]
    if len(have) == len(want):
        T.check(True, "base images debian:12 and debian:12-slim exist (no debootstrap)")
        return True
    if not have:
        root = os.path.join(workdir, "rootfs")
        mirror = apt_mirror()
        log = os.path.join(workdir, "debootstrap.log")
        t0 = time.monotonic()
        shutil.rmtree(root, ignore_errors=True)
        rc, out = run(["debootstrap", "--variant=minbase", "bookworm", root, mirror],
                      DEBOOTSTRAP_TIMEOUT, log=log)
        if not T.check(rc == 0, f"debootstrap --variant=minbase bookworm from {mirror} "
                       f"({time.monotonic() - t0:.0f} s)", out or tail_file(log)):
            return False
        # docker import reads the tree as a tar stream; a minbase tree's apt sources name the
        # mirror it came from, which is what apt inside `docker build --network host` uses
        t0 = time.monotonic()
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
        try:
            imp = subprocess.run(["docker", "import", "--change", 'CMD ["bash"]', "-", want[0]],
                                 stdin=tar.stdout, capture_output=True, timeout=IMPORT_TIMEOUT)
            rc, out = imp.returncode, (imp.stdout + imp.stderr).decode(errors="replace")
        except subprocess.TimeoutExpired:
            rc, out = -9, f"docker import: no answer in {IMPORT_TIMEOUT} s"
        finally:
            tar.stdout.close()
            tar.kill()
            tar.wait()
        if not T.check(rc == 0, f"docker import of the tree as {want[0]} "
                       f"({time.monotonic() - t0:.0f} s)", out):
            return False
        shutil.rmtree(root, ignore_errors=True)
        have = [want[0]]
    for n in want:
        if n not in have:
            rc, out = docker("tag", have[0], n)
            T.check(rc == 0, f"{n} tagged from {have[0]}", out)
    return all(image_exists(n) for n in want)


# ---- 3. the images ---------------------------------------------------------------------------


def compose_images(repo):
    """{service: image name} of docker/compose.yaml."""
    import yaml  # python3-yaml (docker-compose depends on it)

    with open(os.path.join(repo, "docker", "compose.yaml")) as f:
        doc = yaml.safe_load(f)
    return {k: v.get("image") for k, v in doc.get("services", {}).items()}


def build_images(repo, workdir, images):
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    ok = True
    for svc, argv in (("seglossd", ["-f", os.path.join(repo, "docker", "Dockerfile"), repo]),
                      ("nginx", [os.path.join(repo, "docker", "nginx")]),
                      ("postgres", [os.path.join(repo, "docker", "postgres")])):
        log = os.path.join(workdir, f"build-{svc}.log")
        if os.path.exists(log):
            os.remove(log)
        t0 = time.monotonic()
        rc, out = run(["docker", "build", "--network", "host", "-t", images[svc], *argv],
                      BUILD_TIMEOUT, log=log, env=env)
        ok &= T.check(rc == 0, f"docker build {images[svc]} ({time.monotonic() - t0:.0f} s, "
                      f"log {log})", (out + "\n" + tail_file(log, 40)).strip())
        if svc == "seglossd":
            with open(log, errors="replace") as f:
                m = re.search(r"Sending build context to Docker daemon\s+([0-9.]+)\s*([kMG]?B)",
                              f.read())
            if m:
                size = float(m.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[m.group(2)]
                T.check(size < 32e6, f"the build context is {m.group(1)} {m.group(2)} "
                        "(.dockerignore keeps build/ and .git out)")
            else:
                T.skip("the build context's size (the builder did not print it)")
    return ok


# ---- 4. one container ------------------------------------------------------------------------


def inspect(name, fmt):
    rc, out = docker("inspect", "--format", fmt, name)
    return out.strip() if rc == 0 else None


def wait_healthy(names, timeout):
    """True once every container in names reports Health.Status healthy (bounded)."""
    def all_healthy():
        return all(inspect(n, "{{.State.Health.Status}}") == "healthy" for n in names)

    return tc.wait_until(all_healthy, timeout, 1.0)


def http_at(host, port, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def metrics_at(host, port):
    try:
        st, _, data = http_at(host, port, "GET", "/metrics", timeout=5)
    except (OSError, http.client.HTTPException):
        return None
    if st != 200:
        return None
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        r"(?m)^(segloss_[a-z_]+) ([0-9.eE+-]+)$", data.decode(errors="replace"))}


def long_case():
    """A long request whose answer is known by hand: 16 random 1024x1024 masks (the default
    --max-pixels) scored against themselves as labels. Identical masks: dice 1, Hausdorff 0,
    ASSD 0, NSD 1 (~2 s of surface distances on one core)."""
    n, side = 16, 1024
    bits = random.Random(7).randbytes(n * side * side).translate(bytes(v & 1 for v in range(256)))
    arr = {"format": "raw", "dtype": "uint8", "shape": [n, side, side], "compression": "zlib",
           "data": base64.b64encode(zlib.compress(bits, 6)).decode()}
    body = json.dumps({"prediction": arr, "target": arr, "prediction_type": "labels",
                       "metrics": ["dice", "hausdorff", "assd", "nsd"], "per_image": False})
    expect = {"status": 200, "images": n, "metrics": {
        "dice": {"mean": 1, "global": 1, "undefined": 0}, "hausdorff": {"mean": 0},
        "assd": {"mean": 0}, "nsd": {"mean": 1}}}
    return tc.Case("long_identical_16x1024x1024", body.encode(), expect, 0, 1e-9)


def suite(args, url, what, names):
    """Runs build/tests/golden or build/tests/e2e against url; one check on its summary line."""
    ok = True
    for prog in names:
        argv = [os.path.join(args.build, "tests", prog), "--golden", args.golden, "--url", url]
        t0 = time.monotonic()
        rc, out = run(argv, SUITE_TIMEOUT)
        m = re.findall(rf"(?m)^{prog}: (\d+) passed, (\d+) failed", out)
        bad = [ln for ln in out.splitlines() if ln.startswith("FAIL") or "failed" in ln]
        ok &= T.check(rc == 0 and m and m[-1][1] == "0" and int(m[-1][0]) > 0,
                      f"{prog} --url against {what}: "
                      f"{'%s passed, %s failed' % m[-1] if m else 'no summary'} "
                      f"({time.monotonic() - t0:.0f} s)", "\n".join(bad[:20]) or out[-2000:])
    return ok


def phase_container(args, images):
    image = images["seglossd"]
    docker("rm", "-f", CONTAINER)
    port = tc.free_port()
    rc, out = docker("run", "-d", "--name", CONTAINER, "--read-only", "--cap-drop", "ALL",
                     "--security-opt", "no-new-privileges:true", "-p", f"127.0.0.1:{port}:8080",
                     "-e", "SEGLOSS_THREADS=2", "-e", "SEGLOSS_QUEUE=64", image)
    if not T.check(rc == 0, f"docker run {image} (read-only, no capabilities) on "
                   f"127.0.0.1:{port}", out):
        return
    try:
        T.check(inspect(image, "{{.Config.User}}") == "10001:10001",
                "the image's USER is 10001:10001", inspect(image, "{{.Config.User}}"))
        up = wait_healthy([CONTAINER], HEALTHY_TIMEOUT)
        T.check(up, f"its HEALTHCHECK turns healthy within {HEALTHY_TIMEOUT} s",
                inspect(CONTAINER, "{{json .State.Health}}"))
        rc, out = docker("exec", CONTAINER, "cat", "/proc/1/status")
        uids = re.findall(r"(?m)^Uid:\s+(.*)$", out)
        T.check(rc == 0 and uids and uids[0].split() == ["10001"] * 4,
                "seglossd (pid 1) runs as uid 10001 (real, effective, saved, fs)", out[-300:])
        rc, out = docker("exec", CONTAINER, "sh", "-c", "echo x > /probe")
        T.check(rc != 0 and "Read-only file system" in out and
                inspect(CONTAINER, "{{.HostConfig.ReadonlyRootfs}}") == "true",
                "its root filesystem is read-only (writing /probe fails)", out)
        if not up:
            return
        suite(args, f"http://127.0.0.1:{port}", "the container", ["golden", "e2e"])
        phase_stop(port)
    finally:
        rc, out = docker("logs", "--tail", "5", CONTAINER)
        if T.failed:
            T.info("the container's last log lines:\n" + out)
        docker("rm", "-f", CONTAINER)


def phase_stop(port):
    """docker stop while a long request is computed: it completes with 200, the container exits
    with status 0 before docker's SIGKILL."""
    case = long_case()
    res = {}

    def send():
        res["problems"] = send_at(port, case, rid="image-drain")

    th = threading.Thread(target=send, daemon=True)
    th.start()
    busy = tc.wait_until(lambda: (metrics_at("127.0.0.1", port) or {}).get(
        "segloss_workers_busy", 0) >= 1, 30, 0.01)
    T.check(busy, "the long request is being computed (segloss_workers_busy, /metrics)")
    t0 = time.monotonic()
    rc, out = docker("stop", "-t", str(STOP_TIMEOUT), CONTAINER, timeout=STOP_TIMEOUT + 30)
    took = time.monotonic() - t0
    th.join(REQUEST_TIMEOUT)
    T.check(rc == 0, f"docker stop -t {STOP_TIMEOUT} returns ({took:.1f} s)", out)
    T.check("problems" in res and not res["problems"],
            "the request in flight at docker stop completes with 200 and its hand values "
            "(identical masks: dice 1, Hausdorff 0, ASSD 0, NSD 1)",
            "; ".join(res.get("problems", ["no answer"])))
    code = inspect(CONTAINER, "{{.State.ExitCode}}")
    T.check(code == "0" and took < STOP_TIMEOUT,
            "seglossd drained and exited with status 0 (not SIGKILLed at the timeout)",
            f"exit code {code} after {took:.1f} s")


def send_at(port, case, host="127.0.0.1", rid="image"):
    try:
        st, h, data = http_at(host, port, "POST", "/v1/score", case.body,
                              {"Content-Type": "application/json", "X-Request-ID": rid})
    except (OSError, http.client.HTTPException) as e:
        return [f"{type(e).__name__}: {e}"]
    return case.mismatches(st, h, data)


# ---- 5. the compose stack --------------------------------------------------------------------


class Stack:
    def __init__(self, repo, workdir):
        self.file = os.path.join(repo, "docker", "compose.yaml")
        self.port = tc.free_port()
        # the secrets compose mounts: files only this user can reach on the host (a 0700
        # folder), readable inside the containers by seglossd's and postgres's users
        sec = os.path.join(workdir, "secrets")
        os.makedirs(sec, mode=0o700, exist_ok=True)
        os.chmod(sec, 0o700)
        self.admin = os.urandom(32).hex()
        files = {}
        for name, value in (("db_password", os.urandom(24).hex()), ("admin_token", self.admin)):
            files[name] = os.path.join(sec, name)
            with open(files[name], "w") as f:
                f.write(value + "\n")
            os.chmod(files[name], 0o644)
        self.env = dict(os.environ, NGINX_PORT=str(self.port), COMPOSE_PROJECT_NAME=PROJECT,
                        DB_PASSWORD_FILE=files["db_password"],
                        ADMIN_TOKEN_FILE=files["admin_token"])
        self.log = os.path.join(workdir, "compose.log")
        self.up_ran = False

    def compose(self, *args, timeout=COMPOSE_TIMEOUT):
        return run(["docker-compose", "-f", self.file, "-p", PROJECT, *args], timeout,
                   log=self.log, env=self.env)

    def containers(self, service=None, all_states=True):
        flt = ["--filter", f"label=com.docker.compose.project={PROJECT}"]
        if service:
            flt += ["--filter", f"label=com.docker.compose.service={service}"]
        rc, out = docker("ps", *(["-a"] if all_states else []), "-q", "--no-trunc", *flt)
        return out.split() if rc == 0 else []

    def leftovers(self):
        lbl = f"label=com.docker.compose.project={PROJECT}"
        return {"containers": self.containers(),
                "networks": docker("network", "ls", "-q", "--filter", lbl)[1].split(),
                "volumes": docker("volume", "ls", "-q", "--filter", lbl)[1].split()}

    def down(self):
        rc, out = self.compose("down", "-v", "--remove-orphans", timeout=COMPOSE_TIMEOUT)
        return rc, out


def nginx_log(name):
    rc, out = docker("logs", name)
    entries = {}
    for ln in out.splitlines():
        if ln.startswith("{"):
            try:
                e = json.loads(ln)
            except ValueError:
                continue
            entries[e.get("id")] = e
    return entries


def phase_compose(args, repo, workdir):
    st = Stack(repo, workdir)
    if os.path.exists(st.log):
        os.remove(st.log)
    if st.containers():
        st.down()  # a run that was cut off left its stack
    try:
        t0 = time.monotonic()
        st.up_ran = True
        rc, out = st.compose("up", "-d", "--no-build")
        if not T.check(rc == 0, f"docker-compose -p {PROJECT} up -d (nginx on "
                       f"127.0.0.1:{st.port}, {time.monotonic() - t0:.0f} s)",
                       out or tail_file(st.log)):
            return
        reps = st.containers("seglossd")
        ok = T.check(len(reps) == 3, f"{len(reps)} seglossd replicas (deploy.replicas: 3)")
        ok &= T.check(wait_healthy(reps, HEALTHY_TIMEOUT), "the replicas are healthy",
                      [inspect(c, "{{.State.Health.Status}}") for c in reps])
        ng = st.containers("nginx")
        ok &= T.check(len(ng) == 1 and inspect(ng[0], "{{.State.Running}}") == "true",
                      "nginx runs")
        ready = tc.wait_until(lambda: _status(st.port, "/readyz") == 200, 30, 0.2)
        ok &= T.check(ready, f"GET /readyz through nginx on 127.0.0.1:{st.port} is 200")
        if not ok:
            return
        suite(args, f"http://127.0.0.1:{st.port}", "nginx in front of the replicas", ["golden"])
        phase_challenges(st, reps)
        phase_kill(st, reps, ng[0], args)
    finally:
        if st.up_ran:
            rc, out = st.down()
            T.check(rc == 0, "docker-compose down -v", out or tail_file(st.log))
            left = tc.wait_until(lambda: not any(st.leftovers().values()), 30, 0.5)
            T.check(left, "no container, network or volume of the project is left",
                    st.leftovers())


def _status(port, path):
    try:
        return http_at("127.0.0.1", port, "GET", path, timeout=5)[0]
    except (OSError, http.client.HTTPException):
        return None


def phase_challenges(st, reps):
    """The challenge checks through nginx and on each replica (CHALLENGES.md "Replicas")."""
    url = f"http://127.0.0.1:{st.port}"
    ips = [inspect(c, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}") for c in reps]
    direct = [f"http://{ip}:8080" for ip in ips if ip]
    pg = st.containers("postgres")
    T.check(len(pg) == 1 and wait_healthy(pg, HEALTHY_TIMEOUT), "the postgres service is healthy "
            "(pg_isready)")
    cfg = dict(chal.CONFIG, quota={"per_day": 2, "total": None, "concurrent": 8})
    a = chal.call(url, "PUT", "/v1/challenges/sq", cfg, st.admin)
    arr = np.stack([chal.REF[i] for i in chal.IDS])
    b = chal.call(url, "PUT", "/v1/challenges/sq/reference",
                  chal.stacked(arr, chal.IDS, "target"), st.admin)
    if not T.check(a.status == 201 and b.status in (200, 201), "a challenge and its reference "
                   "through nginx (the admin token from the secret)", a.raw[:200] + b.raw[:200]):
        return
    tokens = {}
    # one participant per replica asked directly: 2 a day each would not cover 3
    for p in ("team-0", "team-1", "direct-0", "direct-1", "direct-2"):
        r = chal.call(url, "POST", "/v1/challenges/sq/participants", {"name": p}, st.admin)
        tokens[p] = r.json["token"] if r.status == 201 else None
    body = {k: chal.stacked(np.stack([chal.shifted(k)[i] for i in chal.IDS]).astype(np.uint8),
                            chal.IDS, "prediction") for k in (0, 1)}
    out = {0: [], 1: []}
    lock = threading.Lock()

    def send(k):
        r = chal.call(url, "POST", "/v1/challenges/sq/submissions", body[k],
                      tokens[f"team-{k}"], timeout=REQUEST_TIMEOUT)
        with lock:
            out[k].append(r.status)
    th = [threading.Thread(target=send, args=(k,)) for k in (0, 1) for _ in range(6)]
    for x in th:
        x.start()
    for x in th:
        x.join(3 * REQUEST_TIMEOUT)
    for k in (0, 1):
        T.check(sorted(out[k]) == [201] * 2 + [429] * 4, f"team-{k}: 6 submissions at once "
                "through nginx with 2 a day: exactly 2 x 201 and 4 x 429", sorted(out[k]))
    # each replica scores against the reference blob another one wrote (the shared volume)
    scored = []
    for i, u in enumerate(direct):
        r = chal.call(u, "POST", "/v1/challenges/sq/submissions", body[1],
                      tokens[f"direct-{i}"], timeout=REQUEST_TIMEOUT)
        scored.append((r.status, (r.json or {}).get("public", {}).get("metrics.dice.mean")))
    want1 = chal.expected_mean(chal.shifted(1), chal.PUBLIC)
    T.check(len(direct) == 3 and all(st == 201 and chal.close(v, want1) for st, v in scored),
            f"each of the {len(direct)} replicas, asked directly, scores a submission against "
            f"the shared reference (Dice {want1})", scored)
    boards = []
    for u in direct + [url] * 3:
        r = chal.call(u, "GET", "/v1/challenges/sq/leaderboard")
        boards.append([(x["participant"], x["scores"]) for x in r.json["rows"]]
                      if r.status == 200 else None)
    want = {"team-0": chal.expected_mean(chal.shifted(0), chal.PUBLIC),
            "team-1": chal.expected_mean(chal.shifted(1), chal.PUBLIC),
            **{f"direct-{i}": chal.expected_mean(chal.shifted(1), chal.PUBLIC)
               for i in range(len(direct))}}
    got = {p: sc["metrics.dice.mean"] for p, sc in boards[0] or []}
    T.check(boards[0] and boards.count(boards[0]) == len(boards) and set(got) == set(want) and
            all(chal.close(got[p], v) for p, v in want.items()),
            "every replica and nginx serve the same leaderboard, Dice worked by hand",
            repr(boards)[:400])


def phase_kill(st, reps, nginx, args):
    """Golden load through nginx; the replica computing a long request is docker-killed with the
    load going on. Every answer must be 200 with the golden values."""
    cases = tc.load_cases(args.golden)
    heavy = long_case()
    ips = {c: inspect(c, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}") for c in reps}
    order = [cases[i % len(cases)] for i in range(args.requests)]
    random.Random(11).shuffle(order)
    results, lock, nxt, in_flight = [], threading.Lock(), [0], [0]
    go = threading.Event()
    go.set()

    def worker(_w):
        while True:
            go.wait(REQUEST_TIMEOUT)
            with lock:
                i = nxt[0]
                nxt[0] += 1
                in_flight[0] += 1
            if i >= len(order):
                with lock:
                    in_flight[0] -= 1
                return
            r = tc.Result(order[i].id, f"image-load-{i}")
            r.problems = send_at(st.port, order[i], rid=r.rid)
            with lock:
                results.append(r)
                in_flight[0] -= 1

    t0 = time.monotonic()
    threads = tc.run_workers(args.concurrency, worker)
    tc.wait_until(lambda: len(results) >= len(order) // 3, REQUEST_TIMEOUT, 0.01)
    # the light load pauses while the replica running the long request is found (a light one
    # caught computing could be taken for it), then goes on before the kill
    go.clear()
    T.check(tc.wait_until(lambda: in_flight[0] == 0, REQUEST_TIMEOUT, 0.001),
            "the light load pauses (its requests in flight answered)")
    heavy_res = tc.Result(heavy.id, "image-heavy-kill")
    ht = tc.run_workers(1, lambda _i: setattr(heavy_res, "problems",
                                              send_at(st.port, heavy, rid=heavy_res.rid)))

    def busy():
        for c, ip in ips.items():
            m = metrics_at(ip, 8080) if ip else None
            if m and m.get("segloss_workers_busy", 0) >= 1:
                return c
        return None

    victim = tc.wait_until(busy, 30, 0.01)
    go.set()
    T.check(victim is not None, "a replica is computing the long request (its /metrics, "
            "reached at the container's address)", ips)
    victim = victim or reps[0]
    tc.wait_until(lambda: in_flight[0] >= 2 or nxt[0] >= len(order), 2.0, 0.001)
    with lock:
        when = f"{in_flight[0]} golden requests and the long one in flight, {len(results)} answered"
    rc, out = docker("kill", victim)
    T.check(rc == 0, f"docker kill {victim[:12]} ({when})", out)
    finished = tc.join_all(threads + ht, 3 * REQUEST_TIMEOUT)
    T.check(finished, f"the load finished within {3 * REQUEST_TIMEOUT} s")
    bad = [r for r in results + [heavy_res] if r.problems]
    for r in bad[:8]:
        T.info(f"{r.rid} ({r.what}): " + "; ".join(r.problems[:3]))
    T.check(len(results) == len(order) and not bad,
            f"{len(results) + 1 - len(bad)}/{len(results) + 1} requests through nginx answered "
            f"200 with the golden (and the long one's hand) values, {args.concurrency} at a time, "
            f"{time.monotonic() - t0:.1f} s")
    e = nginx_log(nginx).get(heavy_res.rid, {})
    tried = [a.strip() for a in e.get("upstream", "").split(",") if a.strip()]
    T.check(len(tried) >= 2 and tried[0].startswith(f"{ips.get(victim)}:") and
            e.get("status") == 200,
            "nginx resent the long request, cut off by the kill, to another replica",
            f"upstream {e.get('upstream')!r}, upstream_status {e.get('upstream_status')!r}")
    T.info(f"after docker kill the victim's state is {inspect(victim, '{{.State.Status}}')} "
           "(restart: unless-stopped; compose down removes it either way)")


# ---- main ------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    repo_default = os.path.normpath(os.path.join(HERE, "..", ".."))
    ap.add_argument("--repo", default=repo_default)
    ap.add_argument("--build", default=None, help="build folder (build)")
    ap.add_argument("--golden", default=None, help="golden cases (tests/golden/cases)")
    ap.add_argument("--requests", type=int, default=240)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()
    repo = os.path.abspath(args.repo)
    args.build = os.path.abspath(args.build or os.path.join(repo, "build"))
    args.golden = os.path.abspath(args.golden or os.path.join(repo, "tests", "golden", "cases"))
    workdir = os.path.join(args.build, "image")
    os.makedirs(workdir, exist_ok=True)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    t_start = time.monotonic()
    engine = Engine(workdir)
    try:
        up = engine.up()
        if up:
            ver = docker("version", "--format", "client {{.Client.Version}}, engine "
                         "{{.Server.Version}}")[1].strip()
            comp = run(["docker-compose", "version", "--short"], 30)[1].strip()
            T.info(f"docker {ver}; docker-compose {comp}")
        if up and base_images(workdir):
            images = compose_images(repo)
            T.check(images.get("seglossd") and images.get("nginx"),
                    "docker/compose.yaml names the seglossd and nginx images", images)
            if build_images(repo, workdir, images):
                phase_container(args, images)
                phase_compose(args, repo, workdir)
    except Exception as e:  # noqa: BLE001 - any error is a failed check, then cleanup
        T.check(False, "the test ran to its end", f"{type(e).__name__}: {e}")
    finally:
        engine.stop()
    T.info(f"{time.monotonic() - t_start:.0f} s")
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
