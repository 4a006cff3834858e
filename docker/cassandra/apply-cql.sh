#!/usr/bin/env bash
# Applies every *.cql file in CQL_DIR, in name order, to Cassandra with cqlsh.
# Run by the one-shot `cassandra-init` service of docker/docker-compose.yml
# after Cassandra is healthy. The files come from the persistence package
# (docker/cassandra/init/001-journal.cql, ...) and must be idempotent
# (CREATE ... IF NOT EXISTS): this runs on every `docker compose up`.
# Exits non-zero on the first file that fails (cqlsh exits 2 on a statement
# error), so `docker compose ps -a` shows the failure.
set -euo pipefail

host="${CASSANDRA_HOST:-cassandra}"
port="${CASSANDRA_PORT:-9042}"
dir="${CQL_DIR:-/opt/dataflow/init}"
attempts="${CQL_CONNECT_ATTEMPTS:-30}"

shopt -s nullglob
files=("$dir"/*.cql)
if [ "${#files[@]}" -eq 0 ]; then
  echo "cassandra-init: no *.cql files in $dir; nothing to apply"
  exit 0
fi

# The healthcheck already saw CQL answer inside the Cassandra container;
# this waits for it to answer over the network too.
n=0
until cqlsh "$host" "$port" -e 'SELECT release_version FROM system.local' > /dev/null 2>&1; do
  n=$((n + 1))
  if [ "$n" -ge "$attempts" ]; then
    echo "cassandra-init: Cassandra at $host:$port did not answer CQL after $attempts attempts" >&2
    exit 1
  fi
  sleep 2
done

for f in "${files[@]}"; do
  echo "cassandra-init: applying $(basename "$f")"
  cqlsh "$host" "$port" --request-timeout=60 -f "$f"
done
echo "cassandra-init: applied ${#files[@]} file(s)"
