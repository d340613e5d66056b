#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL cluster (Debian's postgresql) on loopback for the tests: its own folder,
# port and password (SCRAM), run as the `postgres` user when started by root (PostgreSQL refuses root).
#   scripts/postgres.sh start DIR   prints FACET_TEST_POSTGRES (a postgres:// URL) and FACET_TEST_PG_BIN
#   scripts/postgres.sh stop DIR
set -euo pipefail
action=$1
dir=$2
port=${POSTGRES_TEST_PORT:-15432}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$action" in
start)
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    chmod 700 "$dir"
    echo "facet-test-password" >"$dir/password"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir/password"
    as_postgres "$bin/initdb" -D "$dir/data" -U facet --pwfile="$dir/password" -A scram-sha-256 -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null ||
        { tail -20 "$dir/postgres.log" >&2; exit 1; }
    PGPASSWORD=facet-test-password "$bin/psql" -q -h 127.0.0.1 -p "$port" -U facet -d postgres \
        -c "CREATE DATABASE facet_test" >/dev/null
    echo "export FACET_TEST_POSTGRES=postgres://facet:facet-test-password@127.0.0.1:$port/facet_test?sslmode=disable"
    echo "export FACET_TEST_PG_BIN=$bin"
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    ;;
restart)
    as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300" start >/dev/null
    ;;
esac
