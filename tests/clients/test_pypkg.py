#!/usr/bin/python3
"""test_pypkg.py - the Python client as a package (clients/python/pyproject.toml), installed.

    python3 tests/clients/test_pypkg.py --segloss build/segloss --seglossd build/seglossd \\
        --golden tests/golden/cases

Installs clients/python into fresh virtual environments (python3 -m venv --system-site-packages,
so Debian's numpy and setuptools serve; pip install --no-index --no-build-isolation: no package
index) twice: from the path, and from a git URL (git+file:// of this repository's HEAD with
#subdirectory=clients/python). From each venv it runs the client suite
(tests/clients/test_python.py) and the challenge verbs (tests/clients/test_chal_clients.py's
"python" part) against a live seglossd with SEGLOSS_PY_INSTALLED=1, which makes them import the
installed package: the path they print must be the venv's. It checks the version against the
project's (SL_VERSION in lib/segloss.h, seglossd --version), the installed metadata (numpy the
only dependency, py.typed shipped), that the public API is annotated, and, where mypy is
installed (Debian's mypy), that a program using the installed package type-checks with
--strict and that a wrong use is caught.

Prints "ok"/"FAIL" lines and ends with "pypkg: N passed, M failed". SEGLOSS_TEST selects by
"clients/pypkg/NAME": version, types, path, git. Python 3 standard library + numpy."""

import argparse
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import typing

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
SRC = os.path.join(TOP, "clients", "python")
sys.path.insert(0, HERE)
sys.path.insert(0, SRC)

import harness  # noqa: E402
import segloss  # noqa: E402

T = harness.Tally("pypkg")

# the public API the issue names, each annotated in every parameter and its return
METHODS = ("score", "score_batches", "weight_map", "catalog", "healthy", "ready", "submit",
           "submissions", "leaderboard", "challenge", "challenge_configure",
           "challenge_reference", "challenge_add_participant", "challenge_participants",
           "challenge_revoke", "challenge_rescore", "challenge_export", "__init__")
FUNCTIONS = ("score", "weight_map")
ERRORS = ("SeglossError", "SeglossConnectionError", "QuotaError", "WindowError")


def run(cmd, timeout=600, **kw):
    """cmd's CompletedProcess (text, stdout and stderr together)."""
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, **kw)


def project_version():
    """SL_VERSION of lib/segloss.h: the project's version."""
    with open(os.path.join(TOP, "lib", "segloss.h")) as f:
        m = re.search(r'#define SL_VERSION "([^"]+)"', f.read())
    return m.group(1) if m else None


def test_version(opts):
    want = project_version()
    T.check(want is not None, "lib/segloss.h defines SL_VERSION")
    out = run([opts.seglossd, "--version"]).stdout.strip()
    T.check(out == f"seglossd {want}", "seglossd --version is SL_VERSION", out)
    T.check(segloss.__version__ == want, "segloss.__version__ is SL_VERSION",
            f"{segloss.__version__} != {want}")
    with open(os.path.join(SRC, "pyproject.toml")) as f:
        toml = f.read()
    T.check('version = {attr = "segloss.__version__"}' in toml,
            "pyproject.toml takes its version from segloss.__version__")
    T.check(re.search(r'^dependencies = \["numpy"\]$', toml, re.M) is not None,
            "pyproject.toml: numpy is the only dependency")


def test_types():
    """Every public method and function has its parameters and return annotated, and the
    annotations resolve (typing.get_type_hints)."""
    for where, names in ((segloss.Client, METHODS), (segloss, FUNCTIONS)):
        for name in names:
            fn = getattr(where, name)
            what = f"{'Client.' if where is segloss.Client else 'segloss.'}{name}"
            try:
                hints = typing.get_type_hints(fn)
            except Exception as e:
                T.check(False, f"{what}: its annotations resolve", repr(e))
                continue
            params = [p for p in inspect.signature(fn).parameters if p != "self"]
            missing = [p for p in params if p not in hints]
            if "return" not in hints:
                missing.append("return")
            T.check(not missing, f"{what}: every parameter and the return annotated",
                    repr(missing))
            T.check(bool(inspect.getdoc(fn)), f"{what}: has a docstring")
    for name in ERRORS:
        cls = getattr(segloss, name)
        T.check(issubclass(cls, segloss.SeglossError) and bool(cls.__doc__),
                f"{name}: a documented SeglossError")
    hints = typing.get_type_hints(segloss.SeglossError)
    T.check({"status", "title", "detail", "problem", "retry_after", "request_id"} <= set(hints),
            "SeglossError's attributes are annotated", repr(sorted(hints)))
    T.check(set(segloss.__all__) >= {"Client", "score", "weight_map", *ERRORS},
            "__all__ exports the client, the functions and the errors", repr(segloss.__all__))


def make_venv(root, name):
    """A fresh venv root/name with the system's site packages; its python, or None."""
    venv = os.path.join(root, name)
    r = run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    if not T.check(r.returncode == 0, f"{name}: python3 -m venv --system-site-packages", r.stdout):
        return None
    return os.path.join(venv, "bin", "python")


def site_dir(py):
    """The installed package's directory in the venv of py, and its distribution's metadata."""
    code = ("import importlib.metadata as m, importlib.util as u, json, os\n"
            "s = u.find_spec('segloss')\n"
            "print(json.dumps([os.path.dirname(s.origin), m.version('segloss'),"
            " m.requires('segloss')]))")
    r = run([py, "-I", "-c", code], cwd="/")
    import json

    return json.loads(r.stdout) if r.returncode == 0 else (None, None, r.stdout)


def check_install(name, py, source_text):
    """The package installed in py's venv: where, its metadata, py.typed, the same code."""
    pkg, version, requires = site_dir(py)
    venv = os.path.dirname(os.path.dirname(py))
    if not T.check(pkg is not None and pkg.startswith(venv + os.sep),
                   f"{name}: segloss is importable from the venv's site-packages",
                   f"{pkg} {requires}"):
        return None
    T.check(version == project_version(), f"{name}: the installed version is SL_VERSION",
            f"{version}")
    T.check(requires == ["numpy"], f"{name}: the installed package requires numpy only",
            repr(requires))
    T.check(os.path.isfile(os.path.join(pkg, "py.typed")), f"{name}: py.typed is installed")
    with open(os.path.join(pkg, "__init__.py")) as f:
        T.check(f.read() == source_text, f"{name}: the installed module is the source's")
    return pkg


def run_suites(name, py, pkg, opts, work):
    """test_python.py and test_chal_clients.py's python part from the venv of py, importing the
    installed package (SEGLOSS_PY_INSTALLED=1), from a folder outside the repository."""
    env = dict(os.environ, SEGLOSS_PY_INSTALLED="1")
    env.pop("PYTHONPATH", None)
    suites = (
        ("python", [os.path.join(HERE, "test_python.py"), "--seglossd", opts.seglossd,
                    "--golden", opts.golden], ""),
        ("challenge-clients", [os.path.join(HERE, "test_chal_clients.py"), "--segloss",
                               opts.segloss, "--seglossd", opts.seglossd],
         "clients/challenge/python"),
    )
    for suite, args, select in suites:
        env["SEGLOSS_TEST"] = select
        r = run([py] + args, env=env, cwd=work, timeout=900)
        m = re.search(r"^segloss imported from (.*)$", r.stdout, re.M)
        T.check(m is not None and m.group(1) == pkg,
                f"{name}: {suite} suite imports the installed package ({pkg})",
                m.group(1) if m else "no import line")
        summary = re.findall(rf"^{suite}: (\d+) passed, (\d+) failed", r.stdout, re.M)
        ok = r.returncode == 0 and summary and int(summary[-1][0]) > 0 and summary[-1][1] == "0"
        tail = "\n".join(line for line in r.stdout.splitlines() if line.startswith("FAIL"))
        T.check(bool(ok), f"{name}: the {suite} suite passes from the venv "
                f"({summary[-1][0] if summary else '?'} checks)", tail or r.stdout[-2000:])


def test_path(opts, root):
    py = make_venv(root, "venv-path")
    if py is None:
        return
    r = run([py, "-m", "pip", "install", "--no-index", "--no-build-isolation", SRC])
    if not T.check(r.returncode == 0, "path: pip install --no-index --no-build-isolation "
                   "./clients/python", r.stdout[-3000:]):
        return
    with open(os.path.join(SRC, "segloss", "__init__.py")) as f:
        pkg = check_install("path", py, f.read())
    if pkg:
        run_suites("path", py, pkg, opts, root)
        types_with_mypy(py, root)


def test_git(opts, root):
    if shutil.which("git") is None or run(["git", "-C", TOP, "rev-parse", "HEAD"]).returncode:
        # the Docker image's build stage: its context leaves .git out (.dockerignore)
        T.skip("git: not a git repository here (or no git): the git URL install is not tested")
        return
    top = run(["git", "-C", TOP, "rev-parse", "--show-toplevel"]).stdout.strip()
    head = run(["git", "-C", TOP, "show", "HEAD:clients/python/segloss/__init__.py"])
    if not T.check(head.returncode == 0 and top, "git: the repository's HEAD has the package",
                   head.stdout[-500:]):
        return
    py = make_venv(root, "venv-git")
    if py is None:
        return
    url = f"git+file://{top}#subdirectory=clients/python"
    r = run([py, "-m", "pip", "install", "--no-index", "--no-build-isolation", url], cwd=root)
    if not T.check(r.returncode == 0, "git: pip install git+file://REPO#subdirectory="
                   "clients/python", r.stdout[-3000:]):
        return
    pkg = check_install("git", py, head.stdout)
    if pkg:
        run_suites("git", py, pkg, opts, root)


def types_with_mypy(py, root):
    """mypy --strict on a program that uses the installed package (found through its py.typed),
    and a wrong use of it that mypy must report."""
    mypy = shutil.which("mypy")
    if mypy is None:
        T.skip("types: mypy is not installed (Debian: apt-get install mypy; make deps does it)")
        return
    good = os.path.join(root, "uses_segloss.py")
    with open(good, "w") as f:
        f.write(textwrap.dedent("""\
            import numpy as np
            import segloss

            def dice(url: str) -> float:
                client = segloss.Client(url, timeout=30)
                pred = np.zeros((1, 4, 4), dtype=np.float32)
                out = client.score(pred, pred > 0, ["dice"], prediction_type="probabilities")
                value: float = out["losses"]["dice"]["value"]
                answers = client.score_batches([(pred, pred)], metrics=["iou"], parallel=2)
                w = client.weight_map(np.zeros((1, 4, 4), dtype=np.uint8), w0=10)
                board = client.leaderboard("c")
                text: str = client.leaderboard("c", csv=True)
                token: str = client.challenge_add_participant("c", "team")
                try:
                    client.submit("c", {"0": pred}, note="n")
                except segloss.QuotaError as e:
                    delay: float | None = e.retry_after
                ok: bool = client.healthy() and client.ready()
                return value + len(answers) + float(w.sum()) + len(board["rows"]) + len(text)
            """))
    bad = os.path.join(root, "misuses_segloss.py")
    with open(bad, "w") as f:
        f.write(textwrap.dedent("""\
            import segloss

            count: int = segloss.Client().catalog()
            segloss.Client().score_batches([], parallel="4")
            """))
    cache = os.path.join(root, "mypy-cache")
    base = [mypy, "--python-executable", py, "--cache-dir", cache, "--no-error-summary"]
    r = run(base + ["--strict", good], cwd=root)
    T.check(r.returncode == 0, "types: mypy --strict passes a program using the installed "
            "package", r.stdout[-3000:])
    T.check("py.typed" not in r.stdout and "missing library stubs" not in r.stdout,
            "types: mypy finds the installed package typed (py.typed)", r.stdout[-1000:])
    r = run(base + [bad], cwd=root)
    T.check(r.returncode == 1 and "misuses_segloss.py:3: error: Incompatible types in assignment"
            in r.stdout and "misuses_segloss.py:4: error: Argument \"parallel\"" in r.stdout,
            "types: mypy reports catalog() assigned to an int and parallel given a str",
            r.stdout[-2000:])
    r = run(base + [os.path.join(SRC, "segloss")], cwd=root)
    T.check(r.returncode == 0, "types: mypy passes clients/python/segloss", r.stdout[-3000:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segloss", default="build/segloss")
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--golden", default="tests/golden/cases")
    opts = ap.parse_args()
    opts.segloss = os.path.abspath(opts.segloss)
    opts.seglossd = os.path.abspath(opts.seglossd)
    opts.golden = os.path.abspath(opts.golden)
    want = {n: harness.selected("clients/pypkg/" + n) for n in ("version", "types", "path", "git")}
    root = tempfile.mkdtemp(prefix="segloss-pypkg-")
    try:
        if want["version"]:
            test_version(opts)
        if want["types"]:
            test_types()
        if want["path"]:
            test_path(opts, root)
        if want["git"]:
            test_git(opts, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
