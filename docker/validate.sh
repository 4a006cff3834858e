#!/usr/bin/env bash
# Checks docker/docker-compose.yml with Docker Compose's own loader
# (`config -q`: schema, interpolation, references). Needs no Docker engine.
#
# Uses `docker compose` (v2 plugin) when present, else `docker-compose`
# (v2 standalone, or v1.29 as packaged by Debian 12). Extra arguments are
# passed to `config`, e.g. `docker/validate.sh --services`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
file="$here/docker-compose.yml"
args=("$@")
[ "${#args[@]}" -gt 0 ] || args=(-q)

if docker compose version > /dev/null 2>&1; then
  echo "validate: $(docker compose version)" >&2
  docker compose -f "$file" config "${args[@]}"
elif command -v docker-compose > /dev/null 2>&1; then
  echo "validate: $(docker-compose version | head -n 1)" >&2
  docker-compose -f "$file" config "${args[@]}"
else
  # shellcheck disable=SC2016  # the backticks are literal text
  printf '%s\n' >&2 \
    'validate: no Docker Compose found (neither `docker compose` nor `docker-compose`).' \
    'Install one; `config` needs no running Docker engine:' \
    '  Debian 13 / Ubuntu:  apt-get install docker-compose       (Compose v2, also a `docker compose` plugin;' \
    '                                                             Ubuntu also names it docker-compose-v2)' \
    '  Debian 12:           apt-get install docker-compose       (Compose v1.29, `docker-compose`)' \
    "  Docker's apt repo:   apt-get install docker-compose-plugin" \
    '  Docker Desktop:      already included'
  exit 127
fi
echo "validate: $file is valid" >&2
