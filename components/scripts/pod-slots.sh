#!/usr/bin/env bash
# This standby's physical replication slot on the primary (SLOT_NAME, from the
# pod name): the primary keeps the WAL a standby still needs while that
# standby is down (bounded by max_slot_wal_keep_size). Made by the clone, made
# again when missing, reported when lost.
set -euo pipefail

# slot_lost_message: the slot exists but keeps no WAL any more.
slot_lost_message() {
  printf 'standby fell behind: the primary no longer keeps the WAL it needs (slot %s lost); re-clone it: %s\n' \
    "$SLOT_NAME" "$(reclone_hint)"
}

# create_slot: create this standby's slot on the primary, reserving WAL from
# now on. Succeeds when it is created or already exists.
create_slot() {
  # shellcheck disable=SC2034 # upstream_run fills it (a nameref).
  local out
  if upstream_run out -c "CREATE_REPLICATION_SLOT \"$SLOT_NAME\" PHYSICAL RESERVE_WAL"; then
    return 0
  fi
  # 42710 duplicate_object: the slot is there already.
  [[ $UP_ERROR == *' 42710: '* ]]
}

# drop_slot: drop this standby's slot on the primary (before a new clone makes
# a new one). Succeeds when it is dropped or does not exist; fails while a
# walsender still uses it (e.g. the old pod's connection has not timed out yet).
drop_slot() {
  # shellcheck disable=SC2034 # upstream_run fills it (a nameref).
  local out
  if upstream_run out -c "DROP_REPLICATION_SLOT \"$SLOT_NAME\""; then
    log "standby: dropped the replication slot $SLOT_NAME left on the primary by this pod's old data"
    return 0
  fi
  # 42704 undefined_object: no such slot.
  [[ $UP_ERROR == *' 42704: '* ]] && return 0
  log "standby: cannot drop the replication slot $SLOT_NAME on the primary: $UP_ERROR"
  return 1
}

# check_primary_at_start: a standby with data, before postgres starts. Make
# sure its slot exists on the primary, and log anything that will keep it from
# streaming. Never refuses to start: this data stays readable, and it may be
# the copy to promote.
check_primary_at_start() {
  local sysid='' tli='' lsn='' problem
  if control_data; then
    sysid=$CTL_SYSID
    lsn=$CTL_LSN
    tli=$(wal_timeline_at "$CTL_LSN" "$CTL_SEGSIZE" "$CTL_TLI")
  else
    log "standby: cannot read $PGDATA/global/pg_control (pg_controldata); skipping the checks of its identity and timeline"
  fi
  if ! upstream_probe; then
    log "standby: cannot check the primary $PRIMARY_HOST:$PRIMARY_PORT now ($UP_ERROR); the WAL receiver keeps trying"
    return 0
  fi
  problem=$(upstream_problem "$sysid" "$tli" "$lsn")
  if [[ -n $problem ]]; then
    log "standby: WARNING: $problem"
    return 0
  fi
  case $UP_SLOT in
    missing)
      if create_slot; then
        log "standby: created the replication slot $SLOT_NAME on the primary"
      else
        log "standby: cannot create the replication slot $SLOT_NAME on the primary: $UP_ERROR"
      fi
      ;;
    lost) log "standby: WARNING: $(slot_lost_message)" ;;
    *) log "standby: the primary keeps this standby's WAL in the replication slot $SLOT_NAME" ;;
  esac
}
