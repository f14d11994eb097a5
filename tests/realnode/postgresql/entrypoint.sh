#!/usr/bin/env bash
# Purpose: the PostgreSQL pod's process: on an empty volume make a cluster whose superuser is
#   POSTGRES_USER (password POSTGRES_PASSWORD, scram-sha-256 over TCP) and a database POSTGRES_DB
#   it owns, then run the server in the foreground on every address, its socket in /tmp (the root
#   filesystem is read-only).
# Prerequisites: PGDATA under a writable volume (a subfolder: initdb must own it with mode 0700,
#   which an emptyDir's own mount point cannot be).
# Usage: postgresql-entrypoint [postgres flags, e.g. -c port=N]   (POSTGRES_PASSWORD required;
#   POSTGRES_USER and POSTGRES_DB default to catalog)
set -o errexit -o nounset -o pipefail

: "${POSTGRES_PASSWORD:?the superuser password is required}"
user="${POSTGRES_USER:-catalog}"
database="${POSTGRES_DB:-catalog}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  initdb --pgdata="$PGDATA" --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$database" != postgres ]; then
    echo "CREATE DATABASE \"$database\" OWNER \"$user\"" | postgres --single -D "$PGDATA" postgres >/dev/null
  fi
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp "$@"
