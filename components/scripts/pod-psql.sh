#!/usr/bin/env bash
# Sessions with a local server over its unix socket, as the superuser (peer
# authentication).
set -euo pipefail

# psql_at SOCKET_DIR [psql args...]: psql as the superuser over a unix socket
# (peer authentication), no psqlrc, no prompts, stop on the first error.
psql_at() {
  local sock=$1
  shift
  psql -X -q -w -v ON_ERROR_STOP=1 -h "$sock" -p "$PGPORT" -U postgres -d postgres "$@"
}

# psql_local [psql args...]: psql_at the pod's shared socket directory.
psql_local() {
  psql_at "$PG_SOCKET_DIR" "$@"
}

# local_server_up [TIMEOUT]: true when the local server accepts connections.
local_server_up() {
  pg_isready -q -h "$PG_SOCKET_DIR" -p "$PGPORT" -t "${1:-3}" >/dev/null 2>&1
}
