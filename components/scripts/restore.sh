#!/usr/bin/env bash
# Restore a dump written by backup.sh into the server at PGHOST:PGPORT.
#
#   restore.sh [--overwrite-roles] [--only DATABASE]... DUMP_DIRECTORY
#
#   --only DATABASE    restore only this database (repeatable); the globals
#                      are applied all the same (the database's owners and
#                      grantees need their roles)
#   --overwrite-roles  also re-apply the dump's attributes, settings, comments
#                      and memberships to roles that exist in the server
#
# 1. Checks the dump first and refuses a partial one (<time>.partial, no
#    MANIFEST) or a corrupt one (a file missing, or its size or sha256 not the
#    MANIFEST's), before touching the server; refuses a standby as the target,
#    and a server of an older major than the dump's (pg_dump output restores
#    into the same major or a newer one).
# 2. Applies the globals (roles, memberships, role settings, tablespaces).
#    Roles the server lacks are created as dumped; roles it has stay as they
#    are (a SUPERUSER removed or a login disabled since the dump stays so),
#    unless --overwrite-roles. Roles keep their passwords (dumps carry none: a
#    role created here has no password until one is set; the stack's roles
#    get theirs from its Secret). Any error but "role (or tablespace) ...
#    already exists" stops the restore before any database is touched.
# 3. Each database in one transaction (psql, pg_restore --single-transaction
#    --clean --if-exists): the dump's objects are dropped and restored (objects
#    not in the dump stay), and the database's own owner, comment, grants and
#    settings become the dump's (those pg_restore --create would restore; see
#    restore-props.sh), whether or not the database existed. A database the
#    server lacks is created first as dumped (encoding, locale, owner). Any
#    error rolls the transaction back: the database is as it was before (one
#    this run created is dropped again), and the restore stops; databases
#    restored before it in the same run stay restored.
#
# Restoring over live databases of the same stack needs their clients stopped
# first (scale the applications to zero): the restore holds an exclusive lock
# on every object it replaces until it commits, so clients wait (they never
# see a half-restored database). One transaction needs lock table room for
# every object of the database (max_locks_per_transaction); it cannot run in
# parallel (pg_restore.c refuses "--single-transaction and multiple jobs").
# Why one transaction and not a second database renamed over the first:
# docs/backups.md#restore-dump-same-stack. Run ANALYZE (vacuumdb
# --all --analyze-in-stages) afterwards for fresh planner statistics.
#
# Environment: declared in components/pod_env_contract.py (DUMP_ENV), applied by load_env:
# PGHOST (host name, IP address or socket directory), PGPORT, SECRETS_DIR
# (postgres-password: the superuser, through a 0600 passfile in a private
# directory under TMPDIR), TMPDIR, POD_NAME (logs).
# While it reads a dump it holds BACKUP_DIR/.lock shared (when the dump's
# directory has one), so that no backup run prunes the dump meanwhile.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib-base.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib-base.sh"
# shellcheck source=dump-format.sh
. "$SCRIPT_DIR/dump-format.sh"
# shellcheck source=dump-config.sh
. "$SCRIPT_DIR/dump-config.sh"
# shellcheck source=lib-secrets.sh
. "$SCRIPT_DIR/lib-secrets.sh"
# shellcheck source=restore-dump.sh
. "$SCRIPT_DIR/restore-dump.sh"
# shellcheck source=restore-server.sh
. "$SCRIPT_DIR/restore-server.sh"
# shellcheck source=restore-props.sh
. "$SCRIPT_DIR/restore-props.sh"
# shellcheck source=restore-globals.sh
. "$SCRIPT_DIR/restore-globals.sh"

WORK=''
ERR_FILE=''
OVERWRITE_ROLES=false
ONLY=()
DUMP=''
LOCK_FD=''

usage() {
  printf '%s\n' "usage: $SCRIPT_NAME [--overwrite-roles] [--only DATABASE]... DUMP_DIRECTORY" \
    "  restores a dump written by backup.sh into the server at PGHOST:PGPORT (see the header of this script)"
}

parse_args() {
  while (($# > 0)); do
    case $1 in
      --overwrite-roles)
        OVERWRITE_ROLES=true
        shift
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
        log "unknown option '$1' (--jobs is gone: a database restores in one transaction, which pg_restore runs in one job)"
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

cleanup() {
  local rc=$?
  if [[ -n $WORK ]]; then
    rm -rf -- "$WORK"
  fi
  exit "$rc"
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
  for stem in "${STEMS[@]}"; do
    toc_list "$stem"
  done
  apply_globals
  for stem in "${STEMS[@]}"; do
    restore_database "$stem"
  done
  ms=$(($(now_ms) - started))
  log "restore complete: ${#STEMS[@]} database(s) from $DUMP into $PGHOST:$PGPORT in $((ms / 1000)).$(((ms % 1000) / 100)) s"
}

main "$@"
