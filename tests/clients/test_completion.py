#!/usr/bin/python3
"""test_completion.py - the bash completion of segloss (clients/cli/segloss.bash) against
segloss --help and the flags each command accepts.

    python3 tests/clients/test_completion.py --segloss build/segloss

Sources the script in bash, checks that it registers a function for segloss (complete -p), and
calls that function as bash would (COMP_WORDS, COMP_CWORD, COMP_LINE, COMP_POINT), reading
COMPREPLY. Checked: the first word completes to the commands of --help's usage lines (and
--help, --version); "challenge" to --help's seven verbs; the flags offered over all commands are
exactly the flags --help names (test_man.py's rule); each flag a command is offered is one that
command accepts (running `segloss COMMAND FLAG [1]` never says "unknown or incomplete option");
a flag prefix completes to the flags it begins; --compress's values are those --help lists; a
file argument completes file names.

Prints "ok"/"FAIL" lines and ends with "completion: N passed, M failed". SEGLOSS_TEST selects by
"clients/completion". Python 3 standard library and bash."""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from tally import Tally, selected  # noqa: E402
from test_man import help_flags  # noqa: E402  (the flags --help names)

T = Tally("completion")
SCRIPT = os.path.join(TOP, "clients", "cli", "segloss.bash")
# flags that take a value: given "1" when a command is asked whether it accepts them
TAKES_VALUE = {"--url", "--pred", "--target", "--loss", "--metric", "--spec", "--set", "--shape",
               "--batch-size", "--compress", "--gate", "--junit", "--html", "--report-worst",
               "--parallel", "--retries", "--timeout", "--baseline", "--resamples", "--seed",
               "--worst", "--token", "--token-file", "--ids", "--note", "-o"}


def complete(words, cwd):
    """COMPREPLY of the registered completion function for the command line words (the last
    one is the word being completed), sorted; None when bash failed."""
    script = f"""
        source {shlex.quote(SCRIPT)} || exit 3
        spec=$(complete -p segloss) || exit 4
        fn=${{spec##*-F }}; fn=${{fn%% *}}
        COMP_WORDS=({' '.join(shlex.quote(w) for w in words)})
        COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
        COMP_LINE="${{COMP_WORDS[*]}}"
        COMP_POINT=${{#COMP_LINE}}
        COMPREPLY=()
        "$fn" segloss "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD - 1]}}"
        printf '%s\\n' "${{COMPREPLY[@]}}"
    """
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], cwd=cwd, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0 or r.stderr.strip():
        return None
    return sorted(w for w in r.stdout.split("\n") if w)


def accepts(segloss, cmd, flag, cwd):
    """Whether segloss COMMAND accepts flag (its parser does not call it unknown)."""
    args = [segloss] + cmd.split() + [flag] + (["1"] if flag in TAKES_VALUE else [])
    if flag == "--wait" and cmd == "health":
        args.append("1")
    env = dict(os.environ, SEGLOSS_URL="http://127.0.0.1:9")  # nothing listens: refused at once
    try:
        r = subprocess.run(args, cwd=cwd, text=True, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=30, env=env)
    except subprocess.TimeoutExpired:
        return False
    return "unknown or incomplete option" not in r.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segloss", default="build/segloss")
    ap.add_argument("--seglossd", default=None, help="unused")
    ap.add_argument("--golden", default=None, help="unused")
    opts = ap.parse_args()
    if not selected("clients/completion"):
        return T.finish()
    segloss = os.path.abspath(opts.segloss)
    if not T.check(shutil.which("bash") is not None, "bash is installed"):
        return T.finish()
    r = subprocess.run([segloss, "--help"], stdout=subprocess.PIPE, text=True, timeout=30)
    text = r.stdout
    cmds = set(re.findall(r"^(?:Usage:|\s+)\s*segloss ([a-z]+)\b", text, re.M))
    verbs = set(re.findall(r"^\s+challenge ([a-z]+) NAME", text, re.M))
    flags = help_flags(text, segloss)
    T.check(len(cmds) == 6 and len(verbs) == 7 and len(flags) > 30,
            "segloss --help names the commands, verbs and flags",
            f"{sorted(cmds)} {sorted(verbs)} {len(flags)}")
    work = tempfile.mkdtemp(prefix="segloss-completion-")
    try:
        for name in ("preds.npy", "preds.npy.gz", "masks.npy", "other.json"):
            open(os.path.join(work, name), "w").close()
        os.mkdir(os.path.join(work, "predictions"))

        got = complete(["segloss", ""], work)
        T.check(got == sorted(cmds | {"-h", "--help", "--version"}),
                "segloss <TAB>: the commands of --help's usage, -h, --help and --version",
                repr(got))
        got = complete(["segloss", "s"], work)
        T.check(got == ["score", "submit"], "segloss s<TAB>: score, submit", repr(got))
        got = complete(["segloss", "challenge", ""], work)
        T.check(got is not None and set(got) == verbs, "segloss challenge <TAB>: the 7 verbs",
                repr(got))
        got = complete(["segloss", "challenge", "re"], work)
        T.check(got == ["reference", "rescore", "revoke"],
                "segloss challenge re<TAB>: reference, rescore, revoke", repr(got))

        offered = {}
        lines = {"score": ["segloss", "score", "-"], "compare": ["segloss", "compare", "-"],
                 "health": ["segloss", "health", "-"], "submit": ["segloss", "submit", "-"],
                 "leaderboard": ["segloss", "leaderboard", "-"],
                 "challenge rescore": ["segloss", "challenge", "rescore", "x", "-"]}
        for cmd, words in lines.items():
            got = complete(words, work)
            T.check(bool(got), f"segloss {cmd} -<TAB>: offers flags", repr(got))
            offered[cmd] = set(got or [])
        union = set().union(*offered.values(), complete(["segloss", "-"], work) or [])
        T.check(union == flags, "the flags offered over all commands are those of --help",
                f"only offered {sorted(union - flags)}, never offered {sorted(flags - union)}")
        for cmd, fl in offered.items():
            bad = [f for f in sorted(fl) if not accepts(segloss, cmd, f, work)]
            T.check(not bad, f"segloss {cmd}: every flag offered is accepted", repr(bad))
        T.check("--ready" not in offered["score"] and "--note" in offered["submit"]
                and "--private" in offered["leaderboard"] and "--url" not in offered["compare"],
                "flags go to their commands (health's --ready not to score, --note to submit, "
                "--private to leaderboard, no --url for compare)")

        got = complete(["segloss", "score", "--co"], work)
        T.check(got == ["--compress"], "segloss score --co<TAB>: --compress", repr(got))
        got = complete(["segloss", "score", "--no-"], work)
        T.check(got == ["--no-per-image", "--no-progress"],
                "segloss score --no-<TAB>: --no-per-image, --no-progress", repr(got))
        m = re.search(r"--compress MODE\s+(\w+)", text)
        want = {"auto", "gzip", "zstd", "none"}
        T.check(m is not None and m.group(1) == "auto"
                and all(re.search(rf"\b{v}\b", text[m.start():m.start() + 200]) for v in want),
                "--help lists auto, gzip, zstd, none for --compress")
        got = complete(["segloss", "score", "--compress", ""], work)
        T.check(got is not None and set(got) == want, "segloss score --compress <TAB>: its values",
                repr(got))
        got = complete(["segloss", "score", "--pred", "pre"], work)
        T.check(got == ["predictions", "preds.npy", "preds.npy.gz"],
                "segloss score --pred pre<TAB>: file and directory names", repr(got))
        got = complete(["segloss", "compare", "o"], work)
        T.check(got == ["other.json"], "segloss compare o<TAB>: other.json", repr(got))
        got = complete(["segloss", "score", "--loss", ""], work)
        T.check(got == [], "segloss score --loss <TAB>: nothing (a name of the catalog)", repr(got))
        got = complete(["segloss", "health", "--wait", ""], work)
        T.check(got == [], "segloss health --wait <TAB>: nothing (seconds)", repr(got))
        got = complete(["segloss", "challenge", "rescore", "x", "--wait", "--"], work)
        T.check(got is not None and "--json" in got,
                "segloss challenge rescore x --wait --<TAB>: flags (--wait takes no value there)",
                repr(got))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
