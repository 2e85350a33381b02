#!/usr/bin/env bash
# A new stack's primary restored from an archive at a point in time, instead
# of initdb (the CloudNativePG way: bootstrap.recovery). Only ever an EMPTY
# volume: init_primary calls it where it would run initdb; data is never
# touched. PITR_FROM is the archive (another stack's), PITR_TARGET where the
# replay stops (latest, an LSN X/Y or a time). In "$PGDATA.partial", renamed
# by the caller once complete, like a new cluster:
#   1. wal-pitr.sh fills it from the newest base backup before the target and
#      writes the recovery settings (restore_command from PITR_FROM);
#   2. a temporary server (socket only) replays to the target and promotes
#      onto a new timeline; with this pod's own archive (WAL_TARGET) it
#      archives that timeline from the promotion on;
#   3. wal-pitr.sh --finish drops the recovery settings, which would otherwise
#      stop every standby cloned from this data at the same point.
# The pod's postgres then starts on promoted data: nothing is left to finish.
set -euo pipefail

# How long the replay to the target may take, in seconds (the init container
# has no probe; this bounds a replay that never ends).
PITR_REPLAY_MAX_SECONDS=86400

# wait_promoted: until the temporary server has left recovery (promoted at the
# target, or at the end of the archive with latest).
wait_promoted() {
  local deadline state
  deadline=$(($(now_ms) + PITR_REPLAY_MAX_SECONDS * 1000))
  while :; do
    state=$(psql_at "$TEMP_SOCKET_DIR" -At -c 'SELECT pg_is_in_recovery()')
    [[ $state != f ]] || return 0
    (($(now_ms) < deadline)) || die "point-in-time restore: the replay from $PITR_FROM did not reach $PITR_TARGET within ${PITR_REPLAY_MAX_SECONDS}s"
    sleep 0.2
  done
}

# restore_point_in_time DIR: steps 1-3 above into DIR (missing or empty).
restore_point_in_time() {
  local dir=$1 archive=()
  local -a point
  case $PITR_TARGET in
    latest) point=(--latest) ;;
    */*) point=(--lsn "$PITR_TARGET") ;;
    *) point=(--time "$PITR_TARGET") ;;
  esac
  log "primary: the volume is empty; restoring from the WAL archive $PITR_FROM to $PITR_TARGET instead of initdb"
  WAL_TARGET=$PITR_FROM PGDATA=$dir "$SCRIPT_DIR/wal-pitr.sh" "${point[@]}" ||
    die "point-in-time restore from $PITR_FROM failed (wal-pitr.sh above); the volume is left empty"
  if [[ -n $WAL_TARGET ]]; then
    archive=(-c archive_mode=on -c "archive_command=$SCRIPT_DIR/wal-archive.sh \"%p\" \"%f\"")
  fi
  start_temp_server "$dir" "${archive[@]}"
  wait_promoted
  stop_temp_server
  PGDATA=$dir "$SCRIPT_DIR/wal-pitr.sh" --finish
  log "primary: restored to $PITR_TARGET and promoted (timeline $(pg_controldata -D "$dir" | awk -F': *' '/TimeLineID/ { print $2; exit }'))"
}
