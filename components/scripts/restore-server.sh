#!/usr/bin/env bash
# Restoring into the target server: it must be a primary; the globals first
# (roles that exist keep their passwords), then each database, cleaned or
# created. Sourced by restore.sh after base.sh, env.sh, dump-format.sh and
# restore-dump.sh, never executed on its own.
set -euo pipefail

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
