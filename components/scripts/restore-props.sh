#!/usr/bin/env bash
# A database's own properties in a dump: its owner, comment, grants (GRANT
# CONNECT ... ON DATABASE) and settings (ALTER DATABASE ... SET, ALTER ROLE
# ... IN DATABASE ... SET, connection limit). pg_dump -Fc stores them in the
# archive, and pg_restore emits them only with --create (PostgreSQL 18.3
# pg_backup_archiver.c:3005-3015, _tocEntryRequired: "DATABASE and DATABASE
# PROPERTIES ... are restored in createDB mode, and not restored otherwise";
# :3115-3124 the same for ACL, COMMENT and SECURITY LABEL on the database),
# which restore.sh cannot use on a database that exists. So they are rendered
# here as SQL and applied in the restore's own transaction, after resetting
# the target's to what CREATE DATABASE leaves.
set -euo pipefail

# sql_ident NAME / sql_literal TEXT: NAME as a quoted SQL identifier, TEXT as a
# string literal (standard_conforming_strings is on in every session here).
sql_ident() {
  printf '"%s"\n' "${1//\"/\"\"}"
}
sql_literal() {
  printf "'%s'\n" "${1//\'/\'\'}"
}

# toc_list STEM: the dump's table of contents as pg_restore --create lists it
# (the database-level entries included), into $WORK/STEM.toc.
toc_list() {
  pg_restore --create -l -f "$WORK/$1.toc" -- "$DUMP/$1.dump" 2>"$ERR_FILE" ||
    die "cannot read the table of contents of $DUMP/$1.dump: $(one_line "$ERR_FILE")"
}

# dump_owner STEM DB: the owner of DB as dumped, from its DATABASE entry
# ("<id>; 1262 <oid> DATABASE - <db> <owner>", pg_restore -l).
dump_owner() {
  local stem=$1 db=$2 line prefix
  while IFS= read -r line; do
    prefix=${line%%" DATABASE - $db "*}
    if [[ $prefix != "$line" && $prefix =~ ^[0-9]+\;\ [0-9]+\ [0-9]+$ ]]; then
      printf '%s\n' "${line#*" DATABASE - $db "}"
      return 0
    fi
  done <"$WORK/$stem.toc"
  die "$DUMP/$stem.dump has no DATABASE entry for $db"
}

# create_database STEM: CREATE DATABASE as dumped (encoding, locale, owner):
# the statements render_props set apart.
create_database() {
  psql -X -q -w -v ON_ERROR_STOP=1 -d "$(superuser_conninfo "$PGHOST" postgres)" -f "$WORK/$1.create.sql" >/dev/null 2>"$ERR_FILE"
}

# reset_props_sql DB OWNER: SQL that gives DB the owner OWNER and the
# properties CREATE DATABASE leaves (no comment, no settings, no connection
# limit, default grants), so that the dump's own statements, applied next,
# leave exactly the dumped ones. A default ACL (NULL) is left as it is; any
# other is revoked and the defaults granted again (PUBLIC: CONNECT and
# TEMPORARY; the owner: all), from one snapshot of it (\gexec).
reset_props_sql() {
  local d o l
  d=$(sql_ident "$1")
  o=$(sql_ident "$2")
  l=$(sql_literal "$1")
  cat <<SQL
ALTER DATABASE $d OWNER TO $o;
ALTER DATABASE $d RESET ALL;
ALTER DATABASE $d CONNECTION LIMIT -1;
ALTER DATABASE $d IS_TEMPLATE false;
COMMENT ON DATABASE $d IS NULL;
SELECT format('ALTER ROLE %I IN DATABASE %I RESET ALL', r.rolname, d.datname)
  FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
  JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase WHERE d.datname = $l
\\gexec
SELECT q FROM (
  SELECT 1, format('REVOKE ALL ON DATABASE %I FROM %s CASCADE', d.datname,
                   CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::pg_catalog.regrole::text END)
    FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a WHERE d.datname = $l
  UNION
  SELECT 2, format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO PUBLIC', datname)
    FROM pg_catalog.pg_database WHERE datname = $l AND datacl IS NOT NULL
  UNION
  SELECT 3, format('GRANT ALL ON DATABASE %I TO %I', datname, pg_catalog.pg_get_userbyid(datdba))
    FROM pg_catalog.pg_database WHERE datname = $l AND datacl IS NOT NULL
) s (step, q) ORDER BY step
\\gexec
SQL
}

# render_props STEM: the dump's database-level statements as pg_restore
# --create renders them, split in two: $WORK/STEM.create.sql, the DATABASE
# entry (CREATE DATABASE and its owner), and $WORK/STEM.props.sql, the
# COMMENT, SECURITY LABEL, ACL and DATABASE PROPERTIES entries, which run in
# the database. pg_restore --create always emits the DATABASE and DATABASE
# PROPERTIES entries, whatever -L selects (_tocEntryRequired), and a \connect
# to the database after each (pg_backup_archiver.c:935-946; a name that needs
# quoting gets "\encoding SQL_ASCII" before it, fe_utils/string_utils.c:783);
# those lines are dropped (a \connect would leave the restore's transaction). pg_restore (15.14, 16.10, 17.6, 18.0 and later)
# wraps each \connect in "\unrestrict KEY" ... "\restrict KEY" with a random
# KEY; only that sequence is taken for one, so no text of the dump can pose
# as it.
render_props() {
  local stem=$1
  grep -E '^[0-9]+; [0-9]+ [0-9]+ (COMMENT - DATABASE |SECURITY LABEL - DATABASE |ACL - DATABASE )' \
    -- "$WORK/$stem.toc" >"$WORK/$stem.list" || true
  pg_restore --create -L "$WORK/$stem.list" -f "$WORK/$stem.rendered" -- "$DUMP/$stem.dump" 2>"$ERR_FILE" ||
    die "cannot read the properties of database $(dump_stem_name "$stem") from $DUMP/$stem.dump: $(one_line "$ERR_FILE")"
  awk -v create="$WORK/$stem.create.sql" '
    { line[NR] = $0 }
    key == "" && /^\\restrict / { key = $2 }
    # block(i): the last line of a reconnect that starts at line i, else 0.
    function block(i,    j) {
      j = i
      if (key != "") { if (line[j] != "\\unrestrict " key) return 0; j++ }
      if (line[j] ~ /^\\encoding /) j++
      if (line[j] !~ /^\\connect /) return 0
      if (key != "") { j++; if (line[j] != "\\restrict " key) return 0 }
      return j
    }
    END {
      for (i = 1; i <= NR; i++) {
        j = block(i)
        if (j == 0) { if (connected) print line[i]; else print line[i] > create; continue }
        # The first reconnect ends the DATABASE entry: its \unrestrict closes
        # the create part, its \restrict opens the rest.
        if (!connected && key != "") { print line[i] > create; print line[j] }
        connected = 1
        i = j
      }
    }' "$WORK/$stem.rendered" >"$WORK/$stem.props.sql"
}
