#!/usr/bin/env bash
# A database pod's configuration: the environment (env.sh) validated, and
# what follows from it (role, ordinal, slot name, files on the emptyDir).
# Sourced after lib-base.sh and env.sh by init.sh, readiness.sh and
# sync-passwords.sh, never executed on its own.
# shellcheck disable=SC2034 # The settings this file defines are read by the scripts that source it.
set -euo pipefail

# load_config: apply the environment contract, validate it, and derive:
# DATA_MOUNT (when empty), ORDINAL, IS_PRIMARY, REPLICATION_PGPASS,
# SYNC_STATE_FILE, SYNC_ALIVE_FILE and SLOT_NAME.
load_config() {
  load_env
  PGDATA=${PGDATA%/}
  _require_match PGDATA "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  _require_match PG_SOCKET_DIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  _require_match SECRETS_DIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  _require_match PGPORT "$UINT_RE" 'a TCP port number'
  _require_match POD_NAME "$POD_RE" 'a pod name such as pg-0'

  # DATA_MOUNT: where the data volume is mounted. Empty: what the official
  # image's layout implies (postgres:18+: PGDATA=<mount>/<major>/docker;
  # 16 and 17: PGDATA=<mount>/pgdata).
  if [[ -z $DATA_MOUNT ]]; then
    if [[ $PGDATA =~ ^(/.+)/[0-9]+/docker$ ]]; then
      DATA_MOUNT=${BASH_REMATCH[1]}
    else
      DATA_MOUNT=$(dirname -- "$PGDATA")
    fi
  fi
  [[ $DATA_MOUNT == / ]] || DATA_MOUNT=${DATA_MOUNT%/}
  _require_match DATA_MOUNT "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  [[ $PGDATA == "${DATA_MOUNT%/}"/?* ]] ||
    die "PGDATA='$PGDATA' must be a directory inside DATA_MOUNT='$DATA_MOUNT' (the data volume's mount path)"

  case $REPLICATION_ENABLED in
    true | false) ;;
    *) die "REPLICATION_ENABLED='$REPLICATION_ENABLED' is invalid: expected 'true' or 'false'" ;;
  esac
  _require_match REPLICATION_USER "$IDENT_RE" 'a lower-case SQL identifier'
  _require_match PRIMARY_PORT "$UINT_RE" 'a TCP port number'
  if [[ $REPLICATION_ENABLED == true ]]; then
    _require_match PRIMARY_HOST "$HOST_RE" 'a host name or IP address'
  fi

  if [[ -n $APP_USER ]]; then
    _require_match APP_USER "$IDENT_RE" 'a lower-case SQL identifier or empty'
  fi
  if [[ -n $APP_DATABASE ]]; then
    _require_match APP_DATABASE "$IDENT_RE" 'a lower-case SQL identifier or empty'
    [[ -n $APP_USER ]] || die "APP_DATABASE='$APP_DATABASE' needs APP_USER to own it, but APP_USER is empty"
  fi
  local role
  for role in "$REPLICATION_USER" "$APP_USER"; do
    [[ -z $role ]] && continue
    [[ $role != postgres ]] || die "role name 'postgres' is reserved for the superuser (REPLICATION_USER/APP_USER)"
    [[ $role != pg_* ]] || die "role name '$role' is invalid: the pg_ prefix is reserved"
  done
  if [[ -n $APP_USER && $APP_USER == "$REPLICATION_USER" ]]; then
    die "APP_USER='$APP_USER' must differ from REPLICATION_USER"
  fi

  _require_match READINESS_MAX_LAG_BYTES "$UINT_RE" 'a non-negative integer (bytes)'
  _require_match BOOTSTRAP_MAX_WAIT_SECONDS "$UINT_RE" 'a non-negative integer (seconds)'
  _require_match BOOTSTRAP_BACKOFF_MAX_SECONDS "$UINT_RE" 'a non-negative integer (seconds)'
  _require_match SYNC_INTERVAL_SECONDS "$UINT_RE" 'a non-negative integer (seconds)'

  # PRIMARY_POD names the pod that must be the primary (the pod sets it; it
  # changes only in the promotion runbook). Empty: the pod with ordinal 0.
  if [[ -n $PRIMARY_POD ]]; then
    _require_match PRIMARY_POD "$POD_RE" 'a pod name such as pg-0'
  fi
  ORDINAL=$(pod_ordinal "$POD_NAME")
  if [[ $REPLICATION_ENABLED != true ]]; then
    IS_PRIMARY=true
  elif [[ -n $PRIMARY_POD ]]; then
    [[ $POD_NAME == "$PRIMARY_POD" ]] && IS_PRIMARY=true || IS_PRIMARY=false
  else
    ((ORDINAL == 0)) && IS_PRIMARY=true || IS_PRIMARY=false
  fi
  REPLICATION_PGPASS="$PG_SOCKET_DIR/.pgpass-replication"
  SYNC_STATE_FILE="$PG_SOCKET_DIR/.password-sync.state"
  SYNC_ALIVE_FILE="$PG_SOCKET_DIR/.password-sync.alive"

  # The physical replication slot a standby streams through, on the primary:
  # the pod name with '-' and '.' as '_' (postgres-standby-1 -> postgres_standby_1).
  SLOT_NAME=${POD_NAME//[-.]/_}
  ((${#SLOT_NAME} <= 63)) || die "POD_NAME='$POD_NAME' is too long for a replication slot name (at most 63 characters)"
  # POD_NAMESPACE (downward API) only goes into the commands we suggest.
  if [[ -n $POD_NAMESPACE ]]; then
    _require_match POD_NAMESPACE "$POD_RE" 'a Kubernetes namespace name'
  fi
  # PEERS_HOST: the headless Service's name, whose A records are every pod of
  # the set (not-ready ones too). Empty: the empty-primary peer check is skipped.
  if [[ -n $PEERS_HOST ]]; then
    _require_match PEERS_HOST "$HOST_RE" 'a host name'
  fi
  _require_match PEER_CHECK_SECONDS "$UINT_RE" 'a non-negative integer (seconds)'
  if [[ -n $PROMOTE_ACCEPT_WAL_LOSS_UP_TO ]]; then
    _require_match PROMOTE_ACCEPT_WAL_LOSS_UP_TO '^[0-9A-F]{1,8}/[0-9A-F]{1,8}$' 'empty or a WAL position X/Y in upper-case hex, as the refusal names it (0/3000148)'
  fi
  _require_match TMPDIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  # libpq: never prompt, never wait forever for a connection.
  export PGCONNECT_TIMEOUT
}

# pod_ordinal NAME: print the StatefulSet ordinal (the suffix after the last "-").
pod_ordinal() {
  local name=$1 ord
  ord=${name##*-}
  [[ $name == *-* && $ord =~ $UINT_RE ]] || die "cannot read an ordinal from pod name '$name' (expected <name>-<number>)"
  printf '%d\n' "$((10#$ord))"
}
