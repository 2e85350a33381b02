#!/usr/bin/env bash
# The configuration files init.sh owns in PGDATA, rewritten on every pod
# start: pg_hba.conf, the standby settings (or their absence), and the include
# lines that pull them into postgresql.conf.
set -euo pipefail

# Name of the file (inside PGDATA) that holds the settings init.sh manages.
readonly MANAGED_CONF_NAME='k8s-replication.conf'

# remove_stale_temp_files: temporary files of a replace_file that was killed
# (pod deleted mid-write) would stay in PGDATA for ever.
remove_stale_temp_files() {
  local f
  for f in "$PGDATA"/*.conf.??????; do
    if [[ -f $f ]]; then
      log "removing the temporary file $f left by an interrupted start"
      rm -f -- "$f"
    fi
  done
}

# ensure_include NAME: postgresql.conf includes PGDATA/NAME (include_if_exists),
# exactly once. Rewritten whole through replace_file, never appended to: an
# append on a full volume could leave half a line that stops the server.
ensure_include() {
  local conf="$PGDATA/postgresql.conf" line="include_if_exists = '$1'"
  if grep -qxF -- "$line" "$conf"; then
    return 0
  fi
  { cat -- "$conf" && printf '\n# Added by init.sh (Kubernetes pod scripts).\n%s\n' "$line"; } | replace_file "$conf"
}

hba_line() {
  printf '%-7s %-12s %-16s %-8s %s\n' "$@"
}

# host_rules TYPE: the TCP rules, for connections of TYPE (host, hostssl).
host_rules() {
  if [[ $REPLICATION_ENABLED == true ]]; then
    hba_line "$1" replication "$REPLICATION_USER" all scram-sha-256
  fi
  hba_line "$1" replication all all reject
  hba_line "$1" all "$REPLICATION_USER" all reject
  hba_line "$1" all all all scram-sha-256
}

# write_hba: with TLS_DIR, the TCP rules for TLS connections first; then, with
# TLS_REQUIRED, a reject for every other TCP connection ('all' does not match
# replication connections, hence two lines), else the same rules for any TCP.
# (load_config refuses TLS_REQUIRED=true without TLS_DIR.)
write_hba() {
  {
    printf '%s\n' '# Managed by init.sh: rewritten on every pod start, edits are lost.'
    hba_line '# TYPE' DATABASE USER ADDRESS METHOD
    hba_line local all postgres '' peer
    hba_line local all "$REPLICATION_USER" '' reject
    if [[ -n $MONITOR_USER ]]; then
      # The metrics exporter: over the socket as OS user nobody only (write_ident), never over TCP.
      hba_line local all "$MONITOR_USER" '' 'peer map=monitor'
      hba_line host all "$MONITOR_USER" all reject
    fi
    hba_line local all all '' scram-sha-256
    if [[ -n $TLS_DIR ]]; then
      host_rules hostssl
    fi
    if [[ $TLS_REQUIRED == true ]]; then
      hba_line hostnossl all all all reject
      hba_line hostnossl replication all all reject
    else
      host_rules host
    fi
  } | replace_file "$PGDATA/pg_hba.conf"
  write_ident
}

# write_ident: pg_ident.conf, the map write_hba's peer line names. The server reads it from
# PGDATA (ident_file's default, like hba_file's: neither is set anywhere). Map monitor lets the
# exporter's OS user, nobody (uid 65534, resolved in the server's /etc/passwd), be MONITOR_USER,
# and nothing else; without MONITOR_USER the map is empty.
write_ident() {
  {
    printf '%s\n' '# Managed by init.sh: rewritten on every pod start, edits are lost.'
    if [[ -n $MONITOR_USER ]]; then
      printf '%-10s %-16s %s\n' monitor nobody "$MONITOR_USER"
    fi
  } | replace_file "$PGDATA/pg_ident.conf"
}

write_managed_conf() {
  {
    printf '%s\n' '# Managed by init.sh: rewritten on every pod start, edits are lost.'
    if [[ $IS_PRIMARY == true ]]; then
      printf '%s\n' '# This pod is a primary: no standby settings.'
    else
      # The passfile lives on the pod's emptyDir; the password never enters this file.
      # With TLS on, UPSTREAM_TLS: verify-full against the stack's CA.
      printf "primary_conninfo = 'host=%s port=%s user=%s passfile=%s application_name=%s connect_timeout=10%s'\n" \
        "$PRIMARY_HOST" "$PRIMARY_PORT" "$REPLICATION_USER" "$REPLICATION_PGPASS" "$POD_NAME" "${UPSTREAM_TLS:+ $UPSTREAM_TLS}"
      # This standby's slot on the primary (made by the clone, or at start).
      printf "primary_slot_name = '%s'\n" "$SLOT_NAME"
    fi
  } | replace_file "$PGDATA/$MANAGED_CONF_NAME"

  ensure_include "$MANAGED_CONF_NAME"

  # A primary_conninfo or primary_slot_name in postgresql.auto.conf (pg_basebackup
  # -R, ALTER SYSTEM) would override ours, and the first may carry a password: drop them.
  local auto="$PGDATA/postgresql.auto.conf" re='^[[:space:]]*primary_(conninfo|slot_name)[[:space:]]*='
  if [[ -f $auto ]] && grep -qE -- "$re" "$auto"; then
    log "removing primary_conninfo/primary_slot_name from postgresql.auto.conf"
    { grep -vE -- "$re" "$auto" || true; } | replace_file "$auto"
  fi

  if [[ $IS_PRIMARY == true ]]; then
    rm -f -- "$PGDATA/standby.signal"
  else
    create_empty_file "$PGDATA/standby.signal"
  fi
}
