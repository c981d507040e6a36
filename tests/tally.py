"""tally.py - the Python tests' checks: "ok"/"FAIL"/"skip" lines and the closing
"NAME: N passed, M failed" line that tests/run.sh sums, and selected(), which tests run.
Safe to call from several threads."""

import fnmatch
import os
import sys
import threading


def selected(name, pattern=None):
    """Whether the test named name runs: the rule of tests/filter.h. pattern (default: the
    SEGLOSS_TEST environment variable, which make test T=PATTERN sets) is alternatives separated
    by ','; one with a glob character (* ? [) must match the whole name, any other must be a
    substring of it. No pattern selects everything."""
    if pattern is None:
        pattern = os.environ.get("SEGLOSS_TEST", "")
    if not pattern:
        return True
    for alt in pattern.split(","):
        if not alt:
            continue
        if any(c in alt for c in "*?["):
            if fnmatch.fnmatchcase(name, alt):
                return True
        elif alt in name:
            return True
    return False


class Tally:
    """Counts checks of one test program named name."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0
        self.lock = threading.Lock()

    def check(self, cond, what, why=""):
        """Records cond as one check; prints it; returns cond."""
        with self.lock:
            if cond:
                self.passed += 1
                print(f"ok   {self.name}: {what}")
            else:
                self.failed += 1
                print(f"FAIL {self.name}: {what}" + (f": {why}" if why else ""))
            sys.stdout.flush()
        return cond

    def skip(self, what):
        """A check that could not run here (not counted)."""
        print(f"skip {self.name}: {what}")
        sys.stdout.flush()

    def info(self, text):
        """A line of context (not counted)."""
        print(f"     {self.name}: {text}")
        sys.stdout.flush()

    def finish(self):
        """Prints the closing line; returns the exit status (1 when a check failed)."""
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1
