#!/usr/bin/env bash
# Run a command against a throw-away PostgreSQL cluster.
#
#   scripts/pg.sh COMMAND [ARG...]
#   scripts/pg.sh env VI_TEST_DB=postgres .venv/bin/python -m pytest
#
# The cluster lives in a fresh temp dir, listens only on a unix socket in that dir (so it can
# never clash with another server's port, including a second run of this script), trusts local
# connections, and is stopped and removed when COMMAND ends, however it ends. COMMAND sees
# PGHOST, PGPORT, PGUSER, PGDATABASE; its exit status is this script's exit status.
#
# Environment: PG_BIN (folder with initdb/pg_ctl; default: the newest /usr/lib/postgresql/*/bin).
set -euo pipefail

[ $# -gt 0 ] || { echo "usage: scripts/pg.sh COMMAND [ARG...]" >&2; exit 2; }

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ ! -x "$PG_BIN/initdb" ]; then
    echo "scripts/pg.sh: PostgreSQL server binaries not found (apt-get install postgresql, or set PG_BIN)" >&2
    exit 2
fi

# PostgreSQL refuses to run as root, so as root the server runs as the postgres user.
if [ "$(id -u)" = 0 ]; then
    as_owner() { runuser -u postgres -- "$@"; }
else
    as_owner() { "$@"; }
fi

# A run killed with SIGKILL leaves its cluster behind. Each cluster dir records the pid of the
# script that owns it; stop and remove those whose owner is gone.
sweep_stale() {
    local dir owner
    for dir in "${TMPDIR:-/tmp}"/vi-pg.*; do
        [ -f "$dir/owner.pid" ] || continue
        owner=$(cat "$dir/owner.pid")
        kill -0 "$owner" 2>/dev/null && continue
        echo "scripts/pg.sh: removing stale cluster $dir (owner $owner is gone)" >&2
        [ -f "$dir/data/postmaster.pid" ] && as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$dir"
    done
}

cleanup() {
    if [ -f "$dir/data/postmaster.pid" ]; then
        # immediate: the data is thrown away, so skip the shutdown checkpoint.
        as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

sweep_stale
dir=$(mktemp -d "${TMPDIR:-/tmp}/vi-pg.XXXXXX")
echo $$ > "$dir/owner.pid"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
[ "$(id -u)" = 0 ] && chown postgres: "$dir"

as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }

# Durability settings off: a test cluster that crashes is simply thrown away. The connection
# limit leaves room for tests that write from several processes at once.
cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = 5432
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF

if ! as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null; then
    echo "scripts/pg.sh: PostgreSQL did not start; its log:" >&2
    cat "$dir/server.log" >&2
    exit 1
fi

export PGHOST=$dir PGPORT=5432 PGUSER=versioned_items PGDATABASE=versioned_items
unset PGPASSWORD PGSERVICE
# CREATEDB: Django's test runner creates and drops test_<name> itself.
"$PG_BIN/psql" -q -v ON_ERROR_STOP=1 -U postgres -d postgres \
    -c "CREATE ROLE versioned_items LOGIN CREATEDB" \
    -c "CREATE DATABASE versioned_items OWNER versioned_items"

# Not exec: the EXIT trap must still run after COMMAND.
status=0
"$@" || status=$?
exit $status
