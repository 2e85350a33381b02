#!/usr/bin/env bash
# Password sidecar: makes PostgreSQL follow the Secret.
#
#   sync-passwords.sh --once   one pass; exit 0 when applied or nothing to do,
#                              3 when the local server is not up yet, 1 on error
#   sync-passwords.sh          a pass every SYNC_INTERVAL_SECONDS, forever
#   sync-passwords.sh --alive  probe: 0 when the loop finished a pass recently
#
# Each pass:
# - rewrites the 0600 replication passfile on the socket emptyDir, so that a
#   rotated replication password reaches the next walreceiver (re)connection;
# - when the Secret's content (or the role set) changed since the last applied
#   pass and the local server is a primary, creates missing roles / the app
#   database and sets every role's password from its file
#   (postgres, REPLICATION_USER, APP_USER). A standby needs no ALTER ROLE:
#   roles replicate from the primary.
# - with TLS_DIR, when the content of the mounted TLS files differs from what
#   was last applied (and on the first pass), reloads the server
#   (pg_reload_conf), which re-reads its certificate and key: a renewed
#   certificate takes effect without a restart.
# - on a primary that archives, logs a warning while pg_wal holds more than the
#   WAL budget (max_wal_size, which init-wal-sizing.sh sizes to the volume) and
#   segments wait to be archived (warn_wal_backlog). Readiness stays as it is: a
#   primary whose archiving is stuck still serves, and an unready primary would
#   leave its Service; the alerts see it too (pg_wal_size_bytes,
#   pg_stat_archiver_failed_count).
# Only a SHA-256 of the inputs is remembered (on the emptyDir), never a password.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib-base.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib-base.sh"
# shellcheck source=pod-config.sh
. "$SCRIPT_DIR/pod-config.sh"
# shellcheck source=lib-secrets.sh
. "$SCRIPT_DIR/lib-secrets.sh"
# shellcheck source=pod-psql.sh
. "$SCRIPT_DIR/pod-psql.sh"
# shellcheck source=pod-roles.sh
. "$SCRIPT_DIR/pod-roles.sh"

SELF="$SCRIPT_DIR/$(basename -- "${BASH_SOURCE[0]}")"
readonly SELF

usage() {
  printf '%s\n' "usage: $SCRIPT_NAME [--once]" \
    "  --once  apply the passwords once and exit (0 applied or nothing to do, 3 server not up, 1 error)" \
    "  --alive probe: exit 0 when the loop completed a pass within 3 intervals + 30s" \
    "  (none)  loop forever, one pass every SYNC_INTERVAL_SECONDS"
}

# Digest of everything a pass applies: the role set and the password files.
inputs_hash() {
  local list files f digest
  list=$(secret_files)
  mapfile -t files <<<"$list"
  digest=$(
    {
      printf '%s\0' "replication=$REPLICATION_ENABLED" "replication_user=$REPLICATION_USER" \
        "app_user=$APP_USER" "app_database=$APP_DATABASE"
      for f in "${files[@]}"; do
        cat -- "$f"
        printf '\0'
      done
    } | sha256sum
  )
  printf '%s\n' "${digest%% *}"
}

# write_state VALUE [FILE]: replace FILE (default SYNC_STATE_FILE) with VALUE, atomically.
write_state() {
  local file=${2:-$SYNC_STATE_FILE} tmp
  tmp=$(mktemp "$file.XXXXXX")
  printf '%s\n' "$1" >"$tmp"
  mv -f -- "$tmp" "$file"
}

# tls_hash: SHA-256 of the mounted TLS files' content. The content, not the
# mtime: the kubelet updates a Secret volume by swapping its ..data symlink to a
# new directory, which mtime watching misses (zalando/spilo#585).
tls_hash() {
  local f digest
  digest=$(
    for f in tls.crt tls.key ca.crt; do
      cat -- "$TLS_DIR/$f"
      printf '\0'
    done | sha256sum
  )
  printf '%s\n' "${digest%% *}"
}

# reload_tls: reload the server when the TLS files changed since the last
# reload, and on the first pass (a swap between the server's start and this
# sidecar's first pass is not missed; a reload is harmless). On SIGHUP the
# postmaster builds a new TLS context from the files and keeps the old one when
# that fails (e.g. a key that does not match the certificate): PostgreSQL's
# process_pm_reload_request (postmaster.c) logs "SSL configuration was not
# reloaded", and be_tls_init (be-secure-openssl.c) replaces SSL_context only
# on success. Returns 3 when the server is not up.
reload_tls() {
  [[ -n $TLS_DIR ]] || return 0
  local hash state=''
  hash=$(tls_hash)
  if [[ -r $TLS_STATE_FILE ]]; then
    state=$(<"$TLS_STATE_FILE")
  fi
  [[ $state != "$hash" ]] || return 0
  if ! local_server_up 3; then
    log "local server is not accepting connections yet; TLS files not reloaded"
    return 3
  fi
  psql_local -A -t -c 'SELECT pg_reload_conf()' >/dev/null
  write_state "$hash" "$TLS_STATE_FILE"
  if [[ -z $state ]]; then
    log "reloaded the server configuration: first look at the TLS files in $TLS_DIR"
  else
    log "reloaded the server configuration: the TLS files in $TLS_DIR changed"
  fi
}

# The primary's WAL backlog in one row: in recovery, archive_mode, pg_wal's
# segment bytes, max_wal_size in bytes, segments waiting (archive_status/*.ready;
# pg_ls_waldir and pg_ls_archive_statusdir: PostgreSQL 12+), failed attempts and
# the last failed segment.
readonly WAL_BACKLOG_SQL="SELECT pg_is_in_recovery(), current_setting('archive_mode'),
  (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}\$'),
  pg_size_bytes(current_setting('max_wal_size')),
  (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'),
  failed_count, coalesce(last_failed_wal, 'none') FROM pg_stat_archiver"

# warn_wal_backlog: one log line per pass while the primary's pg_wal exceeds
# max_wal_size with segments waiting to be archived. Quiet otherwise, and when
# the server is not up (the pass says so elsewhere).
warn_wal_backlog() {
  local row recovery mode wal budget ready failed last mib=1048576
  local_server_up 3 || return 0
  # A failed look costs a log line, never the pass (the liveness heartbeat).
  if ! row=$(psql_local -A -t -F ' ' -c "$WAL_BACKLOG_SQL" 2>&1); then
    log "could not read the WAL backlog: ${row//$'\n'/ }"
    return 0
  fi
  read -r recovery mode wal budget ready failed last <<<"$row"
  [[ $recovery == f && $mode != off ]] || return 0
  ((wal > budget && ready > 0)) || return 0
  log "warning: pg_wal holds $((wal / mib)) MiB, over the WAL budget (max_wal_size $((budget / mib)) MiB), with" \
    "$ready segments waiting to be archived ($failed failed attempts, the last on $last): archiving is stuck or" \
    "behind, and pg_wal grows until the volume is full; the pod stays ready"
}

sync_once() {
  load_config
  warn_wal_backlog
  if [[ $REPLICATION_ENABLED == true ]]; then
    write_replication_pgpass
  fi
  # Called plainly so errexit stays in force; returns 3 while the server is not up.
  reload_tls

  local hash state='' in_recovery roles
  hash=$(inputs_hash)
  if [[ -r $SYNC_STATE_FILE ]]; then
    state=$(<"$SYNC_STATE_FILE")
  fi
  if [[ $state == "$hash applied" ]]; then
    return 0
  fi

  if ! local_server_up 3; then
    log "local server is not accepting connections yet; passwords not applied"
    return 3
  fi
  in_recovery=$(psql_local -A -t -c 'SELECT pg_is_in_recovery()')
  if [[ $in_recovery == t ]]; then
    if [[ $state != "$hash standby" ]]; then
      log "standby: roles replicate from the primary; replication passfile refreshed"
      write_state "$hash standby"
    fi
    return 0
  fi

  apply_roles "$PG_SOCKET_DIR"
  write_state "$hash applied"
  roles=postgres
  [[ $REPLICATION_ENABLED != true ]] || roles+=", $REPLICATION_USER"
  [[ -z $APP_USER ]] || roles+=", $APP_USER"
  log "applied the Secret's passwords to roles: $roles"
}

sync_loop() {
  load_config
  local interval=$SYNC_INTERVAL_SECONDS rc sleeper=''
  ((interval >= 1)) || interval=1
  trap 'log "stopping"; [[ -z $sleeper ]] || kill "$sleeper" 2>/dev/null; exit 0' TERM INT
  log "syncing passwords every ${interval}s"
  while :; do
    # Each pass runs in its own process so that errexit stays in force inside it.
    rc=0
    "$BASH" "$SELF" --once || rc=$?
    if ((rc != 0 && rc != 3)); then
      log "pass failed with exit status $rc; retrying in ${interval}s"
    else
      # Heartbeat for the liveness probe: the loop is alive and passes finish.
      : >"$SYNC_ALIVE_FILE"
    fi
    sleep "$interval" &
    sleeper=$!
    wait "$sleeper" || true
    sleeper=''
  done
}

# alive: the probe. A pass that keeps failing (not "server not up yet") stops
# the heartbeat, so Kubernetes restarts the sidecar and the failure shows up.
alive() {
  load_config
  local max_age now mtime
  max_age=$((3 * SYNC_INTERVAL_SECONDS + 30))
  [[ -f $SYNC_ALIVE_FILE ]] || {
    log "no completed pass yet"
    return 1
  }
  now=$(date +%s)
  mtime=$(stat -c %Y -- "$SYNC_ALIVE_FILE")
  ((now - mtime <= max_age)) || {
    log "last completed pass $((now - mtime))s ago (limit ${max_age}s)"
    return 1
  }
}

main() {
  case $# in
    0) sync_loop ;;
    1)
      case $1 in
        --once)
          # Called plainly (not in an || list) so errexit stays in force; a
          # non-zero return (3: server not up) becomes the exit status.
          sync_once
          exit 0
          ;;
        --alive)
          alive
          exit 0
          ;;
        -h | --help)
          usage
          exit 0
          ;;
      esac
      ;;
  esac
  usage >&2
  exit 2
}

main "$@"
