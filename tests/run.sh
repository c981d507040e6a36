#!/bin/sh
# Runs the test programs and sums their "N passed, M failed[, K skipped]" lines into one
# closing line. Usage: tests/run.sh BUILD GOLDEN_DIR
# [unit|golden|e2e|readme|filter|clients|challenges|browser|pg|js]...
# pg: the store's unit tests, the challenge tests and the replicas' tests on PostgreSQL, each
# program on a throwaway server it starts (tests/pg/pgserver.py; Debian's postgresql).
# browser needs Debian's chromium; SEGLOSS_NO_BROWSER=1 (the Docker image's build stage, which
# has no browser) skips it, and says so; without that variable a missing chromium fails.
# SEGLOSS_TEST=PATTERN (make test T=PATTERN) runs only the tests whose names match it (the rule
# of tests/filter.h); the programs read it themselves, and a program with nothing selected
# prints "0 passed, 0 failed".
# js: the JavaScript client (clients/js) under node --test (tests/clients/js.sh; Debian's nodejs).
build=$1
golden_dir=$2
shift 2
what=${*:-"unit golden e2e readme filter clients challenges browser pg js"}
export SEGLOSS_TEST="${SEGLOSS_TEST:-}"
# selected NAME: whether SEGLOSS_TEST selects the test NAME (tests/filter.h's rule)
selected() {
    [ -z "$SEGLOSS_TEST" ] && return 0
    (
        set -f
        IFS=,
        for alt in $SEGLOSS_TEST; do
            [ -z "$alt" ] && continue
            case $alt in
            *[*?[]*) case $1 in $alt) exit 0 ;; esac ;;
            *) case $1 in *"$alt"*) exit 0 ;; esac ;;
            esac
        done
        exit 1
    )
}
# numpy_python: sets py to a python3 that has numpy (Debian's first); fails if none has
numpy_python() {
    py=
    for cand in /usr/bin/python3 python3; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import numpy' 2>/dev/null; then
            py=$cand
            return 0
        fi
    done
    return 1
}
[ -n "$SEGLOSS_TEST" ] && echo "tests selected by: $SEGLOSS_TEST"
total_p=0
total_f=0
total_s=0
status=0
tally() {
    # the last summary line of the program's output
    line=$(grep -E '^[A-Za-z0-9_ -]*: [0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    if [ -z "$line" ]; then
        echo "  $2: no summary line (crashed?)"
        total_f=$((total_f + 1))
        return
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.*failed, ([0-9]+) skipped.*/\1/p')
    total_p=$((total_p + p))
    total_f=$((total_f + f))
    total_s=$((total_s + ${s:-0}))
}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for kind in $what; do
    case $kind in
    unit) progs=$(ls "$build"/tests/test_* 2>/dev/null | grep -v '\.d$') ;;
    golden) progs="$build/tests/golden" ;;
    e2e) progs="$build/tests/e2e" ;;
    readme | filter)
        # one test each, named as the kind
        selected "$kind" || continue
        progs="tests/e2e/$kind.sh"
        ;;
    browser)
        # the HTML pages in headless Chromium (tests/browser/test_browser.py)
        if [ "${SEGLOSS_NO_BROWSER:-}" = 1 ]; then
            echo "  browser: SKIPPED: SEGLOSS_NO_BROWSER=1 (the HTML pages were not tested in a"
            echo "  browser here; run make browser where chromium is installed)"
            # counted as skipped unless T names other tests only (make test T=lovasz)
            if [ -z "$SEGLOSS_TEST" ] || selected browser; then
                total_s=$((total_s + 1))
            fi
            continue
        fi
        if ! [ -x "${SEGLOSS_CHROMIUM:-/usr/bin/chromium}" ]; then
            echo "  browser: no chromium at ${SEGLOSS_CHROMIUM:-/usr/bin/chromium} (Debian:"
            echo "  apt-get install chromium; make deps does it as root), or set"
            echo "  SEGLOSS_NO_BROWSER=1 to skip the browser tests knowingly"
            total_f=$((total_f + 1))
            status=1
            continue
        fi
        progs="tests/browser/test_browser.py"
        if ! numpy_python; then
            echo "  $kind: no python3 with numpy (Debian: apt-get install python3-numpy)"
            total_f=$((total_f + 1))
            status=1
            continue
        fi
        ;;
    clients | challenges)
        # the Python client and the CLI, and challenges over HTTP, tested from Python with
        # numpy (Debian's python3-numpy)
        if [ "$kind" = clients ]; then
            progs="tests/clients/test_python.py tests/clients/test_cli.py tests/clients/test_compare.py"
            # the Python package installed into venvs; the man pages and the bash completion
            # against --help (Debian's man-db and mypy: .ci/deps.sh)
            progs="$progs tests/clients/test_pypkg.py tests/clients/test_man.py"
            progs="$progs tests/clients/test_completion.py"
        else
            progs="tests/challenges/test_challenges.py tests/challenges/test_pages.py tests/clients/test_chal_clients.py"
        fi
        if ! numpy_python; then
            echo "  $kind: no python3 with numpy (Debian: apt-get install python3-numpy)"
            total_f=$((total_f + 1))
            status=1
            continue
        fi
        ;;
    pg)
        progs="tests/pg/pgserver.py tests/challenges/test_challenges.py tests/pg/test_replicas.py"
        if ! numpy_python; then
            echo "  $kind: no python3 with numpy (Debian: apt-get install python3-numpy)"
            total_f=$((total_f + 1))
            status=1
            continue
        fi
        ;;
    js) progs="tests/clients/js.sh" ;;
    *) echo "unknown test kind $kind" >&2; exit 2 ;;
    esac
    for prog in $progs; do
        case $kind in
        unit) "$prog" >"$out" 2>&1 ;;
        readme | filter) sh "$prog" "$build" >"$out" 2>&1 ;;
        js) sh "$prog" "$build" "$golden_dir" >"$out" 2>&1 ;;
        browser) "$py" "$prog" --seglossd "$build/seglossd" --golden "$golden_dir" >"$out" 2>&1 ;;
        clients | challenges)
            case $prog in
            *test_pypkg.py | *test_man.py | *test_completion.py) set -- --segloss "$build/segloss" ;;
            *test_cli.py | *test_chal_clients.py | *test_compare.py) set -- --segloss "$build/segloss" ;;
            *) set -- ;;
            esac
            "$py" "$prog" "$@" --seglossd "$build/seglossd" --golden "$golden_dir" >"$out" 2>&1
            ;;
        pg)
            case $prog in
            *pgserver.py) "$py" "$prog" run "$build/tests/test_store" >"$out" 2>&1 ;;
            *test_challenges.py) "$py" "$prog" --pg --seglossd "$build/seglossd" >"$out" 2>&1 ;;
            *) "$py" "$prog" --seglossd "$build/seglossd" >"$out" 2>&1 ;;
            esac
            ;;
        *) "$prog" --golden "$golden_dir" --seglossd "$build/seglossd" >"$out" 2>&1 ;;
        esac
        rc=$?
        cat "$out"
        [ $rc -ne 0 ] && status=1
        tally "$out" "$(basename "$prog")"
    done
done
if [ $total_s -gt 0 ]; then
    echo "$total_p passed, $total_f failed, $total_s skipped"
else
    echo "$total_p passed, $total_f failed"
fi
[ $total_f -eq 0 ] && [ $status -eq 0 ]
