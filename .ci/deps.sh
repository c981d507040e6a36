#!/bin/sh
# Installs the Debian packages segloss builds and tests with, if any is missing (SEGLOSS_PKGS
# names others: the Makefile's test targets ask for chromium this way, the benchmarks for theirs).
# As root it runs apt-get itself; otherwise it prints the one line to run and fails.
PKGS="${SEGLOSS_PKGS:-build-essential libmicrohttpd-dev libjansson-dev libdeflate-dev libzstd-dev zlib1g-dev libcurl4-openssl-dev libsqlite3-dev libpq-dev postgresql libpng-dev python3-numpy python3-scipy python3-setuptools python3-wheel python3-venv python3-zstandard man-db mypy nodejs}"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then
    echo "deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
        echo "deps: apt-get install failed for:$missing" >&2
        exit 1
    }
else
    echo "deps: missing Debian packages. Run:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y$missing" >&2
    exit 1
fi
