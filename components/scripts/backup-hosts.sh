#!/usr/bin/env bash
# Choosing the server a backup run dumps from: the first of BACKUP_HOSTS that
# answers, in rounds with backoff for up to BACKUP_CONNECT_SECONDS.
# shellcheck disable=SC2034 # PROBE and HOST_INDEX are read by backup.sh.
set -euo pipefail

# Longest pause between two rounds of connection attempts.
readonly CONNECT_BACKOFF_MAX_SECONDS=10

# probe HOST [TIMEOUT]: does HOST answer as a usable server? On success sets
# PROBE to "in_recovery<US>server_version_num<US>server_version<US>replay_timestamp";
# on failure sets PROBE_ERROR to why.
PROBE=''
PROBE_ERROR=''
probe() {
  local host=$1 timeout=${2:-$PGCONNECT_TIMEOUT} rc=0
  PROBE='' PROBE_ERROR=''
  ((timeout >= 2)) || timeout=2
  # sslmode=prefer for the probe alone: libpq's ping reports a certificate that fails
  # verify-full as "no response" (internal_ping in fe-connect.c: no SQLSTATE from the
  # server); psql below, with the job's PGSSLMODE, says what is wrong with it.
  PGSSLMODE=prefer pg_isready -h "$host" -p "$PGPORT" -t "$timeout" >"$ERR_FILE" 2>&1 || rc=$?
  if ((rc != 0)); then
    PROBE_ERROR="pg_isready: $(one_line "$ERR_FILE")"
    return 1
  fi
  if ! PROBE=$(PGCONNECT_TIMEOUT=$timeout psql -X -q -w -A -t -F $'\x1f' -v ON_ERROR_STOP=1 \
    -d "$(superuser_conninfo "$host" postgres)" 2>"$ERR_FILE" \
    -c "SELECT pg_is_in_recovery(), current_setting('server_version_num'), current_setting('server_version'),
               coalesce(pg_last_xact_replay_timestamp()::text, '')"); then
    PROBE_ERROR=$(one_line "$ERR_FILE")
    return 1
  fi
}

# choose_host: set HOST_INDEX to the first of HOSTS that answers, trying all
# of them in rounds with backoff until BACKUP_CONNECT_SECONDS have passed.
HOST_INDEX=''
choose_host() {
  local deadline delay=1 i left errors
  deadline=$(($(now_ms) + BACKUP_CONNECT_SECONDS * 1000))
  while :; do
    errors=''
    for i in "${!HOSTS[@]}"; do
      left=$(((deadline - $(now_ms)) / 1000))
      ((left <= PGCONNECT_TIMEOUT)) || left=$PGCONNECT_TIMEOUT
      if probe "${HOSTS[i]}" "$left"; then
        HOST_INDEX=$i
        return 0
      fi
      errors+="${errors:+; }${HOSTS[i]}: $PROBE_ERROR"
    done
    if (($(now_ms) >= deadline)); then
      die "no server answered within ${BACKUP_CONNECT_SECONDS}s (BACKUP_CONNECT_SECONDS) on any of BACKUP_HOSTS ($BACKUP_HOSTS): $errors"
    fi
    log "no server answers yet ($errors); next round in ${delay}s"
    sleep_within "$delay" "$deadline" || true
    delay=$((delay * 2))
    ((delay <= CONNECT_BACKOFF_MAX_SECONDS)) || delay=$CONNECT_BACKOFF_MAX_SECONDS
  done
}

# role_of IN_RECOVERY: "standby" or "primary".
role_of() {
  if [[ $1 == t ]]; then
    printf 'standby\n'
  else
    printf 'primary\n'
  fi
}
