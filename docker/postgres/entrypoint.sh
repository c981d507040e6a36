#!/bin/sh
# segloss-postgres: makes the cluster in /var/lib/postgresql/data on the first start (superuser
# segloss, its password from $POSTGRES_PASSWORD_FILE, default the compose secret
# /run/secrets/segloss_db_password; database segloss), then runs PostgreSQL in the foreground,
# listening on every address with scram-sha-256 for TCP clients.
set -eu
data=/var/lib/postgresql/data
bin=/usr/local/lib/pgbin
pwfile=${POSTGRES_PASSWORD_FILE:-/run/secrets/segloss_db_password}
if [ ! -s "$data/PG_VERSION" ]; then
    if [ ! -s "$pwfile" ]; then
        echo "segloss-postgres: no password in $pwfile (the secret segloss_db_password)" >&2
        exit 1
    fi
    "$bin/initdb" -D "$data" -U segloss --pwfile "$pwfile" -E UTF8 \
        --auth-local trust --auth-host scram-sha-256
    printf '%s\n' "host all all 0.0.0.0/0 scram-sha-256" "host all all ::/0 scram-sha-256" \
        >>"$data/pg_hba.conf"
    echo "CREATE DATABASE segloss" | "$bin/postgres" --single -D "$data" postgres >/dev/null
fi
exec "$bin/postgres" -D "$data" -c listen_addresses='*' -c unix_socket_directories=/tmp
