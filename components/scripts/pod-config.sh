#!/usr/bin/env bash
# A database pod's configuration: the environment checked (load_env), and what
# follows from it (role, ordinal, slot name, files on the emptyDir).
# shellcheck disable=SC2034 # The settings this file defines are read by the scripts that source it.
set -euo pipefail

# load_config: apply the environment contract, validate it, and derive:
# DATA_MOUNT (when empty), ORDINAL, IS_PRIMARY, REPLICATION_PGPASS,
# SYNC_STATE_FILE, SYNC_ALIVE_FILE, TLS_STATE_FILE, SLOT_NAME and UPSTREAM_TLS.
load_config() {
  # The formats of the variables are checked by load_env (env-contract.sh);
  # what follows are the rules between them.
  load_env
  PGDATA=${PGDATA%/}

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
  [[ $PGDATA == "${DATA_MOUNT%/}"/?* ]] ||
    die "PGDATA='$PGDATA' must be a directory inside DATA_MOUNT='$DATA_MOUNT' (the data volume's mount path)"

  if [[ $REPLICATION_ENABLED == true && -z $PRIMARY_HOST ]]; then
    die "PRIMARY_HOST='' is invalid: expected a host name or IP address (REPLICATION_ENABLED=true)"
  fi
  if [[ $TLS_REQUIRED == true && -z $TLS_DIR ]]; then
    die "TLS_REQUIRED=true needs TLS_DIR (the mounted server certificate and CA), but TLS_DIR is empty"
  fi
  if [[ -n $APP_DATABASE && -z $APP_USER ]]; then
    die "APP_DATABASE='$APP_DATABASE' needs APP_USER to own it, but APP_USER is empty"
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

  # PRIMARY_POD names the pod that must be the primary (the pod sets it; it
  # changes only in the promotion runbook). Empty: the pod with ordinal 0.
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
  TLS_STATE_FILE="$PG_SOCKET_DIR/.tls-reload.state"

  # libpq keywords of every connection to the primary (the clone, the checks, the WAL
  # stream): with TLS on, the primary's certificate must chain to the stack's CA and name
  # the host connected to. Explicit, never PGSSLMODE in the environment: pg_isready (the
  # peer check, the wait for the primary) must see a server as up whatever its certificate.
  UPSTREAM_TLS=''
  if [[ -n $TLS_DIR ]]; then
    UPSTREAM_TLS="sslmode=verify-full sslrootcert=${TLS_DIR%/}/ca.crt"
  fi

  # The physical replication slot a standby streams through, on the primary:
  # the pod name with '-' and '.' as '_' (postgres-standby-1 -> postgres_standby_1).
  SLOT_NAME=${POD_NAME//[-.]/_}
  ((${#SLOT_NAME} <= 63)) || die "POD_NAME='$POD_NAME' is too long for a replication slot name (at most 63 characters)"
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
