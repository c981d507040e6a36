#!/usr/bin/python3
"""test_chal_clients.py - the challenge verbs of the `segloss` CLI and the challenge methods of
the Python client (clients/python/segloss/) against a real seglossd with a data directory.

    python3 tests/clients/test_chal_clients.py --segloss build/segloss --seglossd build/seglossd

Prints "ok ..." / "FAIL ..." lines and closes with `challenge-clients: N passed, M failed` (exit 1
on a failure). SEGLOSS_TEST selects tests by their names "clients/challenge/NAME" (tests/tally.py
selected): cli (a whole challenge driven by the CLI), csv (a reference and submissions as Kaggle
CSV and as a stacked .npy with --ids, a closed window), python (the same through the Python
client). --golden is accepted and unused (tests/run.sh passes it to every client test).

Every expected score is a hand calculation written beside it: Dice = 2|P and T| / (|P| + |T|) of
small masks written out here; the mean is over images, "global" sums the counts of all images
first. Kaggle RLE runs are 1-based "start length" pairs numbering pixels column-major (down the
first column, then the next), as Kaggle's masks are.

Python 3 standard library + numpy (Debian's python3-numpy)."""

import argparse
import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# SEGLOSS_PY_INSTALLED=1: the installed package (tests/clients/test_pypkg.py runs this file from
# a venv it installed it into), else the source tree's clients/python
if os.environ.get("SEGLOSS_PY_INSTALLED") != "1":
    sys.path.insert(0, os.path.join(HERE, "..", "..", "clients", "python"))

import harness  # noqa: E402
import segloss  # noqa: E402
print("segloss imported from", os.path.dirname(os.path.abspath(segloss.__file__)))

T = harness.Tally("challenge-clients")
TOL = 1e-12

# The configuration of the main challenge: binary label masks, Dice mean and global, a fixed
# split (images a and b public, c private) and a quota of 2 scored submissions a day.
CONFIG = {
    "title": "Clients test",
    "spec": {"mode": "binary", "prediction_type": "labels", "metrics": ["dice"]},
    "ranking": [{"key": "metrics.dice.mean", "order": "desc"}],
    "columns": ["metrics.dice.mean", "metrics.dice.global"],
    "split": {"public_ids": ["a", "b"]},
    "quota": {"per_day": 2},
}

# The hidden reference, one image per file (sizes differ):
REFERENCE = {
    "a": np.array([[1, 1], [0, 0]], np.uint8),  # |T| = 2
    "b": np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], np.uint8),  # |T| = 2
    "c": np.array([[1, 1, 1], [0, 0, 0]], np.uint8),  # |T| = 3 (private)
}

# Submission 1:
#   a: |P| = 1, |P and T| = 1: Dice 2/3
#   b: |P| = 3, |P and T| = 2: Dice 4/5
#   c: |P| = 2, |P and T| = 2: Dice 4/5
# public (a, b): mean (2/3 + 4/5) / 2 = 11/15; global 2 (1 + 2) / ((1 + 3) + (2 + 2)) = 6/8
# private (c):   mean 4/5, global 4/5
SUB1 = {
    "a": np.array([[1, 0], [0, 0]], np.uint8),
    "b": np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], np.uint8),
    "c": np.array([[1, 1, 0], [0, 0, 0]], np.uint8),
}
SUB1_PUBLIC = {"metrics.dice.mean": 11 / 15, "metrics.dice.global": 6 / 8}
SUB1_PRIVATE = {"metrics.dice.mean": 4 / 5, "metrics.dice.global": 4 / 5}

# Submission 2: the reference itself: every Dice 1.
SUB2 = REFERENCE
SUB2_PUBLIC = {"metrics.dice.mean": 1.0, "metrics.dice.global": 1.0}

# Submission 3 (the Python client's team):
#   a: [[0, 1], [0, 0]]: |P| = 1, |P and T| = 1: Dice 2/3
#   b: all zero: |P| = 0, |P and T| = 0, |T| = 2: Dice 0
#   c: all one (2x3): |P| = 6, |P and T| = 3: Dice 6/9
# public: mean (2/3 + 0) / 2 = 1/3; global 2 (1 + 0) / ((1 + 2) + (0 + 2)) = 2/5
SUB3 = {
    "a": np.array([[0, 1], [0, 0]], np.uint8),
    "b": np.zeros((3, 3), np.uint8),
    "c": np.ones((2, 3), np.uint8),
}
SUB3_PUBLIC = {"metrics.dice.mean": 1 / 3, "metrics.dice.global": 2 / 5}


# ---- helpers --------------------------------------------------------------------------------


class Ctx:
    """What the tests share: the server, the CLI binary, a scratch directory, the admin token."""

    def __init__(self, server, segloss_bin, work, data_dir):
        self.server = server
        self.url = server.url
        self.segloss = segloss_bin
        self.work = work
        self.token_file = os.path.join(data_dir, "admin.token")
        with open(self.token_file) as f:
            self.admin = f.read().strip()


def run(ctx, args, token=None, env_token=None, timeout=60):
    """Runs segloss with args against the test's server (--url); token goes in --token,
    env_token in SEGLOSS_TOKEN. Returns (exit status, stdout, stderr)."""
    env = dict(os.environ)
    env.pop("SEGLOSS_TOKEN", None)
    env.pop("SEGLOSS_URL", None)
    if env_token is not None:
        env["SEGLOSS_TOKEN"] = env_token
    argv = [ctx.segloss, *args, "--url", ctx.url, "--quiet"]
    if token is not None:
        argv += ["--token", token]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def admin(ctx, args, **kw):
    """Runs segloss with the admin token from its file (--token-file)."""
    return run(ctx, [*args, "--token-file", ctx.token_file], **kw)


def save_dir(path, images):
    """Writes {id: array} as a directory of .npy files named by id."""
    os.makedirs(path, exist_ok=True)
    for key, a in images.items():
        np.save(os.path.join(path, key + ".npy"), a)
    return path


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def close(got, want):
    return isinstance(got, (int, float)) and abs(got - want) <= TOL


def check_scores(what, got, want):
    """Checks every key of want in the dict got within TOL."""
    got = got or {}
    bad = {k: got.get(k) for k, v in want.items() if not close(got.get(k), v)}
    return T.check(not bad, what, f"got {got!r}, want {want!r}")


def rows_of(text):
    """A CSV text as a list of dicts."""
    return list(csv.DictReader(io.StringIO(text)))


def no_secret(what, texts, *tokens):
    """Checks that none of the tokens appears in any of texts."""
    leaked = [t for t in tokens if t and any(t in x for x in texts)]
    T.check(not leaked, f"{what}: no token in the output")


# ---- the CLI --------------------------------------------------------------------------------


def test_cli(ctx):
    """A whole challenge with the CLI: configure, a reference from a directory, a participant,
    submissions until the quota, a bad one, leaderboards, participants, export, re-score,
    revoke."""
    c = "cli-chal"
    cfg = write(os.path.join(ctx.work, "config.json"), json.dumps(CONFIG))
    rc, out, err = admin(ctx, ["challenge", "configure", c, cfg])
    T.check(rc == 0 and "created" in out, "cli: configure creates the challenge (exit 0)",
            f"{rc} {out} {err}")
    rc, out, err = admin(ctx, ["challenge", "configure", c, cfg])
    T.check(rc == 0 and "replaced" in out, "cli: configure again replaces it", f"{rc} {out} {err}")
    rc, out, err = run(ctx, ["challenge", "configure", c, cfg])
    T.check(rc == 2 and "401" in err, "cli: configure without a token: 401, exit 2",
            f"{rc} {err}")

    ref = save_dir(os.path.join(ctx.work, "ref"), REFERENCE)
    rc, out, err = admin(ctx, ["challenge", "reference", c, ref, "--json"])
    doc = json.loads(out) if rc == 0 else {}
    T.check(rc == 0 and (doc.get("images"), doc.get("public"), doc.get("private")) == (3, 2, 1),
            "cli: reference from a directory: 3 images, 2 public (a, b), 1 private",
            f"{rc} {out} {err}")

    rc, token, err = admin(ctx, ["challenge", "add", c, "team-a"])
    token = token.strip()
    T.check(rc == 0 and len(token) == 64 and all(ch in "0123456789abcdef" for ch in token),
            "cli: add prints the new token (64 hex digits) alone on stdout", f"{rc} {err}")
    no_secret("cli: add", [err], ctx.admin)
    rc, _, err = admin(ctx, ["challenge", "add", c, "team-a"])
    T.check(rc == 2 and "409" in err, "cli: add of a taken name: 409, exit 2", f"{rc} {err}")

    sub1 = save_dir(os.path.join(ctx.work, "sub1"), SUB1)
    rc, out, err = run(ctx, ["submit", c, sub1, "--note", "first try", "--json"], token=token)
    doc = json.loads(out) if rc == 0 else {}
    T.check(rc == 0, "cli: submit (--token) exits 0 on 201", f"{rc} {err}")
    check_scores("cli: submit answers the public Dice mean 11/15 and global 6/8",
                 doc.get("public"), SUB1_PUBLIC)
    T.check("private" not in doc, "cli: the 201 holds no private scores (not revealed)")
    q = doc.get("quota") or {}
    T.check((q.get("used_today"), q.get("per_day"), q.get("remaining_today")) == (1, 2, 1),
            "cli: the quota after one submission: 1 of 2 used, 1 left", repr(q))
    T.check(doc.get("note") == "first try" and doc.get("public_rank") == 1,
            "cli: the note is kept and the rank is 1", repr(doc))
    no_secret("cli: submit", [out, err], token, ctx.admin)

    # a bad submission: image c missing (422), not counted
    bad = save_dir(os.path.join(ctx.work, "bad"), {"a": SUB1["a"], "b": SUB1["b"]})
    rc, out, err = run(ctx, ["submit", c, bad], env_token=token)
    T.check(rc == 2 and "422" in err, "cli: a submission missing an image: 422, exit 2",
            f"{rc} {err}")

    sub2 = save_dir(os.path.join(ctx.work, "sub2"), SUB2)
    # image b as a gzip'd .npy file (its id is still "b")
    with open(os.path.join(sub2, "b.npy"), "rb") as f, \
            gzip.open(os.path.join(sub2, "b.npy.gz"), "wb") as g:
        g.write(f.read())
    os.remove(os.path.join(sub2, "b.npy"))
    rc, out, err = run(ctx, ["submit", c, sub2, "--compress", "none"], env_token=token)
    T.check(rc == 0, "cli: submit (SEGLOSS_TOKEN, b.npy.gz, --compress none) exits 0 on 201",
            f"{rc} {err}")
    T.check("metrics.dice.mean" in out and "2 of 2 today" in out and "0 left" in out,
            "cli: the table shows the scores and the quota (2 of 2, 0 left: the bad one did "
            "not count)", out)

    rc, out, err = run(ctx, ["submit", c, sub1], env_token=token)
    T.check(rc == 1 and "429" in err and "Retry-After" in err,
            "cli: over the per-day quota: 429 with Retry-After, exit 1", f"{rc} {err}")
    rc, out, err = run(ctx, ["submit", c, sub1])
    T.check(rc == 2 and "token" in err, "cli: submit without a token: exit 2", f"{rc} {err}")
    rc, out, err = admin(ctx, ["submit", c, sub1])
    T.check(rc == 2 and "403" in err,
            "cli: submit with the admin token: 403 (not a window refusal), exit 2", f"{rc} {err}")

    # leaderboards: team-a's best public submission is sub2 (Dice 1)
    rc, out, err = run(ctx, ["leaderboard", c, "--json"])
    doc = json.loads(out) if rc == 0 else {}
    rows = doc.get("rows") or [{}]
    T.check(rc == 0 and len(rows) == 1 and rows[0].get("participant") == "team-a"
            and rows[0].get("rank") == 1 and rows[0].get("entries") == 2,
            "cli: the public leaderboard: team-a first, 2 entries", f"{rc} {out} {err}")
    check_scores("cli: the public leaderboard shows the best submission (Dice 1)",
                 rows[0].get("scores"), SUB2_PUBLIC)
    rc, out, err = run(ctx, ["leaderboard", c, "--csv"])
    lines = rows_of(out) if rc == 0 else []
    T.check(rc == 0 and out.startswith("rank,participant,submission,submitted_at,"
                                       "metrics.dice.mean,metrics.dice.global")
            and len(lines) == 1 and lines[0]["participant"] == "team-a"
            and close(float(lines[0]["metrics.dice.mean"]), 1.0),
            "cli: the public leaderboard as CSV", f"{rc} {out} {err}")
    rc, out, err = run(ctx, ["leaderboard", c])
    T.check(rc == 0 and "team-a" in out and "metrics.dice.global" in out,
            "cli: the public leaderboard as a table", out)
    rc, out, err = run(ctx, ["leaderboard", c, "--private"], token=token)
    T.check(rc == 2 and "403" in err,
            "cli: the private leaderboard before the reveal is the organiser's (403, exit 2)",
            f"{rc} {err}")
    rc, out, err = admin(ctx, ["leaderboard", c, "--private", "--json"])
    doc = json.loads(out) if rc == 0 else {}
    rows = doc.get("rows") or [{}]
    # private: the best of team-a's 2 best public submissions by the private ranking: sub2
    T.check(rc == 0 and doc.get("split") == "private" and len(rows) == 1,
            "cli: the admin reads the private leaderboard", f"{rc} {out} {err}")
    check_scores("cli: the private leaderboard: image c of sub2 (Dice 1)", rows[0].get("scores"),
                 {"metrics.dice.mean": 1.0})

    rc, out, err = admin(ctx, ["challenge", "participants", c, "--json"])
    ps = (json.loads(out) if rc == 0 else {}).get("participants") or [{}]
    T.check(rc == 0 and len(ps) == 1 and ps[0].get("name") == "team-a"
            and ps[0].get("scored") == 2 and ps[0].get("submissions") == 3,
            "cli: participants: team-a with 3 submissions, 2 scored", f"{rc} {out} {err}")
    no_secret("cli: participants", [out, err], token, ctx.admin)

    export = os.path.join(ctx.work, "export.csv")
    rc, out, err = admin(ctx, ["challenge", "export", c, "-o", export])
    rows = []
    if rc == 0:
        with open(export) as f:
            rows = rows_of(f.read())
    T.check(rc == 0 and len(rows) == 3, "cli: export -o FILE: the 3 submissions", f"{rc} {err}")
    first = [r for r in rows if r.get("note") == "first try"]
    T.check(len(first) == 1 and first[0].get("status") == "scored"
            and close(float(first[0].get("public.metrics.dice.mean", "nan")), 11 / 15)
            and close(float(first[0].get("private.metrics.dice.mean", "nan")), 4 / 5)
            and close(float(first[0].get("private.metrics.dice.global", "nan")), 4 / 5),
            "cli: export: submission 1 with public mean 11/15 and private Dice 4/5",
            repr(first))
    T.check(sorted(r.get("status") for r in rows) == ["failed", "scored", "scored"],
            "cli: export: the bad submission is listed as failed", repr(rows))
    rc, out, err = run(ctx, ["challenge", "export", c], token=token)
    T.check(rc == 2 and "403" in err, "cli: export with a participant's token: 403, exit 2",
            f"{rc} {err}")

    rc, out, err = admin(ctx, ["challenge", "rescore", c, "--wait", "--json"])
    doc = json.loads(out) if rc == 0 else {}
    T.check(rc == 0 and doc.get("running") is False and doc.get("total") == 2
            and doc.get("done") == 2 and doc.get("failed") == 0,
            "cli: rescore --wait: the 2 scored submissions done, none failed",
            f"{rc} {out} {err}")
    rc, out, err = run(ctx, ["leaderboard", c, "--json"])
    rows = (json.loads(out) if rc == 0 else {}).get("rows") or [{}]
    check_scores("cli: after the re-score the leaderboard is unchanged", rows[0].get("scores"),
                 SUB2_PUBLIC)

    rc, out, err = admin(ctx, ["challenge", "revoke", c, "team-a"])
    T.check(rc == 0, "cli: revoke exits 0", f"{rc} {err}")
    rc, out, err = run(ctx, ["leaderboard", c, "--json"])
    T.check(rc == 0 and json.loads(out).get("rows") == [],
            "cli: a revoked participant leaves the leaderboard", out)
    rc, out, err = run(ctx, ["submit", c, sub1], token=token)
    T.check(rc == 2 and "401" in err, "cli: a revoked token: 401, exit 2", f"{rc} {err}")
    rc, out, err = admin(ctx, ["challenge", "revoke", c, "nobody"])
    T.check(rc == 2 and "404" in err, "cli: revoke of an unknown participant: 404, exit 2",
            f"{rc} {err}")
    rc, out, err = run(ctx, ["challenge", "frobnicate", c])
    T.check(rc == 2 and "unknown challenge verb" in err, "cli: an unknown verb: exit 2", err)


def test_csv(ctx):
    """A reference as a Kaggle CSV file, submissions as CSV and as a stacked .npy with --ids,
    and a closed window (exit 1)."""
    c = "csv-chal"
    config = {
        "title": "CSV",
        "spec": {"mode": "binary", "prediction_type": "labels", "metrics": ["dice"]},
        "ranking": [{"key": "metrics.dice.mean", "order": "desc"}],
        "columns": ["metrics.dice.mean", "metrics.dice.global"],
    }
    cfg = write(os.path.join(ctx.work, "csv-config.json"), json.dumps(config))
    rc, out, err = admin(ctx, ["challenge", "configure", c, cfg])
    T.check(rc == 0, "csv: configure", f"{rc} {err}")
    # images 2 x 3; pixel k (1-based, column-major) is row (k-1) % 2, column (k-1) // 2:
    #   x: runs "1 2" and (a second row) "5 1": pixels 1, 2, 5 = (0,0), (1,0), (0,2): |T| = 3
    #   y: empty
    ref = write(os.path.join(ctx.work, "ref.csv"),
                "ImageId,EncodedPixels\nx,1 2\ny,\nx,5 1\n")
    rc, out, err = admin(ctx, ["challenge", "reference", c, ref, "--shape", "2,3", "--json"])
    doc = json.loads(out) if rc == 0 else {}
    T.check(rc == 0 and doc.get("images") == 2 and doc.get("public") == 2,
            "csv: reference from a Kaggle CSV: 2 images (rows of x merged)", f"{rc} {out} {err}")
    rc, out, err = admin(ctx, ["challenge", "reference", c, ref])
    T.check(rc == 2 and "--shape" in err, "csv: a CSV without --shape: exit 2", err)

    rc, token, err = admin(ctx, ["challenge", "add", c, "p1"])
    token = token.strip()
    # x: "1 1": |P| = 1, |P and T| = 1: Dice 2/4; y: "3 2": |P| = 2, |T| = 0: Dice 0
    # mean 1/4; global 2 * 1 / ((1 + 2) + (3 + 0)) = 1/3
    sub = write(os.path.join(ctx.work, "sub.csv"), "ImageId,EncodedPixels\nx,1 1\ny,3 2\n")
    rc, out, err = run(ctx, ["submit", c, sub, "--shape", "2,3", "--note", "rle", "--json"],
                       token=token)
    doc = json.loads(out) if rc == 0 else {}
    T.check(rc == 0 and doc.get("note") == "rle", "csv: submit a CSV file with a note",
            f"{rc} {out} {err}")
    check_scores("csv: Dice mean 1/4 and global 1/3", doc.get("public"),
                 {"metrics.dice.mean": 1 / 4, "metrics.dice.global": 1 / 3})

    # a stacked [2, 2, 3] file with --ids x, y:
    #   x = [[1,0,1],[1,0,0]]: pixels (0,0), (1,0), (0,2): the reference: Dice 1
    #   y = [[0,0,0],[0,1,0]]: |P| = 1, |T| = 0: Dice 0
    # mean 1/2; global 2 * 3 / ((3 + 1) + (3 + 0)) = 6/7
    stack = os.path.join(ctx.work, "stack.npy")
    np.save(stack, np.array([[[1, 0, 1], [1, 0, 0]], [[0, 0, 0], [0, 1, 0]]], np.uint8))
    ids = write(os.path.join(ctx.work, "ids.txt"), "x\ny\n")
    rc, out, err = run(ctx, ["submit", c, stack, "--ids", ids, "--json"], token=token)
    doc = json.loads(out) if rc == 0 else {}
    T.check(rc == 0, "csv: submit a stacked .npy with --ids", f"{rc} {err}")
    check_scores("csv: Dice mean 1/2 and global 6/7", doc.get("public"),
                 {"metrics.dice.mean": 1 / 2, "metrics.dice.global": 6 / 7})
    rc, out, err = run(ctx, ["submit", c, stack], token=token)
    T.check(rc == 2 and "422" in err,
            "csv: a stacked file without --ids has ids 0 and 1, not the reference's: 422, exit 2",
            f"{rc} {err}")

    config["closes_at"] = "2020-01-01T00:00:00Z"
    write(cfg, json.dumps(config))
    rc, out, err = admin(ctx, ["challenge", "configure", c, cfg])
    T.check(rc == 0 and "replaced" in out, "csv: configure a window that has closed", err)
    rc, out, err = run(ctx, ["submit", c, stack, "--ids", ids], token=token)
    T.check(rc == 1 and "403" in err and "2020-01-01T00:00:00Z" in err,
            "csv: submit after closes_at: 403 naming the time, exit 1", f"{rc} {err}")
    return token


# ---- the Python client ---------------------------------------------------------------------


def test_python(ctx, csv_token):
    """The challenge methods of segloss.Client on a new challenge: configure, a reference as a
    dict of arrays, a participant, submissions to the quota (QuotaError), a bad one, the
    leaderboard as JSON and CSV, export, re-score, revoke; a stacked reference with ids and a
    CSV one; a closed window (WindowError)."""
    c = "py-chal"
    org = segloss.Client(ctx.url, token=ctx.admin, retries=0)
    desc = org.challenge_configure(c, CONFIG)
    T.check(isinstance(desc, dict) and desc.get("title") == "Clients test",
            "python: challenge_configure answers the description", repr(desc)[:300])
    T.check(ctx.admin not in repr(org), "python: the token is not in the client's repr")
    ref = org.challenge_reference(c, REFERENCE)
    T.check((ref.get("images"), ref.get("public"), ref.get("private")) == (3, 2, 1),
            "python: challenge_reference of a dict: 3 images, 2 public, 1 private", repr(ref))
    token = org.challenge_add_participant(c, "team-b")
    T.check(isinstance(token, str) and len(token) == 64, "python: the participant's token")
    try:
        org.challenge_add_participant(c, "team-b")
        T.check(False, "python: a taken name raises SeglossError 409")
    except segloss.SeglossError as e:
        T.check(e.status == 409, "python: a taken name raises SeglossError 409", str(e))

    team = segloss.Client(ctx.url, token=token, retries=0)
    got = team.submit(c, SUB3, note="python")
    check_scores("python: submit answers the public Dice mean 1/3 and global 2/5",
                 got.get("public"), SUB3_PUBLIC)
    T.check(got.get("status") == "scored" and got.get("note") == "python"
            and (got.get("quota") or {}).get("remaining_today") == 1,
            "python: status scored, the note, 1 submission left today", repr(got))
    try:
        team.submit(c, {"a": SUB3["a"], "b": SUB3["b"], "c": np.ones((3, 3), np.uint8)})
        T.check(False, "python: a wrong shape raises SeglossError 422")
    except segloss.QuotaError as e:
        T.check(False, "python: a wrong shape raises SeglossError 422", f"QuotaError {e}")
    except segloss.SeglossError as e:
        T.check(e.status == 422 and "c" in e.detail,
                "python: a wrong shape raises SeglossError 422 naming the image", str(e))
    got = team.submit(c, SUB1)
    check_scores("python: a second submission: mean 11/15, global 6/8", got.get("public"),
                 SUB1_PUBLIC)
    try:
        team.submit(c, SUB1)
        T.check(False, "python: over the quota raises QuotaError")
    except segloss.QuotaError as e:
        T.check(e.status == 429 and e.retry_after is not None and e.retry_after > 0
                and "quota" in e.detail,
                "python: over the quota raises QuotaError with retry_after", str(e))

    # stacked arrays with ids: the same images would need one shape; a second participant
    # submits the reference's a and b only as a stacked array -> 422 (c missing)
    other = segloss.Client(ctx.url, token=org.challenge_add_participant(c, "team-c"), retries=0)
    try:
        other.submit(c, np.stack([SUB1["a"], SUB1["a"]]), ids=["a", "c"])
        T.check(False, "python: wrong shapes in a stacked submission raise 422")
    except segloss.SeglossError as e:
        T.check(e.status == 422 and not isinstance(e, segloss.QuotaError),
                "python: wrong shapes in a stacked submission raise 422", str(e))

    board = team.leaderboard(c)
    rows = board.get("rows") or [{}]
    T.check([r.get("participant") for r in rows] == ["team-b"] and rows[0].get("entries") == 2,
            "python: leaderboard: team-b alone (team-c has no scored submission), 2 entries",
            repr(board))
    check_scores("python: leaderboard shows team-b's best (mean 11/15)", rows[0].get("scores"),
                 SUB1_PUBLIC)
    text = team.leaderboard(c, csv=True)
    lines = rows_of(text)
    T.check(len(lines) == 1 and lines[0]["participant"] == "team-b"
            and close(float(lines[0]["metrics.dice.global"]), 6 / 8),
            "python: leaderboard(csv=True): one row, global 6/8", text)
    try:
        team.leaderboard(c, split="private")
        T.check(False, "python: the private leaderboard is the organiser's (403)")
    except segloss.SeglossError as e:
        T.check(e.status == 403, "python: the private leaderboard is the organiser's (403)",
                str(e))
    private = org.leaderboard(c, split="private")
    rows = private.get("rows") or [{}]
    # team-b's private: the better by private mean of its 2 submissions: SUB1's c (4/5) beats
    # SUB3's c (6/9)
    check_scores("python: the admin's private leaderboard: team-b with Dice 4/5",
                 rows[0].get("scores"), SUB1_PRIVATE)

    subs = team.submissions(c)
    T.check(len(subs) == 3 and sorted(s.get("status") for s in subs)
            == ["failed", "scored", "scored"],
            "python: submissions: team-b's own 3 (2 scored, 1 failed)", repr(subs)[:400])
    ps = org.challenge_participants(c)
    T.check(sorted(p.get("name") for p in ps) == ["team-b", "team-c"],
            "python: challenge_participants lists both", repr(ps))
    export = rows_of(org.challenge_export(c))
    T.check(len(export) == 4 and sum(r.get("status") == "scored" for r in export) == 2,
            "python: challenge_export: 4 submissions, 2 scored", repr(export)[:400])
    progress = org.challenge_rescore(c, wait=True, timeout=60)
    T.check(progress.get("running") is False and progress.get("total") == 2
            and progress.get("done") == 2 and progress.get("failed") == 0,
            "python: challenge_rescore(wait=True): 2 of 2 done", repr(progress))
    org.challenge_revoke(c, "team-b")
    T.check(org.leaderboard(c).get("rows") == [], "python: challenge_revoke empties the board")
    try:
        team.submit(c, SUB1)
        T.check(False, "python: a revoked token raises 401")
    except segloss.SeglossError as e:
        T.check(e.status == 401 and token not in str(e), "python: a revoked token raises 401",
                str(e))

    # a stacked reference with ids, and a CSV reference, on a challenge split by fraction
    cr = "py-ref"
    org.challenge_configure(cr, dict(CONFIG, split={"public_fraction": 0.5, "seed": 1}))
    got = org.challenge_reference(cr, np.stack([REFERENCE["c"], REFERENCE["c"]]), ids=["p", "q"])
    T.check((got.get("images"), got.get("public"), got.get("private")) == (2, 1, 1),
            "python: challenge_reference of a stacked array with ids: 2 images, ceil(0.5 * 2) = 1 "
            "public", repr(got))
    cc = "csv-chal"
    got = org.challenge_reference(cc, csv="ImageId,EncodedPixels\nx,1 2\ny,\nx,5 1\n",
                                  shape=(2, 3))
    T.check(got.get("images") == 2, "python: challenge_reference of CSV text", repr(got))
    try:
        segloss.Client(ctx.url, token=csv_token, retries=0).submit(
            cc, csv="ImageId,EncodedPixels\nx,1 1\ny,3 2\n", shape=(2, 3))
        T.check(False, "python: after closes_at submit raises WindowError")
    except segloss.WindowError as e:
        T.check(e.status == 403 and "2020-01-01T00:00:00Z" in e.detail,
                "python: after closes_at submit raises WindowError naming the time", str(e))


# ---- main -----------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segloss", default="build/segloss")
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--golden", default=None, help="unused")
    opts = ap.parse_args()
    want = {name: harness.selected("clients/challenge/" + name)
            for name in ("cli", "csv", "python")}
    if not any(want.values()):
        return T.finish()
    # python's last checks use csv's challenge
    want["csv"] = want["csv"] or want["python"]
    segloss_bin = os.path.abspath(opts.segloss)
    if not (os.path.isfile(segloss_bin) and os.access(segloss_bin, os.X_OK)):
        T.check(False, f"{opts.segloss} is an executable")
        return T.finish()
    work = tempfile.mkdtemp(prefix="segloss-chal-clients-")
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    server = None
    try:
        server = harness.Server(opts.seglossd, "--data-dir", data_dir)
        ctx = Ctx(server, segloss_bin, work, data_dir)
        csv_token = None
        for name, fn in (("cli", lambda: test_cli(ctx)), ("csv", lambda: test_csv(ctx)),
                         ("python", lambda: test_python(ctx, csv_token))):
            if not want[name]:
                continue
            try:
                result = fn()
                if name == "csv":
                    csv_token = result
            except Exception:
                T.check(False, f"{name}: the test ran", traceback.format_exc())
    finally:
        if server:
            server.stop()
            shutil.rmtree(server.dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
