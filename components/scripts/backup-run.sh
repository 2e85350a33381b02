#!/usr/bin/env bash
# A backup run's control: the tools it runs as children (so that a signal
# stops them too), their error output, the one-run-at-a-time lock, the run's
# clock, and the cleanup of an incomplete dump.
set -euo pipefail

WORK=''
PARTIAL=''
CHILD=''
ERR_FILE=''
LOCK_FD=''

# cleanup: the EXIT trap: stop the running tool, remove the incomplete dump
# and the run's private files.
cleanup() {
  local rc=$?
  if [[ -n $CHILD ]]; then
    kill -TERM "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
    CHILD=''
  fi
  if [[ -n $PARTIAL && -e $PARTIAL ]]; then
    rm -rf -- "$PARTIAL"
    log "removed the incomplete dump $PARTIAL; earlier dumps are untouched"
  fi
  if [[ -n $WORK ]]; then
    rm -rf -- "$WORK"
  fi
  exit "$rc"
}

on_signal() {
  log "received SIG$1: stopping"
  exit "$2"
}

# run_tool COMMAND...: run COMMAND in the background with its stderr in
# ERR_FILE and wait for it, so that SIGTERM reaches this script (and through
# cleanup, the tool) at once. Returns the tool's exit status.
run_tool() {
  local rc=0
  "$@" 2>"$ERR_FILE" &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=''
  return "$rc"
}

# pass_warnings: copy a successful tool's messages (warnings) to the log.
pass_warnings() {
  [[ ! -s $ERR_FILE ]] || cat -- "$ERR_FILE" >&2
}

# volume_full_reason: the reason when ERR_FILE says the volume is full.
volume_full_reason() {
  grep -o -m 1 -e 'No space left on device' -e 'Disk quota exceeded' -- "$ERR_FILE" 2>/dev/null || true
}

# die_step WHAT: die with the error of the step WHAT (a full volume says so).
die_step() {
  local reason avail
  reason=$(volume_full_reason)
  if [[ -n $reason ]]; then
    avail=$(df -B1 --output=avail -- "$BACKUP_DIR" 2>/dev/null | tail -n 1) || avail=''
    avail=${avail// /}
    die "backup volume full: $1: $reason (${avail:-?} bytes free on $BACKUP_DIR); the incomplete dump is removed and nothing was pruned. Make room for one more dump: grow the dumps volume, or keep fewer dumps (BACKUP_KEEP, BACKUP_KEEP_DAYS) and remove the oldest by hand"
  fi
  die "$1: $(one_line "$ERR_FILE")"
}

# take_lock: the exclusive, non-blocking lock on BACKUP_DIR/.lock, held by
# this run (and the tools it starts) until it ends.
take_lock() {
  local lock=$BACKUP_DIR/.lock
  if ! { exec {LOCK_FD}>>"$lock"; } 2>"$ERR_FILE"; then
    die_step "cannot open the lock file $lock"
  fi
  flock -n "$LOCK_FD" ||
    die "another run holds $lock (a backup still running, or restore.sh reading a dump); not starting a second one"
}

# now_epoch: the run's clock in seconds (BACKUP_NOW when a test set it).
now_epoch() {
  if [[ -n $BACKUP_NOW ]]; then
    stamp_epoch "$BACKUP_NOW"
  else
    printf '%s\n' "$EPOCHSECONDS"
  fi
}

# stamp_epoch STAMP: seconds since the epoch of a dump name like 20261122T010203Z.
stamp_epoch() {
  local s=$1
  date -u -d "${s:0:4}-${s:4:2}-${s:6:2}T${s:9:2}:${s:11:2}:${s:13:2}Z" +%s
}
