#!/usr/bin/env bash
# Init container: runs on EVERY pod start, before postgres.
#
# Primary (PRIMARY_POD, by default ordinal 0; any pod when REPLICATION_ENABLED=false):
#   no data yet -> initdb into "$PGDATA.partial", create the roles and the
#   application database on a socket-only temporary server, then rename the
#   directory to "$PGDATA" (atomic: a pod killed half-way leaves only the
#   .partial directory, which the next start discards). Before that, with
#   PEERS_HOST set, it refuses when another pod of the set runs PostgreSQL.
#   A standby's data (standby.signal) -> promoted (a new timeline).
#   (primary-bootstrap.sh)
# Standby (every other pod, with replication):
#   no data yet -> wait for the primary (exponential backoff, overall limit
#   BOOTSTRAP_MAX_WAIT_SECONDS), pg_basebackup into "$PGDATA.partial" with a
#   new replication slot on the primary, rename.
#   Existing data is kept; its slot on the primary is made if missing, and
#   what would keep it from streaming (another database, a diverged timeline,
#   a lost slot) is logged. (standby-clone.sh, slots.sh)
# Both, every start: managed pg_hba.conf, standby settings (or their absence),
#   the WAL settings sized to the volume, the 0600 replication passfile on the
#   socket emptyDir. (managed-conf.sh, wal-sizing.sh)
#
# No password is ever written to the data volume: primary_conninfo names a
# passfile on the emptyDir instead of carrying one.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=base.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/base.sh"
# shellcheck source=env.sh
. "$SCRIPT_DIR/env.sh"
# shellcheck source=pod-config.sh
. "$SCRIPT_DIR/pod-config.sh"
# shellcheck source=secrets.sh
. "$SCRIPT_DIR/secrets.sh"
# shellcheck source=local-psql.sh
. "$SCRIPT_DIR/local-psql.sh"
# shellcheck source=roles.sh
. "$SCRIPT_DIR/roles.sh"
# shellcheck source=volume.sh
. "$SCRIPT_DIR/volume.sh"
# shellcheck source=layout.sh
. "$SCRIPT_DIR/layout.sh"
# shellcheck source=temp-server.sh
. "$SCRIPT_DIR/temp-server.sh"
# shellcheck source=control-data.sh
. "$SCRIPT_DIR/control-data.sh"
# shellcheck source=upstream.sh
. "$SCRIPT_DIR/upstream.sh"
# shellcheck source=slots.sh
. "$SCRIPT_DIR/slots.sh"
# shellcheck source=primary-bootstrap.sh
. "$SCRIPT_DIR/primary-bootstrap.sh"
# shellcheck source=standby-clone.sh
. "$SCRIPT_DIR/standby-clone.sh"
# shellcheck source=managed-conf.sh
. "$SCRIPT_DIR/managed-conf.sh"
# shellcheck source=wal-sizing.sh
. "$SCRIPT_DIR/wal-sizing.sh"

cleanup() {
  local rc=$?
  stop_flusher
  stop_temp_server_on_exit
  exit "$rc"
}

main() {
  [[ $# -eq 0 ]] || die "usage: init.sh (no arguments; configured through the environment)"
  ((EUID != 0)) || die "must run as the postgres user, not root"
  load_config
  check_server_major
  trap cleanup EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT

  local role=standby
  if [[ $IS_PRIMARY == true ]]; then
    role=primary
  fi
  log "pod $POD_NAME (ordinal $ORDINAL) starts as $role; replication=$REPLICATION_ENABLED"

  # PGDATA's parent on the volume is made only when a new cluster is (has_data).
  mkdir -p -- "$PG_SOCKET_DIR"
  secret_files >/dev/null
  rm -f -- "$REPLICATION_PGPASS".*
  if [[ $REPLICATION_ENABLED == true ]]; then
    write_replication_pgpass
  fi

  if [[ $IS_PRIMARY == true ]]; then
    init_primary
  else
    init_standby
  fi

  # fsGroup handling can loosen the mode; postgres refuses to start unless 0700/0750.
  chmod 0700 -- "$PGDATA"
  remove_stale_temp_files
  write_hba
  write_managed_conf
  write_volume_conf
  log "done; postgres may start"
}

main "$@"
