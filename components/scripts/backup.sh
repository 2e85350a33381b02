#!/usr/bin/env bash
# Logical backup: what the dumps CronJob runs. One run writes one dump and
# prunes old ones; exit 0 only when the new dump is complete.
#
# Layout, on the dumps volume (BACKUP_DIR):
#   <UTC start time, 20261122T010203Z>/
#     globals.sql.gz   pg_dumpall --globals-only --no-role-passwords: roles,
#                      memberships, tablespaces; never a password hash (role
#                      passwords come from the stack's Secret)
#     <database>.dump  pg_dump -Fc of every database that allows connections
#                      (postgres included; not template0/template1):
#                      compressed, restorable one database at a time, in
#                      parallel (pg_restore -j). Names other than
#                      [A-Za-z0-9_.-] are %XX-encoded (dump_stem).
#     MANIFEST         written last: server version, the host dumped from and
#                      whether it was a standby, the databases, and the size
#                      and sha256 of every file (restore.sh checks them)
#   The run writes into <time>.partial/, syncs it and renames it (atomic
#   publish, as init.sh does): only a directory with that name and a MANIFEST
#   is a complete dump.
#
# Where from: the first of BACKUP_HOSTS that answers (the read-only Service,
#   i.e. a standby, then the read-write one), retried with backoff for up to
#   BACKUP_CONNECT_SECONDS (a new pod's first connections may wait on its
#   NetworkPolicy). A database whose dump a standby cancels ("conflict with
#   recovery": replay needed a lock or rows the dump held) is dumped again from
#   the next host (the primary). Each database is consistent on its own; a
#   dump from a standby is as of its replay position (MANIFEST:
#   replayed_until), its sequences may be up to 32 values ahead of the
#   primary's (pre-logged WAL), and it has no data of unlogged tables (a
#   standby has none; pg_dump keeps their definitions). A Service may send
#   each connection to another of its pods: the MANIFEST records the Service
#   and what its first connection found.
#
# One run at a time: an exclusive flock on BACKUP_DIR/.lock for the whole run
#   (non-blocking: a second run fails at once; restore.sh holds it shared
#   while it reads a dump). pg_dump inherits the lock, so a dump outliving a
#   killed script still keeps the next run out.
# Failure: any failed step stops the run with one line naming the database
#   (or step) and the error, removes the .partial directory and prunes nothing.
#   SIGTERM/SIGINT stop the running tool and clean up the same way.
# Leftovers: <time>.partial directories of killed runs are removed at the
#   start, under the lock: the lock is held as long as any process of a run
#   lives, so a .partial seen under the lock has no writer. Removing them
#   first also frees their space before the new dump needs it.
# Retention, only after the new dump is published: a complete dump is kept if
#   it is among the newest BACKUP_KEEP complete dumps (0: no count rule) OR
#   younger than BACKUP_KEEP_DAYS days by its name (0: no age rule); both 0
#   keep everything. The newest complete dump (and the one just written) is
#   never removed. A removed dump is renamed to <time>.partial first, so that
#   a crash half-way never leaves a directory that looks complete. The volume
#   must hold BACKUP_KEEP + 1 dumps: a full volume fails the run (and says so)
#   before anything is pruned.
#
# Environment: declared in components/pod_env_contract.py (DUMP_ENV), applied by load_env:
#   BACKUP_DIR, BACKUP_HOSTS (space-separated), PGPORT, SECRETS_DIR
#   (postgres-password: the superuser, over TCP with scram through a 0600
#   passfile in a private directory under TMPDIR), BACKUP_KEEP,
#   BACKUP_KEEP_DAYS, BACKUP_CONNECT_SECONDS, TMPDIR, POD_NAME (logs).
#   BACKUP_NOW (a time like the directory names) replaces the clock; only
#   tests set it.
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
# shellcheck source=backup-run.sh
. "$SCRIPT_DIR/backup-run.sh"
# shellcheck source=backup-hosts.sh
. "$SCRIPT_DIR/backup-hosts.sh"
# shellcheck source=backup-dump.sh
. "$SCRIPT_DIR/backup-dump.sh"
# shellcheck source=backup-retention.sh
. "$SCRIPT_DIR/backup-retention.sh"

usage() {
  printf '%s\n' "usage: $SCRIPT_NAME   (configured by the environment; see the header of this script)"
}

main() {
  if (($# > 0)); then
    case $1 in
      -h | --help)
        usage
        exit 0
        ;;
    esac
    usage >&2
    exit 2
  fi
  load_backup_config
  local started i db stem final secs
  started=$(now_ms)
  WORK=$(mktemp -d "$TMPDIR/backup.XXXXXX")
  ERR_FILE=$WORK/stderr
  trap cleanup EXIT
  trap 'on_signal TERM 143' TERM
  trap 'on_signal INT 130' INT

  take_lock
  log "backup run${POD_NAME:+ on $POD_NAME}: dumping from the first of $BACKUP_HOSTS that answers into $BACKUP_DIR"
  remove_leftovers

  write_pgpass "$WORK/pgpass" postgres postgres-password
  export PGPASSFILE=$WORK/pgpass
  choose_host
  IFS=$'\x1f' read -r IN_RECOVERY SERVER_VERSION_NUM SERVER_VERSION REPLAY_TS <<<"$PROBE"
  log "connected to ${HOSTS[HOST_INDEX]} ($(role_of "$IN_RECOVERY"), PostgreSQL $SERVER_VERSION)"

  STAMP=$(date -u -d "@$(now_epoch)" +%Y%m%dT%H%M%SZ)
  final=$BACKUP_DIR/$STAMP
  [[ ! -e $final ]] || die "a dump named $final already exists (two runs in the same second?); not overwriting it"
  PARTIAL=$final.partial
  mkdir -- "$PARTIAL" 2>"$ERR_FILE" || die_step "cannot create $PARTIAL"

  list_databases
  FILES=(globals.sql.gz)
  STEMS=() DB_HOST=() DB_STANDBY=()
  TOTAL_BYTES=0

  dump_step "the globals (roles, tablespaces)" "$PARTIAL/globals.sql" globals
  run_tool gzip -n -- "$PARTIAL/globals.sql" || die_step "compressing the globals failed"

  for i in "${!DATABASES[@]}"; do
    db=${DATABASES[i]}
    stem=$(dump_stem "$db")
    dump_step "database $db" "$PARTIAL/$stem.dump" database "$db"
    STEMS+=("$stem")
    DB_HOST+=("$STEP_HOST")
    DB_STANDBY+=("$([[ $STEP_STANDBY == t ]] && echo true || echo false)")
    FILES+=("$stem.dump")
    log "dumped database $db ($(human "$(stat -c %s -- "$PARTIAL/$stem.dump")") from $STEP_HOST)"
  done

  write_manifest
  mv -T -- "$PARTIAL" "$final"
  PARTIAL=''
  sync -- "$BACKUP_DIR" || log "warning: could not fsync $BACKUP_DIR"

  prune
  secs=$(($(now_ms) - started))
  log "backup complete: $final (${#DATABASES[@]} databases, $(human "$TOTAL_BYTES"), $((secs / 1000)).$(((secs % 1000) / 100)) s, from ${HOSTS[HOST_INDEX]} ($(role_of "$IN_RECOVERY")))"
}

main "$@"
