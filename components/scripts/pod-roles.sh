#!/usr/bin/env bash
# The roles, their passwords and the application database, made to match the
# configuration and the Secret. Used by init.sh (new cluster) and
# sync-passwords.sh (every change).
set -euo pipefail

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
  monitor_sql
  if [[ -n $APP_DATABASE ]]; then
    printf '%s\n' \
      "SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \\gexec"
  fi
}

# monitor_sql: the metrics exporter's role, when MONITOR_USER is set: a login
# without a password (it connects over the socket through the peer map only,
# init-managed-conf.sh) in pg_monitor, and nothing more. Idempotent. With
# MONITOR_USER empty an existing role is left as it is: without the peer map and
# the hba line no connection can log in as it (it has no password for scram), and
# turning metrics back on finds it ready.
monitor_sql() {
  [[ -n $MONITOR_USER ]] || return 0
  printf '%s\n' \
    "SELECT format('CREATE ROLE %I', :'monitor_user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'monitor_user') \\gexec" \
    "ALTER ROLE :\"monitor_user\" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD NULL;" \
    "SELECT format('GRANT pg_monitor TO %I', :'monitor_user') WHERE NOT pg_has_role(:'monitor_user', 'pg_monitor', 'MEMBER') \\gexec"
}

# apply_roles SOCKET_DIR: run roles_sql against the server at SOCKET_DIR.
apply_roles() {
  local sql
  sql=$(roles_sql)
  printf '%s\n' "$sql" | psql_at "$1" \
    -v repl_user="$REPLICATION_USER" -v app_user="$APP_USER" -v app_db="$APP_DATABASE" -v monitor_user="$MONITOR_USER" -f -
}
