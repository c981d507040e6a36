#!/bin/sh
# Runs the deployment checks, the native cluster test and the challenges' cluster test on
# PostgreSQL (make test-cluster) and closes with one "N passed, M failed" line over all three.
# Usage: tests/cluster/run.sh SEGLOSSD GOLDEN_DIR
seglossd=${1:-build/seglossd}
golden=${2:-tests/golden/cases}
here=$(dirname "$0")
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# Debian's python3, which python3-yaml (make test-cluster installs it) belongs to; another
# python3 first on PATH may lack it
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
status=0
total_p=0
total_f=0
for t in deploy cluster pgcluster; do
    case $t in
    deploy) "$py" "$here/check_deploy.py" --build "$(dirname "$seglossd")" >"$out" 2>&1 ;;
    cluster) "$py" "$here/test_cluster.py" --seglossd "$seglossd" --golden "$golden" \
        --nginx-conf "$here/../../docker/nginx" >"$out" 2>&1 ;;
    pgcluster) "$py" "$here/test_cluster_pg.py" --seglossd "$seglossd" \
        --nginx-conf "$here/../../docker/nginx" >"$out" 2>&1 ;;
    esac
    [ $? -ne 0 ] && status=1
    cat "$out"
    line=$(grep -E "^$t: [0-9]+ passed, [0-9]+ failed" "$out" | tail -n 1)
    if [ -z "$line" ]; then
        echo "  $t: no summary line (crashed?)"
        total_f=$((total_f + 1))
        status=1
        continue
    fi
    total_p=$((total_p + $(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')))
    total_f=$((total_f + $(echo "$line" | sed -E 's/.*passed, ([0-9]+) failed.*/\1/')))
done
echo "$total_p passed, $total_f failed"
[ $total_f -eq 0 ] && [ $status -eq 0 ]
