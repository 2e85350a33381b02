#!/usr/bin/env bash
# restore_command: fetch one WAL file from the archive (WAL_TARGET/wal/<file>).
#
#   restore_command = '/scripts/wal-restore.sh "%f" "%p" [TARGET]'
#
# TARGET (optional, the format of WAL_TARGET) is the archive to read when it is
# not this pod's own WAL_TARGET: wal-pitr.sh writes the one it restored from.
# Run by the startup process in the postgres container's environment (POD_ENV).
# Exit status, as PostgreSQL reads it (xlogarchive.c RestoreArchivedFile):
#   0    the file is at %p, with the stored size;
#   1    no such file in the archive: normal (the end of the archive, a
#        timeline history that does not exist yet); no log line;
#   126  any other error (the remote down, bad credentials), with a log line:
#        a status above 125 makes PostgreSQL stop the recovery (FATAL) instead
#        of taking the error for the end of the archive, which would end a
#        point-in-time recovery early, at the wrong point, and promote there.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib-base.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib-base.sh"
# shellcheck source=wal-target.sh
. "$SCRIPT_DIR/wal-target.sh"

readonly ABORT_RECOVERY=126
ERR_FILE=''

# Every refusal (load_env's too) stops the recovery rather than end it early.
die() {
  log "FATAL: $*"
  exit "$ABORT_RECOVERY"
}

cleanup() {
  local rc=$?
  [[ -z $ERR_FILE ]] || rm -f -- "$ERR_FILE"
  exit "$rc"
}

fail() {
  log "ERROR: $*"
  exit "$ABORT_RECOVERY"
}

main() {
  load_env
  (($# == 2 || $# == 3)) || fail "usage: $SCRIPT_NAME %f %p [TARGET] (restore_command)"
  local name=$1 path=$2 src stored rc=0
  if (($# == 3)); then
    [[ $3 =~ ${ENV_FORMAT[WAL_TARGET]} ]] || fail "TARGET '$3' is invalid: expected ${ENV_EXPECTED[WAL_TARGET]}"
    WAL_TARGET=$3
  fi
  [[ -n $WAL_TARGET ]] || fail "WAL_TARGET is empty and no TARGET given: there is no WAL archive to restore from"
  [[ $name =~ $WAL_FILE_RE ]] || fail "'$name' is not a WAL file name"
  ERR_FILE=$(mktemp "$TMPDIR/wal-restore.XXXXXX")
  trap cleanup EXIT
  src=$WAL_TARGET/wal/$name

  # Look first: rclone copyto from a missing S3 object copies nothing and exits 0.
  stored=$(target_stat "$src") || rc=$?
  ((rc != 1)) || exit 1
  ((rc == 0)) || fail "cannot look up $src: $(one_line "$ERR_FILE")"
  wal_rclone copyto "$src" "$path" 2>"$ERR_FILE" || fail "fetching $src failed: $(one_line "$ERR_FILE")"
  # rclone compares the md5 of what it copied itself; the size check catches a short file.
  [[ -f $path && $(stat -c %s -- "$path") == "${stored%% *}" ]] || fail "$path has not the stored size ${stored%% *} of $src"
}

main "$@"
