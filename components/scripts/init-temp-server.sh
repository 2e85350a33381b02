#!/usr/bin/env bash
# The temporary server init.sh runs on a data directory before the pod's
# postgres does (to create a new cluster's roles, to promote a standby's
# data). Socket only, in a private directory: no TCP, nothing but this script
# can connect. Started and stopped with `pg_ctl -w` as the official image's
# docker-entrypoint.sh does (docker_temp_server_start/_stop); the server's log
# goes to this script's stderr, so a failed start shows why.
set -euo pipefail

TEMP_SERVER_DATA=''
TEMP_SOCKET_DIR=''
# How long pg_ctl waits for the server to start, or to stop, in seconds.
TEMP_SERVER_WAIT_SECONDS=120

# start_temp_server DIR [postgres args...]: start a server on DIR and return
# once it accepts connections on its socket in TEMP_SOCKET_DIR. It logs no
# statement (the roles' passwords go through it).
start_temp_server() {
  local dir=$1
  shift
  TEMP_SOCKET_DIR=$(mktemp -d "$TMPDIR/pg-init.XXXXXX")
  # Last, so that no caller's argument overrides them.
  set -- "$@" -p "$PGPORT" -c listen_addresses= -c "unix_socket_directories=$TEMP_SOCKET_DIR" \
    -c log_statement=none -c log_min_duration_statement=-1 -c log_min_error_statement=panic
  TEMP_SERVER_DATA=$dir
  local why="the temporary server on $dir did not start (pg_ctl -w waits up to ${TEMP_SERVER_WAIT_SECONDS}s; the server's log is above)"
  pg_ctl -D "$dir" -o "$(printf '%q ' "$@")" -t "$TEMP_SERVER_WAIT_SECONDS" -w start >&2 || die "$why"
  # pg_ctl 18 (not 15 to 17) exits 0 when a server whose pg_control says "shut down in recovery" (a
  # standby's data) exits during start-up, whatever the reason: it takes it for a recovery
  # target's shutdown (src/bin/pg_ctl/pg_ctl.c, wait_for_postmaster_start ->
  # POSTMASTER_SHUTDOWN_IN_RECOVERY, "server shut down because of recovery target settings").
  pg_ctl -D "$dir" status >/dev/null || die "$why"
}

# stop_temp_server: fast shutdown (a clean checkpoint), waiting until it is down.
stop_temp_server() {
  pg_ctl -D "$TEMP_SERVER_DATA" -m fast -t "$TEMP_SERVER_WAIT_SECONDS" -w stop >&2 ||
    die "the temporary server on $TEMP_SERVER_DATA did not stop within ${TEMP_SERVER_WAIT_SECONDS}s"
  TEMP_SERVER_DATA=''
  rm -rf -- "$TEMP_SOCKET_DIR"
  TEMP_SOCKET_DIR=''
}

# stop_temp_server_on_exit: for the EXIT trap: stop a temporary server still
# running (fast, else immediate), quietly when there is none.
stop_temp_server_on_exit() {
  if [[ -n $TEMP_SERVER_DATA && -f $TEMP_SERVER_DATA/postmaster.pid ]]; then
    pg_ctl -D "$TEMP_SERVER_DATA" -m fast -t 60 -w stop >&2 ||
      pg_ctl -D "$TEMP_SERVER_DATA" -m immediate -t 30 -w stop >&2 || :
  fi
  TEMP_SERVER_DATA=''
  if [[ -n $TEMP_SOCKET_DIR ]]; then
    rm -rf -- "$TEMP_SOCKET_DIR"
    TEMP_SOCKET_DIR=''
  fi
}
