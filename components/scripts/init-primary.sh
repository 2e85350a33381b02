#!/usr/bin/env bash
# The primary's data at pod start: a new cluster on an empty volume (after
# making sure no peer still runs one), or a standby's data promoted to a new
# timeline when this pod has become the primary (after making sure no peer
# holds WAL it lacks).
# shellcheck disable=SC2034 # TEMP_SERVER_WAIT_SECONDS is read by init-temp-server.sh.
set -euo pipefail

# peer_ips: every address of PEERS_HOST (the headless Service: its A and AAAA
# records, so IPv4, IPv6 and dual-stack clusters), one a line.
peer_ips() {
  getent ahosts "$PEERS_HOST" | awk '!seen[$1]++ { print $1 }'
}

# peer_label IP: "name (IP)" when reverse DNS names the pod at IP, else IP. A
# headless Service's endpoint with a hostname (a StatefulSet pod's) has a PTR
# record <hostname>.<service>.<ns>.svc.<zone> (kubernetes/dns
# docs/specification.md, 2.4.3 PTR Records); not-ready ones too, as the
# Service publishes them.
peer_label() {
  local name
  name=$(getent hosts "$1" | awk '{ print $2; exit }') || name=''
  name=${name%%.*}
  if [[ -n $name && $1 != "$name"* ]]; then
    printf '%s (%s)\n' "$name" "$1"
  else
    printf '%s\n' "$1"
  fi
}

# refuse_if_peer_running: the primary's volume is empty. When another pod of
# the set (an A or AAAA record of PEERS_HOST, the headless Service: IPv4,
# IPv6 and dual-stack clusters) runs PostgreSQL,
# it holds data that a new empty primary would silently replace: stop. Looks
# for PEER_CHECK_SECONDS, so that a peer that is just restarting is seen.
# Only with replication and PEERS_HOST set.
refuse_if_peer_running() {
  [[ $REPLICATION_ENABLED == true && -n $PEERS_HOST ]] || return 0
  local deadline ips ip rc rounds=0
  deadline=$(($(now_ms) + PEER_CHECK_SECONDS * 1000))
  log "primary: the volume is empty; checking for ${PEER_CHECK_SECONDS}s that no pod of $PEERS_HOST runs PostgreSQL"
  while :; do
    rounds=$((rounds + 1))
    if ips=$(peer_ips) && [[ -n $ips ]]; then
      for ip in $ips; do
        rc=0
        pg_isready -q -h "$ip" -p "$PRIMARY_PORT" -t 3 >/dev/null 2>&1 || rc=$?
        # 0: accepting connections; 1: rejecting them (starting up, recovering).
        if ((rc == 0 || rc == 1)); then
          die "the primary's volume is empty but $ip (a pod of this set) is running PostgreSQL with data: refusing to start an empty primary; follow docs/operations.md#primary-lost-its-volume (promote the standby with the data)"
        fi
      done
    elif ((rounds == 1)); then
      log "primary: $PEERS_HOST resolves to no address (no peers yet)"
    fi
    sleep_within 1 "$deadline" || break
  done
  log "primary: no pod of $PEERS_HOST runs PostgreSQL"
}

# drop_carried_physical_slots: after the promotion on the temporary server.
# Physical slots in a standby's data are stale: a clone carries none, so they
# date from an earlier time as the primary (a pod that failed over and back),
# and a slot of that time may be invalidated, which would stop its standby from
# streaming although its data is good. Our standbys make their slots again
# (check_primary_at_start); logical slots are the user's and stay.
drop_carried_physical_slots() {
  local slots slot
  slots=$(psql_at "$TEMP_SOCKET_DIR" -At -c "SELECT slot_name FROM pg_replication_slots WHERE slot_type = 'physical' AND NOT active ORDER BY 1")
  for slot in $slots; do # slot names are [a-z0-9_] only
    psql_at "$TEMP_SOCKET_DIR" -c "SELECT pg_drop_replication_slot('$slot')" >/dev/null
  done
  [[ -z $slots ]] ||
    log "promoting: dropped the physical replication slots this pod's data kept from an earlier time as the primary: ${slots//$'\n'/, } (its standbys make theirs again)"
}

# replay_end: the end of this data's WAL, once the temporary server (a hot
# standby that streams from nobody) has replayed all of pg_wal: its startup
# process then sleeps between tries for WAL no source has (wait event
# RecoveryRetrieveRetryInterval: src/backend/access/transam/xlogrecovery.c,
# WaitForWALToBecomeAvailable).
replay_end() {
  local deadline waiting
  deadline=$(($(now_ms) + TEMP_SERVER_WAIT_SECONDS * 1000))
  while :; do
    waiting=$(psql_at "$TEMP_SOCKET_DIR" -At -c "SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'startup'")
    [[ $waiting != RecoveryRetrieveRetryInterval ]] || break
    (($(now_ms) < deadline)) || die "promoting: $PGDATA/pg_wal was not replayed within ${TEMP_SERVER_WAIT_SECONDS}s"
    sleep 0.1
  done
  psql_at "$TEMP_SOCKET_DIR" -At -c 'SELECT pg_last_wal_replay_lsn()'
}

# refuse_if_peer_ahead LSN TLI: before the promotion of data whose WAL ends at
# LSN on timeline TLI. A pod of PEERS_HOST that answers IDENTIFY_SYSTEM with
# this database's system identifier, the same timeline and WAL past LSN holds
# commits this data lacks (an old primary still running, a standby that
# received more): promoting would drop them, so stop, unless
# PROMOTE_ACCEPT_WAL_LOSS_UP_TO is at or past the peer's position. A peer that
# does not answer (a dead node, a pod not yet started), or holds another
# database or timeline, is logged and not compared.
refuse_if_peer_ahead() {
  [[ -n $PEERS_HOST ]] || return 0
  local mine=$1 tli=$2 ips ip peer out sysid ptli plsn
  ips=$(peer_ips) || ips=''
  for ip in $ips; do
    peer=$(peer_label "$ip")
    # This pod's own address (the Service publishes pods that are not ready): nothing listens there yet.
    [[ $peer != "$POD_NAME ("* ]] || continue
    if ! replication_run out "$ip" -c IDENTIFY_SYSTEM; then
      log "promoting: $peer did not answer ($UP_ERROR): its WAL is not compared"
      continue
    fi
    IFS='|' read -r sysid ptli plsn _ <<<"$out"
    if [[ $sysid != "$CTL_SYSID" ]]; then
      log "promoting: $peer runs another database (system identifier $sysid, this pod's $CTL_SYSID): not compared"
    elif [[ $ptli != "$tli" ]]; then
      log "promoting: $peer is on timeline $ptli, this pod's WAL on timeline $tli: not compared"
    elif (($(lsn_int "$plsn") <= $(lsn_int "$mine"))); then
      log "promoting: $peer has WAL up to $plsn on timeline $tli, this pod $POD_NAME up to $mine: it holds nothing this pod lacks"
    elif [[ -n $PROMOTE_ACCEPT_WAL_LOSS_UP_TO ]] && (($(lsn_int "$plsn") <= $(lsn_int "$PROMOTE_ACCEPT_WAL_LOSS_UP_TO"))); then
      log "WARNING: promoting: $peer has WAL up to $plsn on timeline $tli, this pod $POD_NAME only up to $mine; PROMOTE_ACCEPT_WAL_LOSS_UP_TO=$PROMOTE_ACCEPT_WAL_LOSS_UP_TO accepts losing the commits in between"
    else
      die "promoting: refused: $peer has WAL up to $plsn on timeline $tli of this database, this pod $POD_NAME only up to $mine: promoting it would lose the commits in between. Keep them: set replication.primary back, let this pod catch up while nothing writes, then move it again. Or lose them: set replication.acceptWalLossUpTo: \"$plsn\" (docs/operations.md#lose-the-primary-node)"
    fi
  done
}

# promote_standby_data: this pod is the primary, but PGDATA is a standby's
# (standby.signal). Removing standby.signal alone would end recovery on the
# old timeline, so that a standby of the old primary could follow either; a
# real promotion starts a new timeline. It runs on a socket-only temporary
# server that streams from nobody, with at least the settings the primary
# ran with (a hot standby refuses less).
promote_standby_data() {
  local in_recovery tli mine
  log "promoting: $PGDATA is a standby's (standby.signal) but this pod is now the primary (PRIMARY_POD=${PRIMARY_POD:-$POD_NAME}); replaying its WAL, then pg_promote()"
  control_data || die "promoting: cannot read $PGDATA/global/pg_control with pg_controldata"
  # Replaying a standby's backlog can take long; the init container has no deadline.
  TEMP_SERVER_WAIT_SECONDS=900
  start_temp_server "$PGDATA" -c hot_standby=on -c primary_conninfo= -c primary_slot_name= \
    -c restore_command= "${CTL_HOT_STANDBY_ARGS[@]}"
  if [[ -n $PEERS_HOST ]]; then
    mine=$(replay_end)
    refuse_if_peer_ahead "$mine" "$(wal_timeline_at "$mine" "$CTL_SEGSIZE" "$CTL_TLI")"
  fi
  [[ $(psql_at "$TEMP_SOCKET_DIR" -At -c 'SELECT pg_promote(true, 60)') == t ]] ||
    die "promoting: pg_promote() did not finish within 60s"
  in_recovery=$(psql_at "$TEMP_SOCKET_DIR" -At -c 'SELECT pg_is_in_recovery()')
  [[ $in_recovery == f ]] || die "promoting: the server is still in recovery after pg_promote()"
  drop_carried_physical_slots
  psql_at "$TEMP_SOCKET_DIR" -c CHECKPOINT
  tli=$(psql_at "$TEMP_SOCKET_DIR" -At -c 'SELECT timeline_id FROM pg_control_checkpoint()')
  stop_temp_server
  log "promoting: this pod was a standby and is now configured as the primary; new timeline $tli"
}

# init_primary: keep the primary's data (promoting a standby's), or make a
# new cluster: initdb into "$PGDATA.partial", the roles and the application
# database on a socket-only temporary server, then the atomic rename.
init_primary() {
  local partial="$PGDATA.partial" su_pw
  if has_data primary initialisation; then
    if [[ -e $PGDATA/standby.signal ]]; then
      promote_standby_data
    fi
    return 0
  fi
  refuse_if_peer_running
  if [[ -n $PITR_FROM ]]; then
    restore_point_in_time "$partial"
    publish "$partial"
    log "primary: restored cluster ready in $PGDATA"
    return 0
  fi
  log "primary: initialising a new cluster in $partial"
  su_pw=$(secret_path postgres-password)
  run_on_volume "$partial" initdb -D "$partial" --username=postgres --pwfile="$su_pw" \
    --auth-local=peer --auth-host=scram-sha-256 \
    --data-checksums --encoding=UTF8
  start_temp_server "$partial"
  apply_roles "$TEMP_SOCKET_DIR"
  stop_temp_server
  publish "$partial"
  log "primary: new cluster ready in $PGDATA"
}
