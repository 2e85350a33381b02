#!/usr/bin/env bash
# A standby's data at pod start: kept when there is some (its slot on the
# primary checked), else cloned from the primary with pg_basebackup into
# "$PGDATA.partial" and renamed once complete and durable.
set -euo pipefail

FLUSHER_PID=''

# start_flusher DIR: write dirty pages back while pg_basebackup copies, so that
# the final syncfs has little left to do (best effort; the final sync is not).
start_flusher() {
  (while sleep 0.2; do sync --file-system -- "$1" 2>/dev/null || :; done) &
  FLUSHER_PID=$!
}

# stop_flusher: stop the flusher, if one runs (also from init.sh's EXIT trap).
stop_flusher() {
  if [[ -n $FLUSHER_PID ]]; then
    kill "$FLUSHER_PID" 2>/dev/null || :
    wait "$FLUSHER_PID" 2>/dev/null || :
    FLUSHER_PID=''
  fi
}

# clone_from_primary: wait for the primary (exponential backoff, overall limit
# BOOTSTRAP_MAX_WAIT_SECONDS), clone it with a new replication slot, publish.
clone_from_primary() {
  local partial="$PGDATA.partial" deadline delay=1 attempt=0
  deadline=$(($(now_ms) + BOOTSTRAP_MAX_WAIT_SECONDS * 1000))
  while :; do
    attempt=$((attempt + 1))
    rm -rf -- "$partial"
    # Re-read the Secret each attempt: a password fixed or rotated while we wait is picked up.
    write_replication_pgpass
    if ! pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -t 5 >/dev/null 2>&1; then
      log "standby: primary $PRIMARY_HOST:$PRIMARY_PORT is not accepting connections yet (attempt $attempt)"
    else
      log "standby: cloning $PRIMARY_HOST:$PRIMARY_PORT into $partial (attempt $attempt)"
      # No -R: we write our own settings, so no password lands in the data directory.
      # --no-sync plus syncfs of the volume (in the background while copying, then
      # once more at the end): the same durability as pg_basebackup's file-by-file
      # fsync at a fraction of the cost. publish() renames only after the final sync.
      start_flusher "$partial"
      # The clone makes this pod's replication slot afresh: a slot left by its
      # old data (re-clone) may be lost, or hold WAL from long ago.
      if drop_slot && PGPASSFILE=$REPLICATION_PGPASS run_on_volume "$partial" pg_basebackup \
        -d "$UPSTREAM_TLS" -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPLICATION_USER" -w \
        --create-slot --slot="$SLOT_NAME" \
        -D "$partial" --checkpoint=fast --wal-method=stream --no-manifest --no-sync >&2 &&
        stop_flusher && sync --file-system -- "$partial"; then
        break
      fi
      stop_flusher
      log "standby: pg_basebackup failed (attempt $attempt)"
      rm -rf -- "$partial"
    fi
    sleep_within "$delay" "$deadline" ||
      die "standby: gave up after ${BOOTSTRAP_MAX_WAIT_SECONDS}s (BOOTSTRAP_MAX_WAIT_SECONDS) waiting for the primary"
    delay=$(next_backoff "$delay")
  done
  # A standby runs the primary's major or nothing: a clone of another major
  # (the primary's image is older or newer than this one's) is never published.
  local clone_major bin_major
  clone_major=$(data_major "$partial")
  bin_major=$(server_major)
  if [[ $clone_major != "$bin_major" ]]; then
    rm -rf -- "$partial"
    die "standby: the primary $PRIMARY_HOST:$PRIMARY_PORT runs PostgreSQL $clone_major but this standby's image runs PostgreSQL $bin_major; discarded the clone. Every pod must run the primary's major: roll the image back to PostgreSQL $clone_major (a new major is a new stack: docs/operations.md#upgrade-major)"
  fi
  # Never let a half-configured clone start as a primary.
  create_empty_file "$partial/standby.signal"
  publish "$partial"
  log "standby: clone complete in $PGDATA"
}

# next_backoff CURRENT: print the next exponential backoff delay, capped.
next_backoff() {
  local next=$(($1 * 2))
  ((next <= BOOTSTRAP_BACKOFF_MAX_SECONDS)) || next=$BOOTSTRAP_BACKOFF_MAX_SECONDS
  ((next >= 1)) || next=1
  printf '%d\n' "$next"
}

# init_standby: keep the standby's data (checking its slot and its primary),
# or clone the primary.
init_standby() {
  if has_data standby clone; then
    check_primary_at_start
    return 0
  fi
  clone_from_primary
}
