#!/usr/bin/env bash
# Readiness probe, role-aware. Exit 0 when ready, 1 when not; one line on
# stderr says why either way.
#
# Primary (PRIMARY_POD, by default ordinal 0; any pod with replication off):
#   ready when it accepts connections and is not in recovery.
# Standby (every other pod, with replication): ready when in recovery, the WAL
#   receiver is streaming and the replay lag is <= READINESS_MAX_LAG_BYTES.
#   A standby that is NOT in recovery has been promoted behind our back
#   (split-brain risk) and is never ready.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

ready() {
  printf 'ready: %s\n' "$*" >&2
  exit 0
}

not_ready() {
  printf 'not ready: %s\n' "$*" >&2
  exit 1
}

# Lag in bytes between the newest WAL this standby knows the primary has
# (what it received, or what the primary last reported, whichever is newer)
# and what it has replayed. Empty when unknown.
readonly STATUS_SQL="
SELECT pg_is_in_recovery(),
       coalesce((SELECT status FROM pg_stat_wal_receiver LIMIT 1), 'none'),
       CASE WHEN pg_is_in_recovery() THEN
         greatest(0, pg_wal_lsn_diff(
           greatest(pg_last_wal_receive_lsn(),
                    (SELECT latest_end_lsn FROM pg_stat_wal_receiver LIMIT 1)),
           pg_last_wal_replay_lsn()))::bigint
       END"

main() {
  load_config
  local_server_up 3 || not_ready "server is not accepting connections on $PG_SOCKET_DIR port $PGPORT"

  local out err errfile in_recovery receiver lag
  errfile=$(mktemp "${TMPDIR:-/tmp}/readiness.XXXXXX")
  trap 'rm -f -- "$errfile"' EXIT
  if ! out=$(PGOPTIONS='-c statement_timeout=4000' PGCONNECT_TIMEOUT=3 psql_local -A -t -F '|' -c "$STATUS_SQL" 2>"$errfile"); then
    err=$(<"$errfile")
    not_ready "status query failed: ${err//$'\n'/ }"
  fi
  IFS='|' read -r in_recovery receiver lag <<<"$out"

  if [[ $IS_PRIMARY == true ]]; then
    if [[ $in_recovery == t ]]; then
      if [[ $REPLICATION_ENABLED == true ]]; then
        not_ready "pod $POD_NAME must be the primary but is in recovery"
      fi
      not_ready "in recovery although replication is disabled"
    fi
    ready "primary accepting connections"
  fi

  [[ $in_recovery == t ]] ||
    not_ready "pod $POD_NAME should be a standby but is not in recovery (promoted?): split-brain risk"
  [[ $receiver == streaming ]] ||
    not_ready "standby WAL receiver is '$receiver', not streaming from $PRIMARY_HOST:$PRIMARY_PORT"
  [[ -n $lag ]] || not_ready "standby replay lag is unknown"
  ((lag <= READINESS_MAX_LAG_BYTES)) ||
    not_ready "standby replay lag ${lag} bytes exceeds READINESS_MAX_LAG_BYTES=${READINESS_MAX_LAG_BYTES}"
  ready "standby streaming, replay lag ${lag} bytes"
}

main "$@"
