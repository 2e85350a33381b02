#!/usr/bin/env bash
# The dumps job's configuration: the environment (env.sh) validated, for
# backup.sh (load_backup_config) and restore.sh (load_restore_config).
# Sourced after lib-base.sh, env.sh and dump-format.sh, never executed on its own.
set -euo pipefail

readonly COUNT_RE='^[0-9]{1,9}$'

# The hosts of BACKUP_HOSTS, in order.
HOSTS=()

# load_backup_config: apply backup.sh's environment contract and validate it;
# sets HOSTS.
load_backup_config() {
  local h
  load_env
  [[ $BACKUP_DIR == / ]] || BACKUP_DIR=${BACKUP_DIR%/}
  _require_match BACKUP_DIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  _require_match SECRETS_DIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  _require_match PGPORT "$UINT_RE" 'a TCP port number'
  read -r -a HOSTS <<<"$BACKUP_HOSTS"
  ((${#HOSTS[@]} > 0)) || die "BACKUP_HOSTS='$BACKUP_HOSTS' is invalid: expected host names separated by spaces"
  for h in "${HOSTS[@]}"; do
    [[ $h =~ $HOST_RE ]] ||
      die "BACKUP_HOSTS='$BACKUP_HOSTS' is invalid: '$h' is not a host name or IP address (expected host names separated by spaces)"
  done
  _require_match BACKUP_KEEP "$COUNT_RE" 'a non-negative integer (dumps; 0: no count rule)'
  _require_match BACKUP_KEEP_DAYS "$COUNT_RE" 'a non-negative integer (days; 0: no age rule)'
  _require_match BACKUP_CONNECT_SECONDS "$COUNT_RE" 'a non-negative integer (seconds)'
  if [[ -n $POD_NAME ]]; then
    _require_match POD_NAME "$POD_RE" 'a pod name'
  fi
  _require_match TMPDIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  if [[ -n $BACKUP_NOW ]]; then
    _require_match BACKUP_NOW "$DUMP_STAMP_RE" 'a UTC time like 20261122T010203Z'
  fi
  [[ -d $BACKUP_DIR ]] || die "BACKUP_DIR=$BACKUP_DIR is not a directory (is the dumps volume mounted?)"
  [[ -w $BACKUP_DIR ]] || die "BACKUP_DIR=$BACKUP_DIR is not writable by uid $(id -u)"
  [[ -d $TMPDIR && -w $TMPDIR ]] || die "TMPDIR=$TMPDIR is not a writable directory"
  # libpq: never prompt; each connection attempt is bounded.
  export PGCONNECT_TIMEOUT
}

# load_restore_config: apply restore.sh's environment contract and validate it.
load_restore_config() {
  load_env
  [[ $PGHOST =~ $HOST_RE || $PGHOST =~ $PATH_RE ]] || die "PGHOST='$PGHOST' is invalid: expected a host name, an IP address or a socket directory"
  _require_match PGPORT "$UINT_RE" 'a TCP port number'
  _require_match SECRETS_DIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  _require_match TMPDIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  [[ -d $TMPDIR && -w $TMPDIR ]] || die "TMPDIR=$TMPDIR is not a writable directory"
  export PGCONNECT_TIMEOUT
}
