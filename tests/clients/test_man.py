#!/usr/bin/python3
"""test_man.py - the man pages docs/man/seglossd.8 and docs/man/segloss.1 against --help.

    python3 tests/clients/test_man.py --segloss build/segloss --seglossd build/seglossd

Each page renders with man -l (Debian's man-db) without a warning, and matches its binary's
--help both ways so that neither can drift: every flag (--long or -x) that --help names is an
entry of the page's OPTIONS and every entry is a flag of --help; the same for the environment
variables (SEGLOSS_*) and the page's ENVIRONMENT; seglossd's page gives each flag the variable
and default its --help gives; segloss's page has each command and challenge verb of --help under
COMMANDS, and each page an EXIT STATUS with 0, 1 and 2. make install (with -o all: the binaries
given are installed as they are) puts the pages under PREFIX/share/man/man1 and man8, where
man -M finds them, and the completion under PREFIX/share/bash-completion/completions.

Prints "ok"/"FAIL" lines and ends with "man: N passed, M failed". SEGLOSS_TEST selects by
"clients/man/NAME": seglossd, segloss, install. Python 3 standard library."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

from tally import Tally, selected  # noqa: E402  (tests/tally.py)

T = Tally("man")
PAGES = {"seglossd": os.path.join(TOP, "docs", "man", "seglossd.8"),
         "segloss": os.path.join(TOP, "docs", "man", "segloss.1")}
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")
ENV = re.compile(r"\bSEGLOSS_[A-Z][A-Z0-9_]*[A-Z0-9]\b")
# segloss --help names one flag of seglossd's ("Challenges (seglossd --data-dir)"): not its own
NOT_SEGLOSS_FLAGS = {"--data-dir"}


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=120, **kw)


def help_text(binary):
    r = run([binary, "--help"])
    return r.stdout if r.returncode == 0 else None


def help_flags(text, binary):
    """The flags --help names anywhere in text (minus those of another program)."""
    flags = set(FLAG.findall(text))
    return flags - NOT_SEGLOSS_FLAGS if os.path.basename(binary) == "segloss" else flags


def plain(roff):
    """roff text without font escapes and with \\- as -."""
    return re.sub(r"\\f[BIRP]", "", roff).replace("\\-", "-").replace("\\e", "\\")


def sections(source):
    """{section name: its lines} of a man page's source (.SH NAME ...)."""
    out, name = {}, None
    for line in source.splitlines():
        m = re.match(r'^\.SH\s+"?([^"]*)"?\s*$', line)
        if m:
            name = m.group(1)
            out[name] = []
        elif name is not None:
            out[name].append(line)
    return out


def entries(lines):
    """[(tag line, body lines)] of the .TP entries in lines, the tag and body as plain text."""
    out = []
    i = 0
    while i < len(lines):
        if lines[i].startswith(".TP") and i + 1 < len(lines):
            tag = plain(re.sub(r"^\.(B|BR|I|IR)\s+", "", lines[i + 1]))
            body = []
            j = i + 2
            while j < len(lines) and not re.match(r"^\.(TP|SH|SS|PP)\b", lines[j]):
                body.append(plain(re.sub(r"^\.(B|BR|I|IR|RB|RI)\s+", "", lines[j])))
                j += 1
            out.append((tag, " ".join(body)))
            i = j
        else:
            i += 1
    return out


def render(path):
    """(rc, text, warnings) of man -l on path, 80 columns."""
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8")
    env.pop("MANPAGER", None)
    env.pop("PAGER", None)
    r = run(["man", "--warnings", "-l", path], env=env)
    return r.returncode, r.stdout, r.stderr


def both_ways(what, in_help, in_page):
    T.check(not (in_help - in_page), f"{what}: every one of --help is in the page",
            repr(sorted(in_help - in_page)))
    T.check(not (in_page - in_help), f"{what}: every one of the page is in --help",
            repr(sorted(in_page - in_help)))


def check_page(name, binary):
    path = PAGES[name]
    text = help_text(binary)
    if not T.check(text is not None, f"{name} --help exits 0"):
        return
    with open(path) as f:
        source = f.read()
    secs = sections(source)
    for sec in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT", "EXIT STATUS",
                "EXAMPLES", "SEE ALSO"):
        T.check(sec in secs, f"{name}: the page has {sec}")
    if "OPTIONS" not in secs or "ENVIRONMENT" not in secs:
        return
    opts = entries(secs["OPTIONS"])
    page_flags = set()
    for tag, _ in opts:
        page_flags |= set(FLAG.findall(tag))
    want = help_flags(text, binary)
    T.check(len(want) >= 10, f"{name}: --help names its flags ({len(want)})")
    both_ways(f"{name}: flags", want, page_flags)
    page_env = set()
    for tag, _ in entries(secs["ENVIRONMENT"]):
        page_env |= set(ENV.findall(tag))
    both_ways(f"{name}: environment variables", set(ENV.findall(text)), page_env)
    codes = [tag.strip() for tag, _ in entries(secs.get("EXIT STATUS", []))]
    T.check(codes == ["0", "1", "2"], f"{name}: EXIT STATUS describes 0, 1 and 2", repr(codes))

    rc, rendered, warnings = render(path)
    T.check(rc == 0 and rendered.strip(), f"{name}: man -l renders the page", warnings)
    T.check(not warnings.strip(), f"{name}: man --warnings -l says nothing", warnings[-2000:])
    missing = [f for f in sorted(want) if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])",
                                                        rendered)]
    T.check(not missing, f"{name}: the rendered page shows every flag", repr(missing))
    missing = [v for v in sorted(set(ENV.findall(text))) if v not in rendered]
    T.check(not missing, f"{name}: the rendered page shows every variable", repr(missing))
    title = f"{name.upper()}({'8' if name == 'seglossd' else '1'})"
    T.check(rendered.lstrip().startswith(title), f"{name}: the rendered page is {title}",
            rendered[:80])

    if name == "seglossd":
        check_seglossd_defaults(text, opts)
    else:
        check_segloss_commands(text, secs)


def check_seglossd_defaults(text, opts):
    """Each option line of seglossd --help, "--flag ARG  what  (SEGLOSS_X, default)", has the
    same variable and default in the flag's entry ("Variable SEGLOSS_X; default D.")."""
    pairs = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^\s+(--[a-z-]+).*\((SEGLOSS_[A-Z_]+),\s*(.*)$", line)
        if not m:
            continue
        default = m.group(3).rstrip()
        if not default.endswith(")"):  # the default goes on below the variable
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            # the right column: after the last run of 2 or more spaces
            default = (default + " " + re.split(r"\s{2,}", nxt.strip())[-1]).strip()
        pairs[m.group(1)] = (m.group(2), default.rstrip(")").strip())
    T.check(len(pairs) >= 20, f"seglossd: --help gives variables and defaults ({len(pairs)})")
    body_of = {}
    for tag, body in opts:
        for f in FLAG.findall(tag):
            body_of[f] = body
    bad = []
    for flag, (var, default) in sorted(pairs.items()):
        body = body_of.get(flag, "")
        # a default of the page may say more ("none (no challenges)")
        if f"Variable {var}; default {default}" not in body:
            bad.append(f"{flag}: {var}, {default!r} not in {body!r}")
    T.check(not bad, "seglossd: each flag's entry has the variable and default of --help",
            "\n".join(bad))


def check_segloss_commands(text, secs):
    """The commands of --help's usage lines and its challenge verbs are COMMANDS entries."""
    cmds = set(re.findall(r"^(?:Usage:|\s+)\s*segloss ([a-z]+)\b", text, re.M))
    verbs = set(re.findall(r"^\s+challenge ([a-z]+) NAME", text, re.M))
    T.check(cmds == {"score", "compare", "health", "challenge", "submit", "leaderboard"},
            "segloss: --help's usage names the six commands", repr(sorted(cmds)))
    T.check(len(verbs) == 7, "segloss: --help names the seven challenge verbs",
            repr(sorted(verbs)))
    page_cmds, page_verbs = set(), set()
    for tag, _ in entries(secs.get("COMMANDS", [])):
        words = tag.replace(".B ", "").split()
        if words and words[0] == "challenge" and len(words) > 1:
            page_cmds.add("challenge")
            page_verbs.add(words[1])
        elif words:
            page_cmds.add(words[0])
    both_ways("segloss: commands", cmds, page_cmds)
    both_ways("segloss: challenge verbs", verbs, page_verbs)


def check_install(opts):
    """make install into a temporary PREFIX: the pages and the completion where they belong."""
    prefix = tempfile.mkdtemp(prefix="segloss-install-")
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        build = os.path.dirname(opts.seglossd)
        r = run(["make", "-C", TOP, "--no-print-directory", "-o", "all", "install",
                 f"BUILD={build}", f"PREFIX={prefix}"], env=env)
        if not T.check(r.returncode == 0, "install: make install PREFIX=... runs",
                       r.stdout[-1500:] + r.stderr[-1500:]):
            return
        for rel, src in (("share/man/man1/segloss.1", PAGES["segloss"]),
                         ("share/man/man8/seglossd.8", PAGES["seglossd"]),
                         ("share/bash-completion/completions/segloss",
                          os.path.join(TOP, "clients", "cli", "segloss.bash")),
                         ("bin/segloss", opts.segloss), ("bin/seglossd", opts.seglossd)):
            dst = os.path.join(prefix, rel)
            same = os.path.isfile(dst) and open(dst, "rb").read() == open(src, "rb").read()
            T.check(same, f"install: PREFIX/{rel} is {os.path.relpath(src, TOP)}")
            if rel.startswith("share/"):
                T.check(os.stat(dst).st_mode & 0o777 == 0o644, f"install: PREFIX/{rel} is 0644",
                        oct(os.stat(dst).st_mode))
        envm = dict(env, MANWIDTH="80", LC_ALL="C.UTF-8")
        for sec, page in (("1", "segloss"), ("8", "seglossd")):
            r = run(["man", "-M", os.path.join(prefix, "share", "man"), sec, page], env=envm)
            T.check(r.returncode == 0 and f"{page.upper()}({sec})" in r.stdout,
                    f"install: man -M PREFIX/share/man {sec} {page} finds the page",
                    r.stderr[-500:])
    finally:
        shutil.rmtree(prefix, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segloss", default="build/segloss")
    ap.add_argument("--seglossd", default="build/seglossd")
    ap.add_argument("--golden", default=None, help="unused")
    opts = ap.parse_args()
    opts.segloss = os.path.abspath(opts.segloss)
    opts.seglossd = os.path.abspath(opts.seglossd)
    want = {n: selected("clients/man/" + n) for n in ("seglossd", "segloss", "install")}
    if not any(want.values()):
        return T.finish()
    if not T.check(shutil.which("man") is not None, "man is installed (Debian: man-db; make deps "
                   "installs it)"):
        return T.finish()
    for name in ("seglossd", "segloss"):
        if want[name]:
            check_page(name, getattr(opts, name))
    if want["install"]:
        check_install(opts)
    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
