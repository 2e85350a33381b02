#!/usr/bin/env bash
# Restoring into the target server: it must be a primary at the dump's major
# or a newer one; then each database in one transaction, its own properties
# included.
set -euo pipefail

psql_db() {
  psql -X -q -w -A -t -v ON_ERROR_STOP=1 -d "$(superuser_conninfo "$PGHOST" "$1")" "${@:2}"
}

# check_server: a primary that accepts connections, at the dump's major or a
# newer one (pg_dump's output is meant for the same or a newer server: an
# older one lacks what newer catalogs and settings need).
check_server() {
  local rc=0 facts recovery num version
  # sslmode=prefer for the probe alone (as backup-hosts.sh's probe): psql below says
  # what is wrong with a certificate that fails the job's PGSSLMODE.
  PGSSLMODE=prefer pg_isready -h "$PGHOST" -p "$PGPORT" -t "$PGCONNECT_TIMEOUT" >"$ERR_FILE" 2>&1 || rc=$?
  ((rc == 0)) || die "the server at $PGHOST:$PGPORT does not accept connections: $(one_line "$ERR_FILE")"
  facts=$(psql_db postgres -F ' ' -c "SELECT pg_is_in_recovery(), current_setting('server_version_num'), current_setting('server_version')" 2>"$ERR_FILE") ||
    die "cannot connect to $PGHOST:$PGPORT as postgres: $(one_line "$ERR_FILE")"
  read -r recovery num version <<<"$facts"
  [[ $recovery == f ]] || die "the server at $PGHOST:$PGPORT is a standby (in recovery): restore into the primary"
  if ((MANIFEST_VERSION_NUM / 10000 > num / 10000)); then
    die "refusing $DUMP: it was dumped from PostgreSQL $MANIFEST_VERSION (major $((MANIFEST_VERSION_NUM / 10000))) and the server at $PGHOST:$PGPORT runs PostgreSQL $version (major $((num / 10000))); a dump restores into the same major or a newer one: restore it into a stack at $((MANIFEST_VERSION_NUM / 10000)) or later; nothing was restored"
  fi
}

# restore_sql STEM DB OWNER: the restore of one database as one transaction,
# for psql: the target's database properties reset, the dump's applied, then
# the dump's objects (pg_restore --single-transaction --clean --if-exists:
# its "BEGIN;" comes after ours, and its "COMMIT;" ends both; without
# --single-transaction it would commit around large objects,
# pg_backup_archiver.c:1445-1478 in PostgreSQL 18.3). When pg_restore fails
# half-way, no COMMIT follows and psql's session ends with the transaction
# rolled back. (pg_restore refuses -j with one transaction, pg_restore.c:432.)
restore_sql() {
  local stem=$1 db=$2 owner=$3
  # No timeout of the database's settings applies to the restore (pg_restore's
  # script clears them too, but only after its BEGIN and our statements).
  printf 'SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET idle_in_transaction_session_timeout = 0;\n'
  printf 'BEGIN;\n'
  reset_props_sql "$db" "$owner"
  cat -- "$WORK/$stem.props.sql"
  pg_restore --single-transaction --clean --if-exists -f - -- "$DUMP/$stem.dump" 2>"$WORK/$stem.pg_restore"
}

# restore_database STEM: restore one database; the target's is left as it was
# when anything fails. A database the server lacks is created first as
# dumped, and dropped again when its restore fails.
restore_database() {
  local stem=$1 db exists started ms how owner rc=0
  db=$(dump_stem_name "$stem")
  started=$(now_ms)
  exists=$(psql_db postgres -v db="$db" 2>"$ERR_FILE" <<<"SELECT count(*) FROM pg_database WHERE datname = :'db'") ||
    die "cannot look up database $db: $(one_line "$ERR_FILE")"
  owner=$(dump_owner "$stem" "$db")
  render_props "$stem"
  how="into the existing database, in one transaction"
  if [[ $exists != 1 ]]; then
    how="as a new database, in one transaction"
    if ! create_database "$stem"; then
      cp -- "$ERR_FILE" "$ERR_FILE.kept"
      undo_created "$db" "$exists"
      die "creating database $db as dumped failed: $(one_line "$ERR_FILE.kept")"
    fi
  fi
  : >"$WORK/$stem.pg_restore"
  restore_sql "$stem" "$db" "$owner" | psql -X -q -w -v ON_ERROR_STOP=1 -d "$(superuser_conninfo "$PGHOST" "$db")" -f - \
    >/dev/null 2>"$ERR_FILE" || rc=$?
  # pg_restore's own "BEGIN;" inside ours only draws this warning.
  grep -v -x -F 'WARNING:  there is already a transaction in progress' -- "$ERR_FILE" >"$ERR_FILE.kept" || true
  cat -- "$WORK/$stem.pg_restore" >>"$ERR_FILE.kept"
  if ((rc != 0)); then
    undo_created "$db" "$exists"
    die "restoring database $db $how failed, and was rolled back: $(one_line "$ERR_FILE.kept")"
  fi
  [[ ! -s $ERR_FILE.kept ]] || cat -- "$ERR_FILE.kept" >&2
  ms=$(($(now_ms) - started))
  log "restored database $db $how in $((ms / 1000)).$(((ms % 1000) / 100)) s"
}

# undo_created DB EXISTED: drop DB again when this run created it (EXISTED
# is not 1): it holds nothing but what the failed restore left.
undo_created() {
  [[ $2 != 1 ]] || return 0
  if psql_db postgres -c "DROP DATABASE IF EXISTS $(sql_ident "$1") WITH (FORCE)" >/dev/null 2>"$ERR_FILE"; then
    log "dropped database $1 again: this run created it, and its restore failed"
  else
    log "could not drop database $1, which this run created: $(one_line "$ERR_FILE")"
  fi
}
