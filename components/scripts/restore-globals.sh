#!/usr/bin/env bash
# Applying a dump's globals (globals.sql.gz: pg_dumpall --globals-only) to the
# target server. Roles the target lacks are created as dumped (attributes,
# settings, comment, memberships); roles it has are left as they are unless
# OVERWRITE_ROLES is true (restore.sh --overwrite-roles): a SUPERUSER removed
# or a login disabled since the dump must not come back by accident.
set -euo pipefail

# The awk program that keeps, from pg_dumpall's globals script, what may be
# applied. It reads the names of the roles that exist (one a line), then the
# script. pg_dumpall writes one statement per line except where a string
# literal spans lines (a comment), with standard_conforming_strings on, names
# as fmtId quotes them (PostgreSQL 18.3 pg_dumpall.c:621, 935-936, 992, 1232);
# the program follows '...' and "..." to find where each statement ends.
# Statements about a role (CREATE ROLE, ALTER ROLE, COMMENT ON ROLE, SECURITY
# LABEL ... ON ROLE, GRANT ... ON PARAMETER ... TO role) are dropped when the
# role exists; a membership (GRANT role TO member) when both exist. Anything
# else (SET, tablespaces, psql's \restrict lines, comments) passes. It writes
# how many existing roles it left alone to the file KEPT.
# shellcheck disable=SC2016 # awk's own $ fields.
readonly GLOBALS_FILTER='
function ident(s, i,    c, out) {
  out = ""
  if (substr(s, i, 1) == "\"") {
    for (i++; i <= length(s); i++) {
      c = substr(s, i, 1)
      if (c == "\"" && substr(s, i + 1, 1) == "\"") { out = out c; i++ }
      else if (c == "\"") { i++; break }
      else out = out c
    }
  } else {
    for (; i <= length(s); i++) {
      c = substr(s, i, 1)
      if (c == " " || c == ";" || c == ",") break
      out = out c
    }
  }
  IDENT = out
  return i
}
function keep_role(name) { return overwrite == "true" || !(name in existing) }
function keep(s,    p, role) {
  if (s ~ /^CREATE ROLE /) { ident(s, 13); if (IDENT in existing) kept++; return keep_role(IDENT) }
  if (s ~ /^ALTER ROLE /) { ident(s, 12); return keep_role(IDENT) }
  if (s ~ /^COMMENT ON ROLE /) { ident(s, 17); return keep_role(IDENT) }
  if (s ~ /^SECURITY LABEL FOR /) {
    p = ident(s, 20)
    if (substr(s, p, 9) != " ON ROLE ") return 1
    ident(s, p + 9); return keep_role(IDENT)
  }
  if (s !~ /^GRANT /) return 1
  p = ident(s, 7); role = IDENT
  if (substr(s, p, 4) == " TO ") { ident(s, p + 4); return keep_role(role) || keep_role(IDENT) }
  p = index(s, " ON PARAMETER ")
  if (p == 0) return 1
  p = ident(s, p + 14)
  if (substr(s, p, 4) != " TO ") return 1
  ident(s, p + 4); return keep_role(IDENT)
}
FNR == NR { existing[$0] = 1; next }
!open && ($0 == "" || $0 ~ /^--/ || $0 ~ /^\\/) { print; next }
{
  stmt = open ? stmt "\n" $0 : $0
  open = 1
  for (i = 1; i <= length($0); i++) {
    c = substr($0, i, 1)
    if (quote == "" && (c == "\047" || c == "\"")) quote = c
    else if (c == quote) quote = ""
  }
  if (quote == "" && $0 ~ /;[ \t]*$/) {
    if (keep(stmt)) print stmt
    open = 0
  }
}
END { if (open) print stmt; print kept + 0 > kept_file }
'

# apply_globals: the roles and tablespaces; only "role (or tablespace) ...
# already exists" is an acceptable error.
apply_globals() {
  local out=$WORK/globals.out roles=$WORK/roles sql=$WORK/globals.sql kept line errors=() existing=0
  psql_db postgres -c 'SELECT rolname FROM pg_roles' >"$roles" 2>"$ERR_FILE" ||
    die "cannot list the roles of $PGHOST:$PGPORT: $(one_line "$ERR_FILE")"
  gzip -dc -- "$DUMP/globals.sql.gz" 2>"$ERR_FILE" |
    awk -v overwrite="$OVERWRITE_ROLES" -v kept_file="$WORK/kept" "$GLOBALS_FILTER" "$roles" - >"$sql" ||
    die "reading $DUMP/globals.sql.gz failed: $(one_line "$ERR_FILE")"
  kept=$(<"$WORK/kept")
  psql -X -q -w -v ON_ERROR_STOP=0 -d "$(superuser_conninfo "$PGHOST" postgres)" -f "$sql" >/dev/null 2>"$out" ||
    die "applying the globals failed: $(one_line "$out")"
  while IFS= read -r line; do
    if [[ $line == *'ERROR:  role "'*'" already exists' || $line == *'ERROR:  tablespace "'*'" already exists' ]]; then
      existing=$((existing + 1))
    elif [[ $line == *ERROR:* || $line == *FATAL:* ]]; then
      [[ ! $line =~ ^psql:[^:]*:([0-9]+):\ (.*)$ ]] || line="globals.sql line ${BASH_REMATCH[1]}: ${BASH_REMATCH[2]}"
      errors+=("$line")
    elif [[ -n $line ]]; then
      printf '%s\n' "$line" >&2
    fi
  done <"$out"
  if ((${#errors[@]} > 0)); then
    local IFS=';'
    die "applying the globals failed with ${#errors[@]} error(s):${errors[*]/#/ }"
  fi
  if [[ $OVERWRITE_ROLES == true ]]; then
    log "applied the globals (roles, memberships, tablespaces), over the $existing role(s) or tablespace(s) that existed (--overwrite-roles; roles keep their passwords)"
  else
    log "applied the globals (roles, memberships, tablespaces) for the roles the server lacked; left $kept existing role(s) as they are (--overwrite-roles re-applies the dump's attributes, settings and memberships to them)"
  fi
}
