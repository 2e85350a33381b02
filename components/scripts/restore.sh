#!/usr/bin/env bash
# Restore a dump written by backup.sh into the server at PGHOST:PGPORT.
#
#   restore.sh [--jobs N] [--only DATABASE]... DUMP_DIRECTORY
#
#   --jobs N         pg_restore -j N for each database (default 1)
#   --only DATABASE  restore only this database (repeatable); the globals are
#                    applied all the same (the database's owners and grantees
#                    need their roles)
#
# 1. Checks the dump first and refuses a partial one (<time>.partial, no
#    MANIFEST) or a corrupt one (a file missing, or its size or sha256 not the
#    MANIFEST's), before touching the server; refuses a standby as the target.
# 2. Applies the globals (roles, memberships, role settings, tablespaces).
#    Roles that exist keep their passwords (dumps carry none: a role created
#    here has no password until one is set; the stack's roles get theirs from
#    its Secret). "role (or tablespace) ... already exists" is expected; any
#    other error stops the restore before any database is touched.
# 3. Each database: when it exists, pg_restore --clean --if-exists into it (the
#    dump's objects are dropped and restored; objects not in the dump stay;
#    the database's own owner, settings and grants stay the target's); when it
#    does not, pg_restore --create (created as dumped, with its owner, settings
#    and grants). pg_restore stops at the first error (--exit-on-error) and the
#    restore fails.
#
# Restoring over live databases of the same stack needs their clients stopped
# first (scale the applications to zero): --clean drops and recreates the
# dumped objects, which waits for every lock on them and leaves clients
# working on a half-restored database meanwhile. Run ANALYZE (vacuumdb
# --all --analyze-in-stages) afterwards for fresh planner statistics.
#
# Environment: PGHOST (host name, IP address or socket directory), PGPORT,
# SECRETS_DIR (postgres-password: the superuser, through a 0600 passfile in a
# private directory under TMPDIR), TMPDIR (default /tmp), POD_NAME (logs).
# While it reads a dump it holds BACKUP_DIR/.lock shared (when the dump's
# directory has one), so that no backup run prunes the dump meanwhile.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

WORK=''
ERR_FILE=''
JOBS=1
ONLY=()
DUMP=''
LOCK_FD=''

usage() {
  printf '%s\n' "usage: $SCRIPT_NAME [--jobs N] [--only DATABASE]... DUMP_DIRECTORY" \
    "  restores a dump written by backup.sh into the server at PGHOST:PGPORT (see the header of this script)"
}

parse_args() {
  while (($# > 0)); do
    case $1 in
      --jobs)
        (($# >= 2)) || die "--jobs needs a number"
        [[ $2 =~ ^[1-9][0-9]?$ ]] || die "--jobs '$2' is invalid: expected a number from 1 to 99"
        JOBS=$2
        shift 2
        ;;
      --only)
        (($# >= 2)) || die "--only needs a database name"
        ONLY+=("$2")
        shift 2
        ;;
      -h | --help)
        usage
        exit 0
        ;;
      -*)
        usage >&2
        exit 2
        ;;
      *)
        [[ -z $DUMP ]] || {
          usage >&2
          exit 2
        }
        DUMP=$1
        shift
        ;;
    esac
  done
  [[ -n $DUMP ]] || {
    usage >&2
    exit 2
  }
}

load_restore_config() {
  local v
  for v in PGHOST PGPORT SECRETS_DIR; do
    [[ -n ${!v-} ]] || die "environment variable $v is required"
  done
  [[ $PGHOST =~ $HOST_RE || $PGHOST =~ $PATH_RE ]] || die "PGHOST='$PGHOST' is invalid: expected a host name, an IP address or a socket directory"
  _require_match PGPORT "$UINT_RE" 'a TCP port number'
  _require_match SECRETS_DIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  TMPDIR=${TMPDIR:-/tmp}
  _require_match TMPDIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  [[ -d $TMPDIR && -w $TMPDIR ]] || die "TMPDIR=$TMPDIR is not a writable directory"
  export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
}

cleanup() {
  local rc=$?
  if [[ -n $WORK ]]; then
    rm -rf -- "$WORK"
  fi
  exit "$rc"
}

# ------------------------------------------------------------ the dump

# lock_dumps: hold the dumps volume's lock shared while the dump is read.
lock_dumps() {
  local lock
  lock=$(dirname -- "$DUMP")/.lock
  [[ -f $lock ]] || return 0
  exec {LOCK_FD}<"$lock"
  if ! flock -s -n "$LOCK_FD"; then
    log "a backup run holds $lock; waiting for it to finish (it may prune old dumps)"
    flock -s "$LOCK_FD"
  fi
}

# verify_dump: refuse a partial or corrupt dump. Sets STEMS (the databases'
# file stems, in MANIFEST order) and MANIFEST_* facts for the log.
STEMS=()
MANIFEST_CREATED='' MANIFEST_HOST='' MANIFEST_STANDBY='' MANIFEST_VERSION=''
verify_dump() {
  local dir=$DUMP name problems=() line kind a b c rest sum size actual f
  local -A listed=()
  [[ -d $dir ]] || die "$dir is not a directory"
  name=$(basename -- "$dir")
  [[ $name != *.partial ]] || die "refusing $dir: a partial dump (its run did not finish)"
  [[ -f $dir/MANIFEST ]] || die "refusing $dir: it has no MANIFEST, so it is not a complete dump"
  IFS= read -r line <"$dir/MANIFEST" || true
  [[ $line == "$DUMP_FORMAT" ]] || die "refusing $dir: its MANIFEST does not start with '$DUMP_FORMAT'"
  while read -r kind a b c rest; do
    case $kind in
      created) MANIFEST_CREATED=$a ;;
      host) MANIFEST_HOST=$a ;;
      standby) MANIFEST_STANDBY=$a ;;
      server_version) MANIFEST_VERSION="$b${c:+ $c}${rest:+ $rest}" ;;
      database)
        if [[ $a =~ $DUMP_STEM_RE ]]; then
          STEMS+=("$a")
        else
          problems+=("bad database entry '$a'")
        fi
        ;;
      file)
        sum=$a size=$b f=$c
        if ! [[ $sum =~ ^[0-9a-f]{64}$ && $size =~ $UINT_RE && $f =~ $DUMP_STEM_RE ]]; then
          problems+=("bad file entry '$a $b $c'")
        elif [[ ! -f $dir/$f ]]; then
          problems+=("$f is missing")
        elif [[ $(stat -c %s -- "$dir/$f") != "$size" ]]; then
          problems+=("$f has $(stat -c %s -- "$dir/$f") bytes, the MANIFEST says $size")
        else
          actual=$(sha256sum -- "$dir/$f")
          if [[ ${actual%% *} == "$sum" ]]; then
            listed[$f]=1
          else
            problems+=("$f does not match its sha256 in the MANIFEST")
          fi
        fi
        ;;
    esac
  done < <(tail -n +2 -- "$dir/MANIFEST")
  [[ -n ${listed[globals.sql.gz]-} ]] || problems+=("globals.sql.gz is not a checked file of the MANIFEST")
  for f in "${STEMS[@]}"; do
    [[ -n ${listed[$f.dump]-} ]] || problems+=("$f.dump is not a checked file of the MANIFEST")
  done
  ((${#STEMS[@]} > 0)) || problems+=("the MANIFEST lists no database")
  if ((${#problems[@]} > 0)); then
    local IFS=';'
    die "refusing $dir: ${#problems[@]} problem(s):${problems[*]/#/ }; nothing was restored"
  fi
}

# select_databases: STEMS restricted to --only (each must be in the dump).
select_databases() {
  local want stem found chosen=()
  ((${#ONLY[@]} > 0)) || return 0
  for want in "${ONLY[@]}"; do
    found=''
    for stem in "${STEMS[@]}"; do
      if [[ $(dump_stem_name "$stem") == "$want" ]]; then
        found=$stem
      fi
    done
    [[ -n $found ]] || die "--only '$want': the dump has no such database"
    chosen+=("$found")
  done
  STEMS=("${chosen[@]}")
}

# ------------------------------------------------------------ the server

psql_db() {
  psql -X -q -w -A -t -v ON_ERROR_STOP=1 -d "$(superuser_conninfo "$PGHOST" "$1")" "${@:2}"
}

check_server() {
  local rc=0 recovery
  pg_isready -h "$PGHOST" -p "$PGPORT" -t "$PGCONNECT_TIMEOUT" >"$ERR_FILE" 2>&1 || rc=$?
  ((rc == 0)) || die "the server at $PGHOST:$PGPORT does not accept connections: $(one_line "$ERR_FILE")"
  recovery=$(psql_db postgres -c 'SELECT pg_is_in_recovery()' 2>"$ERR_FILE") ||
    die "cannot connect to $PGHOST:$PGPORT as postgres: $(one_line "$ERR_FILE")"
  [[ $recovery == f ]] || die "the server at $PGHOST:$PGPORT is a standby (in recovery): restore into the primary"
}

# apply_globals: the roles and tablespaces; only "role (or tablespace) ...
# already exists" is an acceptable error.
apply_globals() {
  local out=$WORK/globals.out line errors=() existing=0
  gzip -dc -- "$DUMP/globals.sql.gz" | psql -X -q -w -v ON_ERROR_STOP=0 -d "$(superuser_conninfo "$PGHOST" postgres)" -f - \
    >/dev/null 2>"$out" || die "applying the globals failed: $(one_line "$out")"
  while IFS= read -r line; do
    if [[ $line == *'ERROR:  role "'*'" already exists' || $line == *'ERROR:  tablespace "'*'" already exists' ]]; then
      existing=$((existing + 1))
    elif [[ $line == *ERROR:* || $line == *FATAL:* ]]; then
      [[ ! $line =~ ^psql:\<stdin\>:([0-9]+):\ (.*)$ ]] || line="globals.sql line ${BASH_REMATCH[1]}: ${BASH_REMATCH[2]}"
      errors+=("$line")
    elif [[ -n $line ]]; then
      printf '%s\n' "$line" >&2
    fi
  done <"$out"
  if ((${#errors[@]} > 0)); then
    local IFS=';'
    die "applying the globals failed with ${#errors[@]} error(s):${errors[*]/#/ }"
  fi
  log "applied the globals (roles, memberships, tablespaces); $existing role(s) or tablespace(s) existed already (roles keep their passwords)"
}

# restore_database STEM
restore_database() {
  local stem=$1 db exists started ms how
  db=$(dump_stem_name "$stem")
  started=$(now_ms)
  exists=$(psql_db postgres -v db="$db" 2>"$ERR_FILE" <<<"SELECT count(*) FROM pg_database WHERE datname = :'db'") ||
    die "cannot look up database $db: $(one_line "$ERR_FILE")"
  local -a args=(--exit-on-error)
  ((JOBS == 1)) || args+=(-j "$JOBS")
  if [[ $exists == 1 ]]; then
    how="into the existing database (--clean)"
    pg_restore "${args[@]}" --clean --if-exists -d "$(superuser_conninfo "$PGHOST" "$db")" -- "$DUMP/$stem.dump" 2>"$ERR_FILE" ||
      die "restoring database $db $how failed: $(one_line "$ERR_FILE")"
  else
    how="as a new database (--create)"
    pg_restore "${args[@]}" --create -d "$(superuser_conninfo "$PGHOST" postgres)" -- "$DUMP/$stem.dump" 2>"$ERR_FILE" ||
      die "restoring database $db $how failed: $(one_line "$ERR_FILE")"
  fi
  [[ ! -s $ERR_FILE ]] || cat -- "$ERR_FILE" >&2
  ms=$(($(now_ms) - started))
  log "restored database $db $how in $((ms / 1000)).$(((ms % 1000) / 100)) s"
}

main() {
  parse_args "$@"
  load_restore_config
  local started stem ms
  started=$(now_ms)
  DUMP=${DUMP%/}
  WORK=$(mktemp -d "$TMPDIR/restore.XXXXXX")
  ERR_FILE=$WORK/stderr
  trap cleanup EXIT

  lock_dumps
  verify_dump
  select_databases
  log "restoring $DUMP (taken $MANIFEST_CREATED from $MANIFEST_HOST, standby: $MANIFEST_STANDBY, PostgreSQL $MANIFEST_VERSION; checksums verified) into $PGHOST:$PGPORT${POD_NAME:+ from $POD_NAME}"

  write_pgpass "$WORK/pgpass" postgres postgres-password
  export PGPASSFILE=$WORK/pgpass
  check_server
  apply_globals
  for stem in "${STEMS[@]}"; do
    restore_database "$stem"
  done
  ms=$(($(now_ms) - started))
  log "restore complete: ${#STEMS[@]} database(s) from $DUMP into $PGHOST:$PGPORT in $((ms / 1000)).$(((ms % 1000) / 100)) s"
}

main "$@"
