#!/usr/bin/env bash
# archive_command: store one WAL file in the archive (WAL_TARGET/wal/<file>).
#
#   archive_command = '/scripts/wal-archive.sh "%p" "%f"'
#
# Run by the primary's archiver, in the postgres container's environment
# (components/pod_env_contract.py POD_ENV: WAL_TARGET, WAL_RCLONE, rclone's
# RCLONE_CONFIG_<REMOTE>_*), from PGDATA. Exit 0 only once the file is stored
# under its name and the stored size and md5 equal the local file's: PostgreSQL
# recycles a segment as soon as this returns 0.
# - The same content already stored is success: archiving is retried after a
#   crash between the upload and PostgreSQL's .done marker.
# - A different object under the same name is refused (exit 1, one log line),
#   never overwritten: it is another server's history (two primaries on one
#   timeline) or a damaged archive, for a person to look at. PostgreSQL keeps
#   the segment in pg_wal and retries; pg_stat_archiver counts the failures.
# - Standbys never run it: with archive_mode=on (not always) PostgreSQL archives
#   only on a primary; a promoted standby starts archiving its new timeline, its
#   .history file and the .partial last segment of the old one.
# An S3 PUT publishes the object whole; a directory target gets the file under
# incoming/ first and a rename into wal/ after the check (wal-target.sh).
# rclone's own hash check after the copy is skipped (--ignore-checksum): the
# check here reads the stored object's md5 (computed by the target: the local
# backend hashes the stored file, S3 returns the ETag it computed on receipt)
# and compares it with the local file's, so a second pair of hashes per 16 MiB
# segment would only cost CPU next to the database.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib-base.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib-base.sh"
# shellcheck source=wal-target.sh
. "$SCRIPT_DIR/wal-target.sh"

ERR_FILE=''

# upload_failed WHAT: die with rclone's error; a full target says so.
upload_failed() {
  if grep -q -e 'No space left on device' -e 'remaining disk space' -e 'Disk quota exceeded' -- "$ERR_FILE" 2>/dev/null; then
    die "the WAL archive $WAL_TARGET is full: $1: $(one_line "$ERR_FILE"); PostgreSQL keeps the WAL in pg_wal and retries: make room in the archive"
  fi
  die "$1: $(one_line "$ERR_FILE")"
}

cleanup() {
  local rc=$?
  [[ -z $ERR_FILE ]] || rm -f -- "$ERR_FILE"
  exit "$rc"
}

# refuse_or_accept NAME DEST LOCAL STORED: the outcome when DEST already exists.
refuse_or_accept() {
  if [[ $4 == "$3" ]]; then
    log "$1 is already archived with the same size and md5 ($2): nothing to do"
    exit 0
  fi
  die "refusing to overwrite $2: it holds different content (size md5 $4) than $1 here ($3); an archive another server wrote to, or damaged; PostgreSQL keeps the file and retries"
}

# verify DEST LOCAL: the stored object's size and md5 equal LOCAL ("SIZE MD5").
verify() {
  local stored rc=0
  stored=$(target_stat "$1") || rc=$?
  ((rc != 1)) || die "$1 is missing right after its upload"
  ((rc == 0)) || die "cannot check $1 after its upload: $(one_line "$ERR_FILE")"
  [[ $stored != *' none' ]] || die "$1: the target gives no md5 to verify the upload with"
  [[ $stored == "$2" ]] || return 1
}

main() {
  load_env
  (($# == 2)) || die "usage: $SCRIPT_NAME %p %f (archive_command)"
  wal_check_target
  local path=$1 name=$2 here stored rc=0 dest incoming
  [[ $name =~ $WAL_FILE_RE ]] || die "refusing to archive '$name': not a WAL segment, .partial, .history or .backup file name"
  [[ -f $path ]] || die "$path (%p) is not a file"
  ERR_FILE=$(mktemp "$TMPDIR/wal-archive.XXXXXX")
  trap cleanup EXIT
  here=$(local_stat "$path")
  dest=$WAL_TARGET/wal/$name

  stored=$(target_stat "$dest") || rc=$?
  case $rc in
    0) refuse_or_accept "$name" "$dest" "$here" "$stored" ;;
    1) ;;
    *) die "cannot look up $dest: $(one_line "$ERR_FILE")" ;;
  esac

  if wal_is_local; then
    incoming=$WAL_TARGET/incoming/$name
    wal_rclone copyto --ignore-checksum "$path" "$incoming" 2>"$ERR_FILE" || upload_failed "uploading $name to $incoming failed"
    if ! verify "$incoming" "$here"; then
      wal_rclone deletefile "$incoming" 2>/dev/null || true
      die "the upload of $name to $incoming does not match the local file (size md5 $here); removed it, PostgreSQL retries"
    fi
    wal_rclone moveto "$incoming" "$dest" 2>"$ERR_FILE" || die "moving $incoming to $dest failed: $(one_line "$ERR_FILE")"
    # rclone does not fsync: make the file and its directory entry durable before PostgreSQL recycles the segment.
    sync -- "$dest" "${dest%/*}" 2>"$ERR_FILE" || die "fsync of $dest failed: $(one_line "$ERR_FILE")"
    [[ $(stat -c %s -- "$dest") == "${here%% *}" ]] || die "$dest has not the size of $name after the rename"
  else
    wal_rclone copyto --ignore-checksum "$path" "$dest" 2>"$ERR_FILE" || upload_failed "uploading $name to $dest failed"
    if ! verify "$dest" "$here"; then
      # Our own object, just written: remove it so the retry does not see a foreign one.
      wal_rclone deletefile "$dest" 2>/dev/null || true
      die "the upload of $name to $dest does not match the local file (size md5 $here); removed it, PostgreSQL retries"
    fi
  fi
}

main "$@"
