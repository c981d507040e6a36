#!/bin/sh
# js.sh - the JavaScript client's tests (tests/clients/js/*.test.mjs) under Node's own test
# runner, against the seglossd of BUILD and the golden cases; prints their TAP and then the
# closing "js: N passed, M failed[, K skipped]" line tests/run.sh adds up.
# Usage: tests/clients/js.sh BUILD GOLDEN_DIR   (node 18+: Debian's nodejs; npm and tsc are
# optional, and the tests that need them say so when skipped)
build=${1:-build}
golden=${2:-tests/golden/cases}
if ! command -v node >/dev/null 2>&1; then
    echo "js: no node (Debian: apt-get install nodejs)"
    echo "js: 0 passed, 1 failed"
    exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
SEGLOSS_SEGLOSSD="$build/seglossd" SEGLOSS_GOLDEN="$golden" \
    node --test --test-reporter=tap tests/clients/js/client.test.mjs tests/clients/js/pack.test.mjs \
    >"$out" 2>&1
rc=$?
cat "$out"
# the counts from the TAP lines of the tests (all named js/...; nested one level under their
# file by Node 18, at the top by Node 20), not from the runner's closing "# pass N", which
# counts files in Node 18 and a file with no test selected as a test
p=$(grep -cE '^ *ok [0-9]+ - js/' "$out")
s=$(grep -cE '^ *ok [0-9]+ - js/.* # SKIP' "$out")
f=$(grep -cE '^ *not ok [0-9]+ - js/' "$out")
p=$((p - s))
if ! grep -qE '^ *1\.\.[0-9]+$' "$out"; then
    p=
fi
if [ -z "$p" ]; then
    echo "js: no counts from node --test (crashed?)"
    echo "js: 0 passed, 1 failed"
    exit 1
fi
[ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
if [ "${s:-0}" -gt 0 ]; then
    echo "js: $p passed, $f failed, $s skipped"
else
    echo "js: $p passed, $f failed"
fi
[ "$f" -eq 0 ]
