#!/usr/bin/env python3
"""check_deploy.py - checks the deployment files against each other and against seglossd.

  python3 tests/cluster/check_deploy.py [--repo .] [--build build]

- server/config.c's table of flags: every SEGLOSS_* variable set in docker/Dockerfile,
  docker/compose.yaml and docker/k8s/*.yaml is one seglossd knows, with a value in its range;
- docker/Dockerfile (its instructions parsed): Debian 12 stages, the build stage runs make test
  with the golden cases, the runtime stage installs the packages of the libraries the binaries
  link (readelf + dpkg -S) and no -dev package, runs as a non-root user, HEALTHCHECK, EXPOSE 8080,
  ENV SEGLOSS_BIND=0.0.0.0; docker/nginx/Dockerfile on Debian 12's nginx;
- docker/compose.yaml and docker/k8s/*.yaml parsed (python3-yaml; yamllint when installed):
  probes, resources, grace periods against SEGLOSS_DRAIN_SECONDS + preStop, the memory limit
  against the sizing formula of docker/k8s/README.md, selectors, ports; compose.yaml with only
  the top-level keys docker-compose 1.29 accepts and nginx on 127.0.0.1:${NGINX_PORT:-8080};
- .dockerignore at the repository root (the classic builder's) keeps .git and build/ out;
- docker/nginx/segloss.conf: the directives the deployment relies on, its numbers against the
  flags, and `nginx -t` on it (with the test's files, and inside Debian's stock nginx.conf as in
  the container image).

Prints "ok"/"FAIL" lines and closes with "deploy: N passed, M failed"; exits 1 on a failure.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tally import Tally  # noqa: E402  (tests/tally.py)

MIB = 1 << 20
# the sizing formula (docker/k8s/README.md): memory >= max-inflight-mb
#   + threads x (max-body-mb + ARRAYS x 8 bytes x max-pixels) + BASE_MIB
ARRAYS = 4
BASE_MIB = 128


T = Tally("deploy")


# ---- seglossd's flags ------------------------------------------------------------------------


def load_flags(repo):
    """{SEGLOSS_X: (flag, min, max, default, text)} from server/config.c (min/max None when
    symbolic; text: a T_TEXT setting, a path or a URI)."""
    with open(os.path.join(repo, "server", "config.c")) as f:
        src = f.read()
    flags = {}
    # one row per setting: {"--flag", "SEGLOSS_X", CFG(field), T_TYPE, min, max, default}
    for m in re.finditer(r'\{"(--[a-z-]+)", "(SEGLOSS_\w+)", CFG\(\w+\), (T_\w+),\s*([^,]+),'
                         r'\s*([^,]+),\s*([^}]+)\}', src):
        flag, env, typ, lo, hi, d = (m.group(i).strip() for i in range(1, 7))
        if env == "SEGLOSS_BIND":
            d = "127.0.0.1"  # text, set apart from the numbers' defaults
        flags[env] = (flag, int(lo) if lo.isdigit() else None, int(hi) if hi.isdigit() else None,
                      d, typ == "T_TEXT")
    return flags


def check_env(flags, env, where):
    """Every SEGLOSS_* variable known, numbers in range; returns the effective settings."""
    bad = []
    for k, v in env.items():
        if not k.startswith("SEGLOSS_"):
            continue
        v = str(v)
        if k not in flags:
            bad.append(f"{k} is not a seglossd variable")
            continue
        _flag, lo, hi, _d, text = flags[k]
        if k == "SEGLOSS_BIND":
            if not re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]+", v):
                bad.append(f"{k}={v} is not an address literal")
        elif text and re.search(r"_(FILE|DIR)$", k):
            if not v.startswith("/"):
                bad.append(f"{k}={v} is not an absolute path")
        elif text:
            if not v:
                bad.append(f"{k} is empty")
        elif not v.isdigit():
            bad.append(f"{k}={v} is not a decimal")
        elif (lo is not None and int(v) < lo) or (hi is not None and int(v) > hi):
            bad.append(f"{k}={v} is out of [{lo}, {hi}]")
    seg = sorted(k for k in env if k.startswith("SEGLOSS_"))
    T.check(seg and not bad, f"{where}: {len(seg)} SEGLOSS_* variables, all known to "
            "server/config.c and in range", "; ".join(bad))
    eff = {k: d for k, (_f, _lo, _hi, d, _t) in flags.items()}
    eff.update({k: str(v) for k, v in env.items() if k.startswith("SEGLOSS_")})
    return eff


def need_mib(eff, ncpu_default):
    threads = int(eff["SEGLOSS_THREADS"]) or ncpu_default
    pixels_mib = ARRAYS * 8 * int(eff["SEGLOSS_MAX_PIXELS"]) / MIB
    return (int(eff["SEGLOSS_MAX_INFLIGHT_MB"]) + threads * (int(eff["SEGLOSS_MAX_BODY_MB"]) +
                                                             pixels_mib) + BASE_MIB)


def mem_mib(q, compose=False):
    """A Kubernetes quantity (M = 10^6, Mi = 2^20) or a compose byte value (binary units in
    either case) in MiB."""
    m = re.fullmatch(r"([0-9.]+)\s*([A-Za-z]*)", str(q).strip())
    if not m:
        return None
    n, u = float(m.group(1)), m.group(2)
    scale = {"": 1 / MIB, "b": 1 / MIB, "k": 1 / 1024, "kb": 1 / 1024, "m": 1, "mb": 1,
             "g": 1024, "gb": 1024, "Ki": 1 / 1024, "Mi": 1, "Gi": 1024,
             "K": 1000 / MIB, "M": 1e6 / MIB, "G": 1e9 / MIB}
    if compose:
        u = u.lower()
    return n * scale[u] if u in scale else None


def seconds(v):
    m = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(v))
    if isinstance(v, int):
        return v
    return int(m.group(1) or 0) * 60 + int(m.group(2) or 0) if m and v else None


# ---- Dockerfiles -----------------------------------------------------------------------------


def parse_dockerfile(path):
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    out, cur = [], ""
    with open(path) as f:
        for line in f:
            s = line.rstrip("\n")
            if not cur and (not s.strip() or s.lstrip().startswith("#")):
                continue
            if cur and s.lstrip().startswith("#"):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            cur += s
            parts = cur.strip().split(None, 1)
            out.append((parts[0].upper(), parts[1] if len(parts) > 1 else ""))
            cur = ""
    return out


def stages(instrs):
    st = []
    for ins, arg in instrs:
        if ins == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", arg, re.I)
            st.append({"from": m.group(1), "name": m.group(2), "instrs": []})
        elif st:
            st[-1]["instrs"].append((ins, arg))
    return st


def env_pairs(arg):
    return dict(re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", arg))


def apt_packages(stage):
    pk = set()
    for ins, arg in stage["instrs"]:
        if ins == "RUN":
            for m in re.finditer(r"apt-get install ([^&;]*)", arg):
                pk.update(w for w in m.group(1).split() if not w.startswith("-"))
    return pk


def linked_packages(binaries):
    """Debian packages of the libraries the binaries name in DT_NEEDED."""
    pk, unknown = set(), []
    for b in binaries:
        needed = re.findall(r"Shared library: \[([^\]]+)\]",
                            subprocess.run(["readelf", "-d", b], capture_output=True,
                                           text=True).stdout)
        ldd = subprocess.run(["ldd", b], capture_output=True, text=True).stdout
        paths = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        for lib in needed:
            p = paths.get(lib)
            cands = [p, os.path.realpath(p)] if p else []
            cands += [c.replace("/usr/lib/", "/lib/", 1) for c in cands if c.startswith("/usr/")]
            cands += ["/usr" + c for c in cands if c.startswith("/lib/")]
            owner = None
            for c in cands:
                r = subprocess.run(["dpkg", "-S", c], capture_output=True, text=True)
                if r.returncode == 0:
                    owner = r.stdout.split(":")[0].strip()
                    break
            if owner:
                pk.add(owner)
            else:
                unknown.append(lib)
    return pk, unknown


def check_dockerfile(repo, build, flags):
    path = os.path.join(repo, "docker", "Dockerfile")
    st = stages(parse_dockerfile(path))
    T.check(len(st) >= 2 and all(re.fullmatch(r"debian:12(-slim)?", s["from"]) or
                                 s["from"] in [x["name"] for x in st] for s in st),
            f"Dockerfile: {len(st)} stages, all on debian:12", [s["from"] for s in st])
    if len(st) < 2:
        return {}
    bst, rst = st[0], st[-1]
    brun = " ".join(a for i, a in bst["instrs"] if i == "RUN")
    T.check(re.search(r"\bmake test\b", brun), "Dockerfile: the build stage runs make test")
    T.check(any(i == "COPY" and a.split()[:1] == ["."] for i, a in bst["instrs"]),
            "Dockerfile: the build stage copies the repository, golden cases included (COPY . ...)")
    with open(path) as f:
        T.check(not f.readline().startswith("# syntax="),
                "Dockerfile: no '# syntax=' line (it would fetch a frontend from a registry)")
    T.check("make install" in brun, "Dockerfile: the build stage runs make install")
    with open(os.path.join(repo, ".ci", "deps.sh")) as f:
        deps = re.search(r'SEGLOSS_PKGS:-([^}"]*)', f.read()).group(1).split()
    # the build stage has no browser: SEGLOSS_NO_BROWSER=1 keeps make test from installing
    # chromium and skips the browser tests (tests/run.sh)
    benv = {}
    for i, a in bst["instrs"]:
        if i == "ENV":
            benv.update({k: v.strip('"') for k, v in env_pairs(a).items()})
    T.check(benv.get("SEGLOSS_NO_BROWSER") == "1" and "SEGLOSS_PKGS" not in benv,
            "Dockerfile: the build stage sets SEGLOSS_NO_BROWSER=1 (no chromium to test with) "
            "and keeps .ci/deps.sh's package list", repr(benv))
    bpk = apt_packages(bst)
    T.check(set(deps) <= bpk and "python3-numpy" in bpk,
            "Dockerfile: the build stage installs .ci/deps.sh's packages and python3-numpy",
            " ".join(sorted(set(deps + ["python3-numpy"]) - bpk)))

    rpk = apt_packages(rst)
    T.check(rpk and not any(p.endswith("-dev") or p in ("build-essential", "gcc", "make")
                            for p in rpk),
            f"Dockerfile: the runtime stage installs only runtime libraries ({' '.join(sorted(rpk))})")
    bins = [os.path.join(build, b) for b in ("seglossd", "segloss")
            if os.access(os.path.join(build, b), os.X_OK)]
    if bins and shutil.which("readelf") and shutil.which("dpkg"):
        linked, unknown = linked_packages(bins)
        base = {"libc6", "libgcc-s1", "libstdc++6"}  # in debian:12-slim already
        missing = sorted(linked - base - rpk)
        T.check(not missing and not unknown,
                f"Dockerfile: the runtime stage installs the packages of every library "
                f"{' and '.join(os.path.basename(b) for b in bins)} link",
                f"missing {missing} {unknown}")
    else:
        T.skip("runtime libraries against the binaries (no build or no readelf/dpkg)")
    copies = [a for i, a in rst["instrs"] if i == "COPY"]
    T.check(copies and all(re.search(r"--from=" + re.escape(bst["name"] or "0"), a)
                           for a in copies),
            "Dockerfile: the runtime stage copies only from the build stage")
    users = [a.strip() for i, a in rst["instrs"] if i == "USER"]
    T.check(users and users[-1].split(":")[0] not in ("root", "0"),
            f"Dockerfile: the runtime stage runs as a non-root user ({users[-1] if users else '-'})")
    T.check(users and users[-1].split(":")[0].isdigit(),
            "Dockerfile: the user is numeric (Kubernetes runAsNonRoot can verify it)")
    hc = [a for i, a in rst["instrs"] if i == "HEALTHCHECK"]
    T.check(hc and re.search(r"segloss\W+health|/healthz", hc[-1]) and ":8080" in hc[-1],
            "Dockerfile: HEALTHCHECK asks /healthz on port 8080 (segloss health)", hc)
    T.check(any(i == "EXPOSE" and "8080" in a.split() for i, a in rst["instrs"]),
            "Dockerfile: EXPOSE 8080")
    env = {}
    for i, a in rst["instrs"]:
        if i == "ENV":
            env.update({k: v.strip('"') for k, v in env_pairs(a).items()})
    T.check(env.get("SEGLOSS_BIND") == "0.0.0.0", "Dockerfile: ENV SEGLOSS_BIND=0.0.0.0")
    eff = check_env(flags, env, "Dockerfile")
    T.check(eff["SEGLOSS_PORT"] == "8080", "Dockerfile: seglossd listens on 8080")
    ep = [a for i, a in rst["instrs"] if i == "ENTRYPOINT"]
    T.check(ep and "seglossd" in ep[-1], "Dockerfile: ENTRYPOINT is seglossd")
    T.check(any(i == "STOPSIGNAL" and a.strip() in ("SIGTERM", "15") for i, a in rst["instrs"]),
            "Dockerfile: STOPSIGNAL SIGTERM (the drain)")

    ng = stages(parse_dockerfile(os.path.join(repo, "docker", "nginx", "Dockerfile")))
    T.check(ng and re.fullmatch(r"debian:12(-slim)?", ng[-1]["from"]) and
            "nginx" in apt_packages(ng[-1]) and
            any(i == "COPY" and "segloss.conf" in a for i, a in ng[-1]["instrs"]),
            "docker/nginx/Dockerfile: Debian 12's nginx with segloss.conf")
    return eff


# ---- nginx -----------------------------------------------------------------------------------


def nginx_directives(text):
    """{name: [args...]} of the simple directives, whatever block they are in (comments
    dropped)."""
    out = {}
    text = re.sub(r"#[^\n']*", "", text)
    for m in re.finditer(r"(?m)^\s*([a-z_]+)\s+([^;{]*);", text):
        out.setdefault(m.group(1), []).append(m.group(2).strip())
    return out


def check_nginx(repo, eff_list):
    d = os.path.join(repo, "docker", "nginx")
    with open(os.path.join(d, "segloss.conf")) as f:
        conf = f.read()
    dirs = nginx_directives(conf)

    def has(name, pred=lambda a: True):
        return any(pred(a) for a in dirs.get(name, []))

    nu = dirs.get("proxy_next_upstream", [""])[0].split()
    T.check({"error", "timeout", "http_503", "non_idempotent"} <= set(nu),
            "nginx: proxy_next_upstream error timeout http_503 non_idempotent", nu)
    loc = re.search(r"(?s)location\s+/v1/challenges\s*\{(.*?)\}", re.sub(r"#[^\n]*", "", conf))
    cu = (nginx_directives(loc.group(1)).get("proxy_next_upstream", [""])[0].split()
          if loc else [])
    T.check(loc and "error" in cu and "non_idempotent" not in cu,
            "nginx: /v1/challenges tries the next replica on a refused connection but never "
            "resends a request a replica received (no non_idempotent: a stored submission would "
            "count twice)", cu)
    T.check(has("proxy_next_upstream_tries", lambda a: int(a) >= 2),
            "nginx: proxy_next_upstream_tries >= 2")
    T.check("least_conn" in re.sub(r"#[^\n]*", "", conf) and has("keepalive") and
            has("zone"), "nginx: upstream with least_conn, keepalive and a shared zone")
    with open(os.path.join(d, "segloss-upstream.conf")) as f:
        up = [ln.split("#")[0].strip() for ln in f if ln.split("#")[0].strip()]
    T.check(len(up) == 1 and re.fullmatch(r"server seglossd:8080 .*max_fails=\d+ .*"
                                          r"fail_timeout=\d+s;", up[0]),
            "nginx: the compose upstream is the seglossd service on 8080 with max_fails and "
            "fail_timeout (passive health checks)", up)
    T.check(has("proxy_http_version", lambda a: a == "1.1") and
            has("proxy_set_header", lambda a: re.fullmatch(r'Connection\s+""', a)),
            'nginx: proxy_http_version 1.1 and Connection "" (kept-alive upstream connections)')
    T.check(has("proxy_request_buffering", lambda a: a == "on"),
            "nginx: proxy_request_buffering on (a body can be resent to another replica)")
    T.check(has("gzip", lambda a: a == "off") and
            has("proxy_set_header", lambda a: a.startswith("Accept-Encoding")),
            "nginx: gzip off, Accept-Encoding passed on (seglossd compresses)")
    T.check(has("proxy_set_header", lambda a: a.startswith("X-Request-ID")) and
            "$request_id" in conf, "nginx: X-Request-ID passed on or made up ($request_id)")
    where = ", ".join(w for _e, w in eff_list)
    body = {int(e["SEGLOSS_MAX_BODY_MB"]) for e, _w in eff_list}
    idle = {int(e["SEGLOSS_IDLE_TIMEOUT"]) for e, _w in eff_list}
    T.check(len(body) == 1 and has("client_max_body_size", lambda a: a == f"{min(body)}m"),
            f"nginx: client_max_body_size = SEGLOSS_MAX_BODY_MB ({where}: {sorted(body)})",
            dirs.get("client_max_body_size"))
    T.check(len(idle) == 1 and has("client_body_timeout", lambda a: seconds(a) == min(idle)) and
            has("proxy_send_timeout", lambda a: seconds(a) == min(idle)),
            f"nginx: client_body_timeout and proxy_send_timeout = SEGLOSS_IDLE_TIMEOUT ({where}: "
            f"{sorted(idle)})")
    ublock = re.search(r"(?s)\bupstream\s+\w+\s*\{(.*?)\}", re.sub(r"#[^\n]*", "", conf))
    ka = [seconds(a) for a in nginx_directives(ublock.group(1) if ublock else "").get(
        "keepalive_timeout", [])]
    T.check(ka and idle and min(ka) < min(idle),
            f"nginx: the upstream keepalive_timeout ({min(ka) if ka else '-'} s) is shorter than "
            "SEGLOSS_IDLE_TIMEOUT: nginx never reuses a connection seglossd is closing")
    pr = [seconds(a) for a in dirs.get("proxy_read_timeout", [])]
    T.check(pr and idle and pr[0] >= max(idle),
            f"nginx: proxy_read_timeout ({pr[0] if pr else '-'} s) allows long computations")

    ngx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                    else None)
    if not ngx:
        T.check(False, "nginx is installed (Debian package nginx) for nginx -t")
        return
    tmp = tempfile.mkdtemp(prefix="segloss-deploy-")
    try:
        with open(os.path.join(tmp, "segloss-upstream.conf"), "w") as f:
            f.write(up[0].replace("seglossd:8080", "127.0.0.1:8080") + "\n")
        shutil.copy(os.path.join(d, "segloss-listen.conf"), tmp)
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(f"pid {tmp}/nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n"
                    + "".join(f"    {k}_temp_path {tmp}/{k};\n" for k in
                              ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
                    + f"    include {os.path.join(os.path.abspath(d), 'segloss.conf')};\n}}\n")
        r = subprocess.run([ngx, "-t", "-q", "-e", "stderr", "-p", tmp + "/", "-c",
                            os.path.join(tmp, "nginx.conf")], capture_output=True, text=True)
        T.check(r.returncode == 0, "nginx -t: segloss.conf with a loopback upstream",
                r.stderr.strip())
        # as in the image: Debian's stock nginx.conf with segloss.conf in its conf.d
        stock = "/etc/nginx/nginx.conf"
        if os.geteuid() == 0 and os.path.exists(stock):
            with open(stock) as f:
                text = f.read()
            text = text.replace("include /etc/nginx/conf.d/*.conf;",
                                f"include {os.path.join(os.path.abspath(d), 'segloss.conf')};")
            text = text.replace("include /etc/nginx/sites-enabled/*;", "")
            with open(os.path.join(tmp, "nginx.conf"), "w") as f:
                f.write(text)
            r = subprocess.run([ngx, "-t", "-q", "-e", "stderr", "-c",
                                os.path.join(tmp, "nginx.conf")], capture_output=True, text=True)
            T.check(r.returncode == 0, "nginx -t: segloss.conf inside Debian's stock nginx.conf "
                    "(as in docker/nginx/Dockerfile)", r.stderr.strip())
        else:
            T.skip("nginx -t inside Debian's stock nginx.conf (needs root)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- compose and Kubernetes ------------------------------------------------------------------


def check_compose(repo, flags):
    d = os.path.join(repo, "docker")
    with open(os.path.join(d, "compose.yaml")) as f:
        doc = yaml.safe_load(f)
    svcs = doc.get("services", {})
    T.check({"seglossd", "nginx"} <= set(svcs), "compose: services seglossd and nginx")
    s, n = svcs.get("seglossd", {}), svcs.get("nginx", {})
    b = s.get("build", {})
    ctx = os.path.normpath(os.path.join(d, b.get("context", ".")))
    T.check(os.path.isfile(os.path.join(ctx, b.get("dockerfile", "Dockerfile"))) and
            os.path.samefile(ctx, repo), "compose: seglossd is built from the repository with "
            "docker/Dockerfile", b)
    T.check(glob.glob(os.path.join(ctx, "tests", "golden", "cases", "*.json")),
            "compose: the build context holds the golden cases (tests/golden/cases)")
    env = s.get("environment", {})
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    eff = check_env(flags, env, "compose")
    T.check(eff["SEGLOSS_BIND"] == "0.0.0.0" and eff["SEGLOSS_PORT"] == "8080",
            "compose: seglossd on 0.0.0.0:8080")
    T.check(eff["SEGLOSS_MAX_PER_IP"] == "0",
            "compose: SEGLOSS_MAX_PER_IP=0 (every connection comes from nginx)")
    reps = s.get("deploy", {}).get("replicas", 1)
    T.check(reps >= 2, f"compose: {reps} seglossd replicas")
    grace = seconds(s.get("stop_grace_period", "10s"))
    drain = int(eff["SEGLOSS_DRAIN_SECONDS"])
    T.check(s.get("stop_signal", "SIGTERM") == "SIGTERM" and grace and grace > drain,
            f"compose: stop_grace_period {grace} s > SEGLOSS_DRAIN_SECONDS {drain}")
    hc = " ".join(map(str, s.get("healthcheck", {}).get("test", [])))
    T.check(re.search(r"segloss health|/healthz", hc) and ":8080" in hc,
            "compose: seglossd's healthcheck asks /healthz", hc)
    mem = mem_mib(s.get("deploy", {}).get("resources", {}).get("limits", {}).get("memory", ""),
                  compose=True)
    need = need_mib(eff, 2)
    T.check(mem and mem >= need, f"compose: memory limit {mem or 0:.0f} MiB >= {need:.0f} MiB the "
            "limits need (sizing formula)")
    dep = n.get("depends_on", {})
    T.check(isinstance(dep, dict) and dep.get("seglossd", {}).get("condition") ==
            "service_healthy", "compose: nginx starts once the replicas are healthy")
    vols = {v.split(":")[1]: v.split(":")[0] for v in n.get("volumes", [])}
    want = {"/etc/nginx/conf.d/segloss.conf": "./nginx/segloss.conf",
            "/etc/nginx/segloss-upstream.conf": "./nginx/segloss-upstream.conf",
            "/etc/nginx/segloss-listen.conf": "./nginx/segloss-listen.conf"}
    T.check(all(vols.get(k) == v and os.path.isfile(os.path.join(d, v)) for k, v in want.items()),
            "compose: nginx mounts segloss.conf and its two include files", vols)
    nb = n.get("build", {})
    T.check(os.path.isfile(os.path.join(d, nb.get("context", "-"), "Dockerfile")),
            "compose: nginx is built from docker/nginx")
    ports = [str(p) for p in n.get("ports", [])]
    with open(os.path.join(d, "nginx", "segloss-listen.conf")) as f:
        listen = re.findall(r"(?m)^\s*listen\s+(?:\S+:)?(\d+)", f.read())
    T.check(listen and any(p.endswith(":" + listen[0]) for p in ports),
            f"compose: nginx's listen port {listen} is published", ports)
    # make test-image publishes nginx on a free port: NGINX_PORT, 8080 when unset
    T.check(listen and ports == [f"127.0.0.1:${{NGINX_PORT:-8080}}:{listen[0]}"],
            "compose: nginx is published on 127.0.0.1, host port ${NGINX_PORT:-8080}", ports)
    # docker-compose 1.29 (Debian 12's, which make test-image runs) refuses a top-level name:
    T.check(set(doc) <= {"services", "volumes", "networks", "configs", "secrets"},
            "compose: only top-level keys docker-compose 1.29 and Compose v2 both accept (no "
            "name:, the project is named with -p)", sorted(doc))
    return eff


def check_dockerignore(repo):
    """The context filter of docker/Dockerfile, read by the classic builder and BuildKit."""
    path = os.path.join(repo, ".dockerignore")
    rules = []
    if os.path.isfile(path):
        with open(path) as f:
            rules = [ln.strip() for ln in f if ln.strip() and not ln.startswith("#")]
    T.check({".git", "build"} <= set(rules), ".dockerignore at the repository root (the classic "
            "builder reads no other) leaves .git and build/ out of the context", rules)
    # BuildKit would prefer docker/Dockerfile.dockerignore over it: one file, not two that drift
    T.check(not os.path.exists(os.path.join(repo, "docker", "Dockerfile.dockerignore")),
            "no docker/Dockerfile.dockerignore beside the root .dockerignore")


def k8s_docs(repo, variant=None):
    """The documents of docker/k8s/*.yaml; with variant, docker/k8s/VARIANT/*.yaml in place of
    the kinds it holds (its Deployment replaces ../deployment.yaml)."""
    def load(d):
        out = []
        for path in sorted(glob.glob(os.path.join(repo, "docker", "k8s", *d, "*.yaml"))):
            with open(path) as f:
                out += [x for x in yaml.safe_load_all(f) if x]
        return out
    docs = load(())
    if variant:
        extra = load((variant,))
        kinds = {x.get("kind") for x in extra}
        docs = [x for x in docs if x.get("kind") not in kinds] + extra
    return docs


def check_k8s(repo, flags, variant=None):
    """The manifests' checks; with variant (a folder of docker/k8s), its set of manifests."""
    docs = k8s_docs(repo, variant)
    label = f"k8s {variant}:" if variant else "k8s:"

    class _T:  # every check named after the set it checks
        @staticmethod
        def check(cond, what, why=""):
            return T.check(cond, what.replace("k8s:", label, 1), why)
    by = {}
    for x in docs:
        by.setdefault(x.get("kind"), []).append(x)
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        _T.check(len(by.get(kind, [])) == 1, f"k8s: one {kind}")
    if any(len(by.get(k, [])) != 1 for k in ("Deployment", "Service", "HorizontalPodAutoscaler",
                                             "PodDisruptionBudget")):
        return None
    dep, svc = by["Deployment"][0], by["Service"][0]
    hpa, pdb = by["HorizontalPodAutoscaler"][0], by["PodDisruptionBudget"][0]
    _T.check(dep["apiVersion"] == "apps/v1" and svc["apiVersion"] == "v1" and
            hpa["apiVersion"] == "autoscaling/v2" and pdb["apiVersion"] == "policy/v1",
            "k8s: apiVersions apps/v1, v1, autoscaling/v2, policy/v1")
    spec = dep["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]

    def selects(sel):
        return bool(sel) and all(labels.get(k) == v for k, v in sel.items())

    _T.check(selects(spec["selector"]["matchLabels"]),
            "k8s: the Deployment's selector matches its pod labels")
    cs = pod["containers"]
    _T.check(len(cs) == 1, "k8s: one container")
    c = cs[0]
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    _T.check(8080 in ports.values(), "k8s: containerPort 8080")

    def port_of(p):
        return ports.get(p) if isinstance(p, str) else p

    rp, lp = c.get("readinessProbe", {}).get("httpGet", {}), c.get("livenessProbe", {}).get(
        "httpGet", {})
    _T.check(rp.get("path") == "/readyz" and port_of(rp.get("port")) == 8080,
            "k8s: readinessProbe GET /readyz on 8080", rp)
    _T.check(lp.get("path") == "/healthz" and port_of(lp.get("port")) == 8080,
            "k8s: livenessProbe GET /healthz on 8080", lp)
    res = c.get("resources", {})
    req, lim = res.get("requests", {}), res.get("limits", {})
    _T.check({"cpu", "memory"} <= set(req) and "memory" in lim,
            "k8s: resources requests (cpu, memory) and limits (memory)", res)
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    eff = check_env(flags, env, label[:-1] + " Deployment")
    _T.check(eff["SEGLOSS_BIND"] == "0.0.0.0" and eff["SEGLOSS_PORT"] == "8080",
            "k8s: seglossd on 0.0.0.0:8080")
    cpu = req.get("cpu", "0")
    cpu_n = float(cpu[:-1]) / 1000 if str(cpu).endswith("m") else float(cpu)
    threads = int(eff["SEGLOSS_THREADS"])
    _T.check(1 <= threads <= max(1, round(cpu_n)),
            f"k8s: SEGLOSS_THREADS={threads} is set and fits the CPU request ({cpu}); 0 would "
            "count the node's cores")
    mem = mem_mib(lim.get("memory", ""))
    need = need_mib(eff, threads)
    _T.check(mem and mem >= need and mem_mib(req.get("memory", "0")) <= mem,
            f"k8s: memory limit {mem:.0f} MiB >= {need:.0f} MiB = SEGLOSS_MAX_INFLIGHT_MB + "
            f"SEGLOSS_THREADS x (SEGLOSS_MAX_BODY_MB + {ARRAYS} x 8 x SEGLOSS_MAX_PIXELS B) + "
            f"{BASE_MIB} MiB")
    cmd = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    sleep = int(cmd[1]) if len(cmd) == 2 and cmd[0] == "sleep" and str(cmd[1]).isdigit() else \
        c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    drain = int(eff["SEGLOSS_DRAIN_SECONDS"])
    _T.check(sleep is not None and grace > drain + sleep,
            f"k8s: terminationGracePeriodSeconds {grace} > preStop sleep {sleep} + "
            f"SEGLOSS_DRAIN_SECONDS {drain}")
    sc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    _T.check(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0 and
            csc.get("allowPrivilegeEscalation") is False,
            "k8s: runs as non-root, no privilege escalation")
    ru = spec.get("strategy", {}).get("rollingUpdate", {})
    _T.check(ru.get("maxUnavailable", 1) == 0, "k8s: rolling updates keep every replica until "
            "its successor is ready (maxUnavailable 0)")

    _T.check(selects(svc["spec"].get("selector")), "k8s: the Service selects the pods")
    sp = svc["spec"].get("ports", [])
    _T.check(sp and all(port_of(p.get("targetPort", p.get("port"))) == 8080 for p in sp),
            "k8s: the Service targets port 8080", sp)
    ref = hpa["spec"]["scaleTargetRef"]
    _T.check(ref.get("kind") == "Deployment" and ref.get("name") == dep["metadata"]["name"] and
            ref.get("apiVersion") == "apps/v1",
            f"k8s: the HPA scales Deployment {dep['metadata']['name']}", ref)
    lo, hi = hpa["spec"].get("minReplicas", 1), hpa["spec"].get("maxReplicas", 0)
    _T.check(2 <= lo <= hi and hpa["spec"].get("metrics"),
            f"k8s: the HPA keeps {lo}..{hi} replicas on a metric")
    _T.check(selects(pdb["spec"].get("selector", {}).get("matchLabels")),
            "k8s: the PodDisruptionBudget selects the pods")
    mu, ma = pdb["spec"].get("maxUnavailable"), pdb["spec"].get("minAvailable")
    _T.check((mu is not None and mu >= 1 and lo - mu >= 1) or (ma is not None and ma < lo),
            f"k8s: the PodDisruptionBudget lets a drain through and leaves one replica "
            f"(minReplicas {lo}, maxUnavailable {mu}, minAvailable {ma})")
    return eff


def check_k8s_postgres(repo, flags):
    """docker/k8s/postgres: the Deployment on an external PostgreSQL. Besides check_k8s: the
    database in SEGLOSS_DB without a password, the password and the admin token as files of a
    Secret of the set (never an environment variable), --blob-dir on a ReadWriteMany claim of
    the set mounted writable, no --data-dir."""
    docs = k8s_docs(repo, "postgres")
    by = {}
    for x in docs:
        by.setdefault(x.get("kind"), []).append(x)
    dep = by["Deployment"][0]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = {e["name"]: e for e in c.get("env", [])}
    val = {k: e.get("value") for k, e in env.items()}
    db = val.get("SEGLOSS_DB") or ""
    T.check(re.match(r"postgres(ql)?://[^:/@]+@[^/]+/\w+", db) is not None,
            "k8s postgres: SEGLOSS_DB names the user, server and database, no password", db)
    T.check(not any("valueFrom" in e and k != "SEGLOSS_DB" for k, e in env.items()) and
            "PGPASSWORD" not in env and "SEGLOSS_DATA_DIR" not in env,
            "k8s postgres: no secret in an environment variable, no SEGLOSS_DATA_DIR")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = c.get("volumeMounts", [])

    def volume_of(path):
        """(volume, mount) holding path, the longest mountPath that contains it."""
        best = None
        for m in mounts:
            mp = m["mountPath"].rstrip("/")
            if path == mp or path.startswith(mp + "/"):
                if best is None or len(mp) > len(best[1]["mountPath"]):
                    best = (vols.get(m["name"], {}), m)
        return best or ({}, {})

    secrets = {x["metadata"]["name"]: x for x in by.get("Secret", [])}
    for var in ("SEGLOSS_DB_PASSWORD_FILE", "SEGLOSS_ADMIN_TOKEN_FILE"):
        path = val.get(var) or ""
        v, m = volume_of(path)
        name = v.get("secret", {}).get("secretName")
        key = os.path.relpath(path, m["mountPath"]) if m else None
        sec = secrets.get(name, {})
        T.check(name in secrets and key in set(sec.get("stringData", {})) |
                set(sec.get("data", {})) and m.get("readOnly") is True,
                f"k8s postgres: {var} is key {key!r} of the Secret {name!r}, mounted read-only",
                path)
    bd = val.get("SEGLOSS_BLOB_DIR") or ""
    v, m = volume_of(bd)
    claim = v.get("persistentVolumeClaim", {}).get("claimName")
    pvcs = {x["metadata"]["name"]: x for x in by.get("PersistentVolumeClaim", [])}
    T.check(claim in pvcs and pvcs[claim]["spec"].get("accessModes") == ["ReadWriteMany"] and
            not m.get("readOnly"), f"k8s postgres: SEGLOSS_BLOB_DIR ({bd}) is on the claim "
            f"{claim!r}, ReadWriteMany, mounted writable by every replica")
    T.check(pod.get("securityContext", {}).get("fsGroup") == pod.get(
            "securityContext", {}).get("runAsGroup", -1),
            "k8s postgres: fsGroup is the user's group (the Secret's files and the claim)")
    mode = [v.get("secret", {}).get("defaultMode") for v in vols.values() if "secret" in v]
    T.check(mode and all(x is not None and x & 0o007 == 0 for x in mode),
            "k8s postgres: the Secret's files are not readable by others (defaultMode)", mode)


def check_compose_postgres(repo):
    """docker/compose.yaml's PostgreSQL: the postgres service built from docker/postgres (on the
    Debian base), the replicas' store on it with the password and the admin token as secrets,
    blobs on one shared volume."""
    d = os.path.join(repo, "docker")
    with open(os.path.join(d, "compose.yaml")) as f:
        doc = yaml.safe_load(f)
    svcs = doc.get("services", {})
    s, p = svcs.get("seglossd", {}), svcs.get("postgres", {})
    T.check(os.path.isfile(os.path.join(d, p.get("build", {}).get("context", "-"),
                                        "Dockerfile")),
            "compose: postgres is built from docker/postgres")
    with open(os.path.join(d, "postgres", "Dockerfile")) as f:
        base = re.findall(r"(?m)^FROM\s+(\S+)", f.read())
    T.check(base and all(b.startswith("debian:12") for b in base),
            "compose: postgres is built on the Debian base image (no registry image)", base)
    env = s.get("environment", {})
    db = env.get("SEGLOSS_DB", "")
    T.check(re.match(r"postgresql://[^:/@]+@postgres:5432/\w+$", db) is not None,
            "compose: SEGLOSS_DB is the postgres service, no password in it", db)
    top = doc.get("secrets", {})
    want = {"SEGLOSS_DB_PASSWORD_FILE": "segloss_db_password",
            "SEGLOSS_ADMIN_TOKEN_FILE": "segloss_admin_token"}
    T.check(all(env.get(k) == f"/run/secrets/{v}" and v in s.get("secrets", []) and
                "file" in top.get(v, {}) for k, v in want.items()) and
            "segloss_db_password" in p.get("secrets", []),
            "compose: the password and the admin token are secrets mounted as files")
    vol = {v.split(":")[1]: v.split(":")[0] for v in s.get("volumes", [])}
    bd = env.get("SEGLOSS_BLOB_DIR")
    T.check(bd and vol.get(bd) in doc.get("volumes", {}),
            "compose: SEGLOSS_BLOB_DIR is a named volume every replica mounts", vol)
    dep = s.get("depends_on", {})
    T.check(isinstance(dep, dict) and dep.get("postgres", {}).get("condition") ==
            "service_healthy" and p.get("healthcheck"),
            "compose: the replicas start once postgres is healthy (pg_isready)")
    with open(os.path.join(d, "Dockerfile")) as f:
        df = f.read()
    T.check(bd and re.search(r"chown 10001:10001 " + re.escape(bd), df),
            f"compose: the image makes {bd} owned by uid 10001 (a new volume inherits it)")


def check_yamllint(repo):
    files = [os.path.join(repo, "docker", "compose.yaml")] + sorted(
        glob.glob(os.path.join(repo, "docker", "k8s", "*.yaml"))) + sorted(
        glob.glob(os.path.join(repo, "docker", "k8s", "*", "*.yaml")))
    if not shutil.which("yamllint"):
        T.skip("yamllint (Debian package yamllint) is not installed")
        return
    r = subprocess.run(["yamllint", "-f", "parsable", "-s", "-d",
                        "{extends: default, rules: {line-length: {max: 100}, "
                        "document-start: disable}}", *files], capture_output=True, text=True)
    T.check(r.returncode == 0, f"yamllint: {len(files)} YAML files", r.stdout.strip()[:1000])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--repo", default=os.path.normpath(os.path.join(here, "..", "..")))
    ap.add_argument("--build", default=None, help="folder with seglossd and segloss (build)")
    args = ap.parse_args()
    repo = os.path.abspath(args.repo)
    build = args.build or os.path.join(repo, "build")
    try:
        flags = load_flags(repo)
        T.check(len(flags) >= 18 and "SEGLOSS_MAX_INFLIGHT_MB" in flags,
                f"server/config.c: {len(flags)} SEGLOSS_* variables")
        check_yamllint(repo)
        eff_docker = check_dockerfile(repo, build, flags)
        eff_compose = check_compose(repo, flags)
        check_dockerignore(repo)
        eff_k8s = check_k8s(repo, flags)
        check_compose_postgres(repo)
        eff_k8s_pg = check_k8s(repo, flags, "postgres")
        check_k8s_postgres(repo, flags)
        effs = [(e, w) for e, w in ((eff_docker, "the image"), (eff_compose, "compose"),
                                    (eff_k8s, "k8s"), (eff_k8s_pg, "k8s postgres")) if e]
        check_nginx(repo, effs)
    except Exception as e:  # noqa: BLE001 - a file that cannot be read or parsed fails
        T.check(False, "the deployment files parse", f"{type(e).__name__}: {e}")
    print(f"deploy: {T.passed} passed, {T.failed} failed")
    return 1 if T.failed else 0


if __name__ == "__main__":
    sys.exit(main())
