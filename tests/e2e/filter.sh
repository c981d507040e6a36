#!/bin/sh
# filter.sh - checks that `make test T=PATTERN` runs only the tests PATTERN names: with a narrow
# pattern (one unit test) the closing line counts a nonzero number of checks, fewer than that
# unit program runs unfiltered, and every other program says "0 passed, 0 failed".
# The make it starts selects only that unit test, so it never runs this script again; an
# environment mark stops a nested run all the same.
# Usage: tests/e2e/filter.sh BUILD_DIR   (prints "filter: N passed, M failed")
build=${1:-build}
narrow=unit/lovasz/key_desc
passed=0
failed=0
ok() { echo "ok   filter: $1"; passed=$((passed + 1)); }
bad() { echo "FAIL filter: $1"; failed=$((failed + 1)); }
if [ -n "$SEGLOSS_FILTER_NESTED" ]; then
    echo "filter: 0 passed, 0 failed"
    exit 0
fi
# a make of its own: not the calling make's jobserver, flags or T
unset MAKEFLAGS MFLAGS MAKELEVEL
out=$(SEGLOSS_FILTER_NESTED=1 make -s --no-print-directory test BUILD="$build" T="$narrow" 2>&1)
rc=$?
[ $rc -eq 0 ] && ok "make test T=$narrow exits 0" || bad "make test T=$narrow exits $rc"
last=$(echo "$out" | tail -n 1)
n=$(echo "$last" | sed -nE 's/^([0-9]+) passed, 0 failed$/\1/p')
full=$(SEGLOSS_TEST= "$build/tests/test_lovasz" 2>/dev/null |
    sed -nE 's/^test_lovasz: ([0-9]+) passed.*/\1/p')
if [ -n "$n" ] && [ "$n" -gt 0 ] && [ -n "$full" ] && [ "$n" -lt "$full" ]; then
    ok "it closes with \"$last\": more than 0, fewer than test_lovasz's $full"
else
    bad "closing line \"$last\", want 0 < N < $full (test_lovasz unfiltered)"
fi
own=$(echo "$out" | sed -nE 's/^test_lovasz: ([0-9]+) passed.*/\1/p')
[ "$own" = "$n" ] && ok "all $n from test_lovasz" || bad "test_lovasz counted ${own:-nothing}, want $n"
others=$(echo "$out" | grep -E '^[A-Za-z0-9_ -]+: [0-9]+ passed' | grep -v '^test_lovasz:' |
    grep -vE ': 0 passed, 0 failed(, 0 skipped)?$')
progs=$(echo "$out" | grep -cE '^(golden|e2e|python|cli): 0 passed, 0 failed')
if [ -z "$others" ] && [ "$progs" -eq 4 ]; then
    ok "every other program (golden, e2e, python, cli among them) ran nothing"
else
    bad "other programs ran tests (or did not report): $others"
fi
if [ $failed -gt 0 ]; then
    echo "$out" | tail -n 40 | sed 's/^/    /'
fi
echo "filter: $passed passed, $failed failed"
[ $failed -eq 0 ]
