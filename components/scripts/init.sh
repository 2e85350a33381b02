#!/usr/bin/env bash
# Init container: runs on EVERY pod start, before postgres.
#
# Primary (PRIMARY_POD, by default ordinal 0; any pod when REPLICATION_ENABLED=false):
#   no data yet -> initdb into "$PGDATA.partial", create the roles and the
#   application database on a socket-only temporary server, then rename the
#   directory to "$PGDATA" (atomic: a pod killed half-way leaves only the
#   .partial directory, which the next start discards). With PITR_FROM, the
#   new cluster comes from that archive at a point in time (init-pitr.sh). Before that, with
#   PEERS_HOST set, it refuses when another pod of the set runs PostgreSQL.
#   A standby's data (standby.signal) -> promoted (a new timeline).
#   (init-primary.sh)
# Standby (every other pod, with replication):
#   no data yet -> wait for the primary (exponential backoff, overall limit
#   BOOTSTRAP_MAX_WAIT_SECONDS), pg_basebackup into "$PGDATA.partial" with a
#   new replication slot on the primary, rename.
#   Existing data is kept; its slot on the primary is made if missing, and
#   what would keep it from streaming (another database, a diverged timeline,
#   a lost slot) is logged. (init-standby.sh, pod-slots.sh)
# Both, every start: managed pg_hba.conf, standby settings (or their absence),
#   the WAL settings sized to the volume, the 0600 replication passfile on the
#   socket emptyDir. (init-managed-conf.sh, init-wal-sizing.sh)
#
# No password is ever written to the data volume: primary_conninfo names a
# passfile on the emptyDir instead of carrying one.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib-base.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib-base.sh"
# shellcheck source=pod-config.sh
. "$SCRIPT_DIR/pod-config.sh"
# shellcheck source=lib-secrets.sh
. "$SCRIPT_DIR/lib-secrets.sh"
# shellcheck source=pod-psql.sh
. "$SCRIPT_DIR/pod-psql.sh"
# shellcheck source=pod-roles.sh
. "$SCRIPT_DIR/pod-roles.sh"
# shellcheck source=init-volume.sh
. "$SCRIPT_DIR/init-volume.sh"
# shellcheck source=init-layout.sh
. "$SCRIPT_DIR/init-layout.sh"
# shellcheck source=init-temp-server.sh
. "$SCRIPT_DIR/init-temp-server.sh"
# shellcheck source=pod-control-data.sh
. "$SCRIPT_DIR/pod-control-data.sh"
# shellcheck source=pod-upstream.sh
. "$SCRIPT_DIR/pod-upstream.sh"
# shellcheck source=pod-slots.sh
. "$SCRIPT_DIR/pod-slots.sh"
# shellcheck source=init-pitr.sh
. "$SCRIPT_DIR/init-pitr.sh"
# shellcheck source=init-primary.sh
. "$SCRIPT_DIR/init-primary.sh"
# shellcheck source=init-standby.sh
. "$SCRIPT_DIR/init-standby.sh"
# shellcheck source=init-managed-conf.sh
. "$SCRIPT_DIR/init-managed-conf.sh"
# shellcheck source=init-wal-sizing.sh
. "$SCRIPT_DIR/init-wal-sizing.sh"

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
