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
# Environment: declared in components/pod_env.py (DUMP_ENV), applied by env.sh:
# PGHOST (host name, IP address or socket directory), PGPORT, SECRETS_DIR
# (postgres-password: the superuser, through a 0600 passfile in a private
# directory under TMPDIR), TMPDIR, POD_NAME (logs).
# While it reads a dump it holds BACKUP_DIR/.lock shared (when the dump's
# directory has one), so that no backup run prunes the dump meanwhile.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=base.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/base.sh"
# shellcheck source=env.sh
. "$SCRIPT_DIR/env.sh"
# shellcheck source=dump-format.sh
. "$SCRIPT_DIR/dump-format.sh"
# shellcheck source=dump-config.sh
. "$SCRIPT_DIR/dump-config.sh"
# shellcheck source=secrets.sh
. "$SCRIPT_DIR/secrets.sh"
# shellcheck source=restore-dump.sh
. "$SCRIPT_DIR/restore-dump.sh"
# shellcheck source=restore-server.sh
. "$SCRIPT_DIR/restore-server.sh"

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
  apply_globals
  for stem in "${STEMS[@]}"; do
    restore_database "$stem"
  done
  ms=$(($(now_ms) - started))
  log "restore complete: ${#STEMS[@]} database(s) from $DUMP into $PGHOST:$PGPORT in $((ms / 1000)).$(((ms % 1000) / 100)) s"
}

main "$@"
