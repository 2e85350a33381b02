#!/usr/bin/env bash
# Writing to the data volume: atomic replacements and publication, and a full
# volume reported with the way out.
set -euo pipefail

# volume_write_failed FILE ERROR_TEXT: die with why a write to the data volume
# failed. A full volume (ENOSPC, or EDQUOT on a quota) gets its own message
# with the way out; the error text comes from the failed command, never guessed.
volume_write_failed() {
  local file=$1 err=${2//[$'\n\r']/ } reason='' avail
  case $err in
    *'No space left on device'*) reason='No space left on device' ;;
    *'Disk quota exceeded'*) reason='Disk quota exceeded' ;;
  esac
  if [[ -n $reason ]]; then
    avail=$(df -B1 --output=avail -- "$DATA_MOUNT" 2>/dev/null) || avail=''
    avail=${avail##*[!0-9 ]}
    avail=${avail// /}
    die "volume full: cannot write $file ($reason; ${avail:-?} bytes free on $DATA_MOUNT); grow the volume: raise pgstack:postgres.storageSize and run pulumi up (the PVCs are expanded in place), or kubectl -n ${POD_NAMESPACE:-<namespace>} patch pvc data-$POD_NAME -p '{\"spec\":{\"resources\":{\"requests\":{\"storage\":\"<bigger size>\"}}}}'"
  fi
  die "cannot write $file: ${err:-unknown error}"
}

# replace_file PATH: write stdin to PATH atomically (temporary file in the same
# directory). When a write fails (a full volume above all) the temporary file is
# removed, PATH is left as it was, and the script stops with the reason.
replace_file() {
  local tmp err
  if ! tmp=$(mktemp -- "$1.XXXXXX" 2>&1); then
    volume_write_failed "$1" "$tmp"
  fi
  if ! err=$({ cat >"$tmp" && chmod 0600 -- "$tmp" && mv -f -- "$tmp" "$1"; } 2>&1); then
    rm -f -- "$tmp"
    volume_write_failed "$1" "$err"
  fi
}

# create_empty_file PATH: create (or truncate) PATH on the data volume.
create_empty_file() {
  local err
  if ! err=$({ : >"$1"; } 2>&1); then
    volume_write_failed "$1" "$err"
  fi
}

# run_on_volume TARGET CMD...: run CMD (initdb, pg_basebackup), which writes
# TARGET on the data volume, with all its output in the log. A failure on a
# full volume (told by CMD's own error text) stops the script with the way
# out; any other failure returns CMD's status. Not a full volume: a full
# /dev/shm ("shared memory"), or the primary's disk (an "ERROR:" the server
# sent pg_basebackup).
run_on_volume() {
  local target=$1 errf rc=0 err
  shift
  errf=$(mktemp -- "$TMPDIR/init-stderr.XXXXXX")
  "$@" >&2 2>"$errf" || rc=$?
  cat -- "$errf" >&2
  err=$(grep -E -- 'No space left on device|Disk quota exceeded' "$errf" | grep -v -e 'shared memory' || :)
  if [[ $1 == pg_basebackup ]]; then
    err=$(grep -v -e 'ERROR:' <<<"$err" || :)
  fi
  err=${err%%$'\n'*}
  rm -f -- "$errf"
  if ((rc != 0)) && [[ -n $err ]]; then
    volume_write_failed "$target" "$err"
  fi
  return "$rc"
}

# publish DIR: atomically rename a complete DIR to PGDATA and make the rename durable.
publish() {
  mv -T -- "$1" "$PGDATA"
  sync -- "$(dirname -- "$PGDATA")" || log "warning: could not fsync $(dirname -- "$PGDATA")"
}
