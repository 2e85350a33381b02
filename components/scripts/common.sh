#!/usr/bin/env bash
# The settings this file defines are read by the scripts that source it.
# shellcheck disable=SC2034
# Helpers shared by the PostgreSQL pod scripts (init.sh, readiness.sh,
# sync-passwords.sh). Sourced, never executed on its own.
#
# Rules every helper keeps:
# - logs go to stderr, one line each;
# - a password is never printed, never put on a command line and never put
#   into an environment variable: it travels from the Secret file to libpq or
#   psql through a 0600 file or a pipe only;
# - every value that ends up in a configuration file is validated first, so
#   nothing needs quoting beyond what the helpers add.
set -euo pipefail
# Command substitutions ($(...)) stop at the first failure too.
shopt -s inherit_errexit

# Every file we create is private to the postgres user.
umask 077

SCRIPT_NAME=$(basename -- "${BASH_SOURCE[1]:-$0}")
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_NAME SCRIPT_DIR

# Identifier rule for role and database names we interpolate: a plain,
# lower-case SQL identifier that needs no quoting in pg_hba.conf, pgpass files
# or connection strings.
readonly IDENT_RE='^[a-z_][a-z0-9_]{0,62}$'
readonly PATH_RE='^/[A-Za-z0-9._/-]*$'
readonly HOST_RE='^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$'
readonly POD_RE='^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$'
readonly UINT_RE='^[0-9]+$'

# Name of the file (inside PGDATA) that holds the settings init.sh manages.
readonly MANAGED_CONF_NAME='k8s-replication.conf'
# Name of the file (inside PGDATA) with the settings sized to the data volume.
readonly VOLUME_CONF_NAME='k8s-volume.conf'

log() {
  printf '%(%Y-%m-%dT%H:%M:%S%z)T %s[%d]: %s\n' -1 "$SCRIPT_NAME" "$$" "$*" >&2
}

die() {
  log "FATAL: $*"
  exit 1
}

# _require_match NAME REGEX DESCRIPTION: the variable NAME must match REGEX.
_require_match() {
  local name=$1 re=$2 what=$3 value
  value=${!name-}
  [[ $value =~ $re ]] || die "$name='$value' is invalid: expected $what"
}

# load_config: validate the environment contract and fill in defaults.
# Sets ORDINAL, IS_PRIMARY, REPLICATION_PGPASS, SYNC_STATE_FILE, SYNC_ALIVE_FILE and SLOT_NAME.
load_config() {
  local v
  for v in PGDATA PGPORT PG_SOCKET_DIR POD_NAME SECRETS_DIR; do
    [[ -n ${!v-} ]] || die "environment variable $v is required"
  done
  PGDATA=${PGDATA%/}
  _require_match PGDATA "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  _require_match PG_SOCKET_DIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  _require_match SECRETS_DIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  _require_match PGPORT "$UINT_RE" 'a TCP port number'
  _require_match POD_NAME "$POD_RE" 'a pod name such as pg-0'

  # DATA_MOUNT: where the data volume is mounted. Unset: what the official
  # image's layout implies (postgres:18+: PGDATA=<mount>/<major>/docker;
  # 16 and 17: PGDATA=<mount>/pgdata).
  DATA_MOUNT=${DATA_MOUNT-}
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

  REPLICATION_ENABLED=${REPLICATION_ENABLED:-false}
  case $REPLICATION_ENABLED in
    true | false) ;;
    *) die "REPLICATION_ENABLED='$REPLICATION_ENABLED' is invalid: expected 'true' or 'false'" ;;
  esac
  REPLICATION_USER=${REPLICATION_USER:-replicator}
  _require_match REPLICATION_USER "$IDENT_RE" 'a lower-case SQL identifier'
  PRIMARY_PORT=${PRIMARY_PORT:-5432}
  _require_match PRIMARY_PORT "$UINT_RE" 'a TCP port number'
  PRIMARY_HOST=${PRIMARY_HOST-}
  if [[ $REPLICATION_ENABLED == true ]]; then
    _require_match PRIMARY_HOST "$HOST_RE" 'a host name or IP address'
  fi

  APP_USER=${APP_USER-}
  APP_DATABASE=${APP_DATABASE-}
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

  READINESS_MAX_LAG_BYTES=${READINESS_MAX_LAG_BYTES:-16777216}
  _require_match READINESS_MAX_LAG_BYTES "$UINT_RE" 'a non-negative integer (bytes)'
  BOOTSTRAP_MAX_WAIT_SECONDS=${BOOTSTRAP_MAX_WAIT_SECONDS:-600}
  _require_match BOOTSTRAP_MAX_WAIT_SECONDS "$UINT_RE" 'a non-negative integer (seconds)'
  BOOTSTRAP_BACKOFF_MAX_SECONDS=${BOOTSTRAP_BACKOFF_MAX_SECONDS:-30}
  _require_match BOOTSTRAP_BACKOFF_MAX_SECONDS "$UINT_RE" 'a non-negative integer (seconds)'
  SYNC_INTERVAL_SECONDS=${SYNC_INTERVAL_SECONDS:-10}
  _require_match SYNC_INTERVAL_SECONDS "$UINT_RE" 'a non-negative integer (seconds)'

  # PRIMARY_POD names the pod that must be the primary (the pod sets it; it
  # changes only in the promotion runbook). Unset: the pod with ordinal 0.
  PRIMARY_POD=${PRIMARY_POD-}
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
  POD_NAMESPACE=${POD_NAMESPACE-}
  if [[ -n $POD_NAMESPACE ]]; then
    _require_match POD_NAMESPACE "$POD_RE" 'a Kubernetes namespace name'
  fi
  # PEERS_HOST: the headless Service's name, whose A records are every pod of
  # the set (not-ready ones too). Unset: the empty-primary peer check is skipped.
  PEERS_HOST=${PEERS_HOST-}
  if [[ -n $PEERS_HOST ]]; then
    _require_match PEERS_HOST "$HOST_RE" 'a host name'
  fi
  PEER_CHECK_SECONDS=${PEER_CHECK_SECONDS:-20}
  _require_match PEER_CHECK_SECONDS "$UINT_RE" 'a non-negative integer (seconds)'
  # libpq: never prompt, never wait forever for a connection.
  export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
}

# pod_ordinal NAME: print the StatefulSet ordinal (the suffix after the last "-").
pod_ordinal() {
  local name=$1 ord
  ord=${name##*-}
  [[ $name == *-* && $ord =~ $UINT_RE ]] || die "cannot read an ordinal from pod name '$name' (expected <name>-<number>)"
  printf '%d\n' "$((10#$ord))"
}

# secret_path NAME: path of a Secret file; dies unless it holds one usable line.
# The check reads the content into a local variable only; nothing is printed.
secret_path() {
  # Keep the content out of an xtrace (bash -x) even when the caller enabled it.
  local -
  set +x
  local path="$SECRETS_DIR/$1" content
  [[ -r $path ]] || die "secret file $path is missing or unreadable"
  content=''
  IFS= read -r -d '' content <"$path" || true
  content=${content%$'\n'}
  [[ -n $content ]] || die "secret file $path is empty"
  [[ $content != *[$'\n\r']* ]] || die "secret file $path must hold a single line"
  printf '%s\n' "$path"
}

# secret_files: print, one per line, the Secret files this configuration uses
# (superuser always, replication with replication on, the app user's when set);
# dies like secret_path on a missing or unusable file.
secret_files() {
  secret_path postgres-password
  if [[ $REPLICATION_ENABLED == true ]]; then
    secret_path replication-password
  fi
  if [[ -n $APP_USER ]]; then
    secret_path password
  fi
}

# write_pgpass FILE ROLE SECRET: (re)write FILE as a 0600 passfile for ROLE
# with the password of the Secret file SECRET (escaped as libpq reads it).
write_pgpass() {
  local -
  set +x
  local file=$1 role=$2 src pw tmp
  src=$(secret_path "$3")
  pw=''
  IFS= read -r -d '' pw <"$src" || true
  pw=${pw%$'\n'}
  pw=${pw//\\/\\\\}
  pw=${pw//:/\\:}
  tmp=$(mktemp "$file.XXXXXX")
  printf '*:*:*:%s:%s\n' "$role" "$pw" >"$tmp"
  chmod 0600 "$tmp"
  mv -f -- "$tmp" "$file"
}

# write_replication_pgpass: (re)write the 0600 passfile libpq uses for
# replication connections, from the Secret (which may be 0440 and so is never
# handed to libpq directly). Lives on the pod's socket emptyDir, never on the
# data volume. Replaced atomically so a reconnecting walreceiver never reads a
# half-written file.
write_replication_pgpass() {
  write_pgpass "$REPLICATION_PGPASS" "$REPLICATION_USER" replication-password
}

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

# local_server_up: true when the local server accepts connections.
local_server_up() {
  pg_isready -q -h "$PG_SOCKET_DIR" -p "$PGPORT" -t "${1:-3}" >/dev/null 2>&1
}

# next_backoff CURRENT: print the next exponential backoff delay, capped.
next_backoff() {
  local next=$(($1 * 2))
  ((next <= BOOTSTRAP_BACKOFF_MAX_SECONDS)) || next=$BOOTSTRAP_BACKOFF_MAX_SECONDS
  ((next >= 1)) || next=1
  printf '%d\n' "$next"
}

# now_ms: wall-clock milliseconds. $SECONDS counts whole seconds from an
# arbitrary fraction, which would make "waited N seconds" up to 1s short.
now_ms() {
  local us=${EPOCHREALTIME//[!0-9]/}
  printf '%d\n' "$((10#$us / 1000))"
}

# sleep_within DELAY DEADLINE_MS: sleep DELAY seconds but not past DEADLINE_MS
# (a value of now_ms). Returns 1 when the deadline has already passed.
sleep_within() {
  local delay_ms=$(($1 * 1000)) left
  left=$(($2 - $(now_ms)))
  ((left > 0)) || return 1
  ((delay_ms <= left)) || delay_ms=$left
  sleep "$((delay_ms / 1000)).$(printf '%03d' "$((delay_ms % 1000))")"
}

# Session settings for any psql session that carries a password in a
# statement: nothing may write the statement text to the server log (the pod
# sets log_min_duration_statement, which would log a slow ALTER ROLE in full).
# Placeholder names (pg_stat_statements.*) are accepted even when the module is
# not loaded.
readonly QUIET_SESSION_SQL="SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_duration_sample = -1;
SET log_transaction_sample_rate = 0;
SET log_min_error_statement = 'panic';
SET debug_print_parse = off;
SET debug_print_rewritten = off;
SET debug_print_plan = off;
SET pg_stat_statements.track_utility = off;
SET password_encryption = 'scram-sha-256';"

# roles_sql: print the psql script that makes the roles, their passwords and
# the application database match the configuration. Idempotent. The script
# holds only file paths: psql reads each password itself (\set var `cat file`)
# and sends it as a quoted literal (:'pw'), so it never appears in an
# argument list, an environment variable or this script's output.
roles_sql() {
  local su_pw repl_pw app_pw
  su_pw=$(secret_path postgres-password)
  printf '%s\n' "$QUIET_SESSION_SQL"
  printf '%s\n' "\\set pw \`cat -- '$su_pw'\`" \
    "ALTER ROLE postgres WITH PASSWORD :'pw';"
  if [[ $REPLICATION_ENABLED == true ]]; then
    repl_pw=$(secret_path replication-password)
    printf '%s\n' \
      "SELECT format('CREATE ROLE %I', :'repl_user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'repl_user') \\gexec" \
      "\\set pw \`cat -- '$repl_pw'\`" \
      "ALTER ROLE :\"repl_user\" WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'pw';"
  fi
  if [[ -n $APP_USER ]]; then
    app_pw=$(secret_path password)
    printf '%s\n' \
      "SELECT format('CREATE ROLE %I', :'app_user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \\gexec" \
      "\\set pw \`cat -- '$app_pw'\`" \
      "ALTER ROLE :\"app_user\" WITH LOGIN PASSWORD :'pw';"
  fi
  printf '%s\n' '\unset pw'
  if [[ -n $APP_DATABASE ]]; then
    printf '%s\n' \
      "SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \\gexec"
  fi
}

# apply_roles SOCKET_DIR: run roles_sql against the server at SOCKET_DIR.
apply_roles() {
  local sql
  sql=$(roles_sql)
  printf '%s\n' "$sql" | psql_at "$1" \
    -v repl_user="$REPLICATION_USER" -v app_user="$APP_USER" -v app_db="$APP_DATABASE" -f -
}

# mb BYTES: BYTES as a whole number of megabytes for postgresql.conf (at least 1MB).
mb() {
  local n=$(($1 / 1048576))
  ((n >= 1)) || n=1
  printf '%dMB\n' "$n"
}

# volume_settings BYTES: the WAL settings for a data volume of BYTES bytes, one
# "name = 'value'" line each (init.sh writes them to $VOLUME_CONF_NAME on every
# start, so they follow the volume's real size when it grows).
# - max_wal_size: a quarter of the volume, at most 1GB (PostgreSQL's default 1GB
#   fills a 1Gi volume);
# - min_wal_size: a quarter of max_wal_size, at least 32MB;
#   both at least 32MB: PostgreSQL refuses less than two 16MB WAL segments;
# - with replication, wal_keep_size (an eighth of the volume, at most 1GB) lets a
#   briefly disconnected standby catch up, and max_slot_wal_keep_size (a quarter
#   of the volume) bounds the WAL a dead standby's replication slot can hold.
volume_settings() {
  local v=$1 mib=1048576 max_wal min_wal keep
  [[ $v =~ $UINT_RE ]] || die "volume size '$v' is invalid: expected a number of bytes"
  max_wal=$((v / 4))
  ((max_wal <= 1024 * mib)) || max_wal=$((1024 * mib))
  ((max_wal >= 32 * mib)) || max_wal=$((32 * mib))
  min_wal=$((max_wal / 4))
  ((min_wal >= 32 * mib)) || min_wal=$((32 * mib))
  ((min_wal <= max_wal)) || min_wal=$max_wal
  printf "max_wal_size = '%s'\n" "$(mb "$max_wal")"
  printf "min_wal_size = '%s'\n" "$(mb "$min_wal")"
  if [[ ${REPLICATION_ENABLED-} == true ]]; then
    keep=$((v / 8))
    ((keep <= 1024 * mib)) || keep=$((1024 * mib))
    printf "wal_keep_size = '%s'\n" "$(mb "$keep")"
    printf "max_slot_wal_keep_size = '%s'\n" "$(mb "$((v / 4))")"
  fi
}

# volume_write_failed FILE ERROR_TEXT: die with why a write to the data volume
# failed. A full volume (ENOSPC, or EDQUOT on a quota) gets its own message
# with the way out; the error text comes from the failed command, never guessed.
volume_write_failed() {
  local file=$1 err=${2//[$'\n\r']/ } reason='' avail
  case $err in
    *'No space left on device'*) reason='No space left on device' ;;
    *'Disk quota exceeded'*) reason='Disk quota exceeded' ;;
  esac
  if [[ -n $reason ]]; then
    avail=$(df -B1 --output=avail -- "$DATA_MOUNT" 2>/dev/null) || avail=''
    avail=${avail##*[!0-9 ]}
    avail=${avail// /}
    die "volume full: cannot write $file ($reason; ${avail:-?} bytes free on $DATA_MOUNT); grow the volume: raise pgstack:postgres.storageSize and run pulumi up (the PVCs are expanded in place), or kubectl -n ${POD_NAMESPACE:-<namespace>} patch pvc data-$POD_NAME -p '{\"spec\":{\"resources\":{\"requests\":{\"storage\":\"<bigger size>\"}}}}'"
  fi
  die "cannot write $file: ${err:-unknown error}"
}

# ------------------------------------------- dumps (backup.sh and restore.sh)

# A dump directory's name: the UTC time its run started.
readonly DUMP_STAMP_RE='^[0-9]{8}T[0-9]{6}Z$'
# A database's file name stem in a dump (see dump_stem).
readonly DUMP_STEM_RE='^[A-Za-z0-9_%-][A-Za-z0-9_.%-]*$'
# First line of a dump's MANIFEST.
readonly DUMP_FORMAT='pgstack-dump 1'

# superuser_conninfo HOST DBNAME: a libpq connection string for the superuser
# over TCP (or a socket directory) at HOST:$PGPORT; values quoted as libpq
# parses them, so any database name is taken literally.
superuser_conninfo() {
  local host=${1//\\/\\\\} db=${2//\\/\\\\}
  host=${host//\'/\\\'}
  db=${db//\'/\\\'}
  printf "host='%s' port=%s user=postgres dbname='%s'\n" "$host" "$PGPORT" "$db"
}

# dump_stem NAME: the file name stem of database NAME in a dump: NAME itself
# when it is made of [A-Za-z0-9_-] and dots (not first), else every other byte
# as %XX. dump_stem_name reverses it.
dump_stem() {
  local LC_ALL=C
  local name=$1 out='' c i
  for ((i = 0; i < ${#name}; i++)); do
    c=${name:i:1}
    if [[ $c == [A-Za-z0-9_-] ]] || { [[ $c == . ]] && ((i > 0)); }; then
      out+=$c
    else
      printf -v c '%%%02X' "'$c"
      out+=$c
    fi
  done
  printf '%s\n' "$out"
}

# dump_stem_name STEM: the database name a dump_stem encodes.
dump_stem_name() {
  local name
  printf -v name '%b' "${1//%/\\x}"
  printf '%s\n' "$name"
}

# one_line FILE: FILE's non-empty lines joined with ' / ' (at most 800
# characters), for a log line that quotes a tool's error output.
one_line() {
  local line out=''
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line//$'\r'/}
    [[ -n ${line//[[:space:]]/} ]] || continue
    out+="${out:+ / }$line"
  done <"$1"
  ((${#out} <= 800)) || out="${out:0:797}..."
  printf '%s\n' "${out:-no error output}"
}
