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
# check here compares the stored file's md5 (a directory: md5sum of the copy;
# S3: the ETag it computed on receipt) with the local file's, so a second pair
# of hashes per 16 MiB segment would only cost CPU next to the database.
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

# to_directory NAME PATH HERE DEST: a directory target: rclone copies the file
# under incoming/, the file system gives its size and md5 and the rename into
# wal/. One rclone run per segment: each costs about 0.1 s of CPU in the
# postgres container, four of them per segment cost pgbench a tenth of its
# throughput on two cores (benchmarks/bench_wal_archive.py).
to_directory() {
  local incoming=$WAL_TARGET/incoming/$1
  if [[ -e $4 ]]; then
    refuse_or_accept "$1" "$4" "$3" "$(local_stat "$4")"
  fi
  wal_rclone copyto --ignore-checksum "$2" "$incoming" 2>"$ERR_FILE" || upload_failed "uploading $1 to $incoming failed"
  # rclone does not fsync: the file and its directory entry are durable before PostgreSQL recycles the segment.
  sync -- "$incoming" 2>"$ERR_FILE" || die "fsync of $incoming failed: $(one_line "$ERR_FILE")"
  if [[ $(local_stat "$incoming") != "$3" ]]; then
    rm -f -- "$incoming"
    die "the upload of $1 to $incoming does not match the local file (size md5 $3); removed it, PostgreSQL retries"
  fi
  mkdir -p -- "${4%/*}" 2>"$ERR_FILE" || die "cannot create ${4%/*}: $(one_line "$ERR_FILE")"
  mv -f -- "$incoming" "$4" 2>"$ERR_FILE" || die "moving $incoming to $4 failed: $(one_line "$ERR_FILE")"
  sync -- "${4%/*}" 2>"$ERR_FILE" || die "fsync of ${4%/*} failed: $(one_line "$ERR_FILE")"
}

# to_remote NAME PATH HERE DEST: an rclone remote (S3): the PUT publishes the
# object whole; the target's md5 of it (S3: the ETag) is checked.
to_remote() {
  local stored rc=0
  stored=$(target_stat "$4") || rc=$?
  case $rc in
    0) refuse_or_accept "$1" "$4" "$3" "$stored" ;;
    1) ;;
    *) die "cannot look up $4: $(one_line "$ERR_FILE")" ;;
  esac
  wal_rclone copyto --ignore-checksum "$2" "$4" 2>"$ERR_FILE" || upload_failed "uploading $1 to $4 failed"
  if ! verify "$4" "$3"; then
    # Our own object, just written: remove it so the retry does not see a foreign one.
    wal_rclone deletefile "$4" 2>/dev/null || true
    die "the upload of $1 to $4 does not match the local file (size md5 $3); removed it, PostgreSQL retries"
  fi
}

main() {
  load_env
  (($# == 2)) || die "usage: $SCRIPT_NAME %p %f (archive_command)"
  wal_check_target
  local path=$1 name=$2 here
  [[ $name =~ $WAL_FILE_RE ]] || die "refusing to archive '$name': not a WAL segment, .partial, .history or .backup file name"
  [[ -f $path ]] || die "$path (%p) is not a file"
  ERR_FILE=$(mktemp "$TMPDIR/wal-archive.XXXXXX")
  trap cleanup EXIT
  here=$(local_stat "$path")
  if wal_is_local; then
    to_directory "$name" "$path" "$here" "$WAL_TARGET/wal/$name"
  else
    to_remote "$name" "$path" "$here" "$WAL_TARGET/wal/$name"
  fi
}

main "$@"
