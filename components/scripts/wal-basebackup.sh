#!/usr/bin/env bash
# Base backup: what the base-backup CronJob runs (the database's own image).
# One run takes one base backup of the primary, uploads it to
# WAL_TARGET/base/<UTC stamp>/ and then applies the retention rule
# (wal-retention.sh); exit 0 only when the new backup is complete.
#
# - pg_basebackup over the replication protocol from PRIMARY_HOST:PGPORT as
#   REPLICATION_USER, with its password from the Secret (SECRETS_DIR/
#   replication-password) through a 0600 passfile in a private directory under
#   TMPDIR; tar format, gzip, WAL streamed into pg_wal.tar.gz (the backup is
#   restorable even if archiving lags), a fast checkpoint.
# - TMPDIR holds the compressed backup until it is uploaded: size it for that.
# - Upload: every file with rclone, each checked by size and md5, then MANIFEST
#   (wal-manifest.sh), the mark of a complete backup, checked too.
# - Retention runs only after that, and only prunes what the kept backups do
#   not need. A failed run prunes nothing; its incomplete directory is deleted
#   by the next successful run.
# Environment: components/pod_env_contract.py WAL_ENV, applied by load_env.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib-base.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib-base.sh"
# shellcheck source=lib-secrets.sh
. "$SCRIPT_DIR/lib-secrets.sh"
# shellcheck source=wal-target.sh
. "$SCRIPT_DIR/wal-target.sh"
# shellcheck source=wal-manifest.sh
. "$SCRIPT_DIR/wal-manifest.sh"
# shellcheck source=wal-retention.sh
. "$SCRIPT_DIR/wal-retention.sh"

WORK=''
ERR_FILE=''

cleanup() {
  local rc=$?
  [[ -z $WORK ]] || rm -rf -- "$WORK"
  exit "$rc"
}

# label_field NAME: a field of the backup's backup_label.
label_field() {
  local line
  line=$(grep -m 1 "^$1: " -- "$WORK/meta/backup_label") || die "backup_label has no '$1' line"
  printf '%s\n' "${line#*: }"
}

# segment_size LSN FILE: the WAL segment size (a power of two from 1 MiB to
# 1 GiB, initdb --wal-segsize) for which LSN lies in segment FILE.
segment_size() {
  local lsn size=1048576 per
  lsn=$(lsn_to_int "$1")
  while ((size <= 1073741824)); do
    # FILE's log and segment fields are segno / (4 GiB / size) and segno % (4 GiB / size).
    per=$((0x100000000 / size))
    if (((lsn / size) / per == 16#${2:8:8} && (lsn / size) % per == 16#${2:16:8})); then
      printf '%s\n' "$size"
      return 0
    fi
    size=$((size * 2))
  done
  die "cannot tell the WAL segment size from START WAL LOCATION $1 (file $2)"
}

# take_backup: pg_basebackup into WORK/backup.
take_backup() {
  mkdir -- "$WORK/backup" "$WORK/meta"
  log "base backup from $PRIMARY_HOST:$PGPORT as $REPLICATION_USER into $WAL_TARGET/base/$STAMP"
  pg_basebackup -h "$PRIMARY_HOST" -p "$PGPORT" -U "$REPLICATION_USER" -w -D "$WORK/backup" \
    -F tar -Z 1 -X stream -c fast --no-sync --label "pgstack $STAMP" 2>"$ERR_FILE" ||
    die "pg_basebackup failed: $(one_line "$ERR_FILE")"
  tar -xzf "$WORK/backup/base.tar.gz" -C "$WORK/meta" backup_label PG_VERSION 2>"$ERR_FILE" ||
    die "cannot read backup_label and PG_VERSION from base.tar.gz: $(one_line "$ERR_FILE")"
}

# write_manifest FILE START_US STOP_US: the MANIFEST of this backup.
write_manifest() {
  local start wal timeline stop ranges f
  start=$(label_field 'START WAL LOCATION')
  wal=${start#*(file }
  wal=${wal%)}
  start=${start%% *}
  timeline=$(label_field 'START TIMELINE')
  # backup_manifest (PostgreSQL 13+): "WAL-Ranges": [{ "Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000138" }]
  ranges=$(tr -d '\n' <"$WORK/backup/backup_manifest")
  [[ $ranges =~ \"End-LSN\":[[:space:]]*\"([0-9A-F]+/[0-9A-F]+)\"[[:space:]]*\}[[:space:]]*\] ]] ||
    die "backup_manifest has no WAL-Ranges End-LSN"
  stop=${BASH_REMATCH[1]}
  [[ $wal =~ $WAL_SEGMENT_RE && $timeline =~ $UINT_RE ]] || die "backup_label: unexpected START WAL LOCATION or START TIMELINE"
  {
    printf 'stamp=%s\npg_major=%s\ntimeline=%s\n' "$STAMP" "$(<"$WORK/meta/PG_VERSION")" "$timeline"
    printf 'start_lsn=%s\nstop_lsn=%s\nstart_wal=%s\n' "$start" "$stop" "$wal"
    printf 'wal_segment_size=%s\n' "$(segment_size "$start" "$wal")"
    printf 'start_time=%s\nstart_us=%s\n' "$(iso_time "$2")" "$2"
    printf 'stop_time=%s\nstop_us=%s\n' "$(iso_time "$3")" "$3"
    for f in base.tar.gz pg_wal.tar.gz backup_manifest; do
      printf 'file=%s %s\n' "$f" "$(local_stat "$WORK/backup/$f")"
    done
  } >"$1"
}

# upload: copy the backup's files to base/STAMP/ (one rclone call), check every
# stored size and md5 against the MANIFEST's lines (one listing), then MANIFEST.
upload() {
  local dest=$WAL_TARGET/base/$STAMP listing line name want got=0 stored
  wal_rclone copy "$WORK/backup" "$dest" 2>"$ERR_FILE" || die "uploading the backup to $dest failed: $(one_line "$ERR_FILE")"
  listing=$(wal_rclone lsjson --files-only --hash --hash-type md5 --no-mimetype "$dest" 2>"$ERR_FILE") ||
    die "cannot list $dest after the upload: $(one_line "$ERR_FILE")"
  while IFS= read -r line; do
    [[ $line =~ \"Name\":\"([^\"]+)\".*\"Size\":([0-9]+).*\"md5\":\"([0-9a-f]{32})\" ]] || continue
    name=${BASH_REMATCH[1]}
    stored="${BASH_REMATCH[2]} ${BASH_REMATCH[3]}"
    want=$(grep -m 1 "^file=$name " -- "$WORK/MANIFEST") || continue
    [[ ${want#file="$name" } == "$stored" ]] || die "$dest/$name does not match what was uploaded (size md5 $stored, expected ${want#file="$name" })"
    got=$((got + 1))
  done <<<"$listing"
  ((got == 3)) || die "$dest holds $got of the backup's 3 files with a size and md5 after the upload"
  wal_rclone copyto "$WORK/MANIFEST" "$dest/MANIFEST" 2>"$ERR_FILE" || die "uploading $dest/MANIFEST failed: $(one_line "$ERR_FILE")"
  stored=$(target_stat "$dest/MANIFEST") || die "cannot check $dest/MANIFEST after its upload: $(one_line "$ERR_FILE")"
  [[ $stored == "$(local_stat "$WORK/MANIFEST")" ]] || die "$dest/MANIFEST does not match what was uploaded"
}

main() {
  (($# == 0)) || die "usage: $SCRIPT_NAME   (configured by the environment; see the header of this script)"
  load_env
  wal_check_target
  [[ -d $TMPDIR && -w $TMPDIR ]] || die "TMPDIR=$TMPDIR is not a writable directory"
  export PGCONNECT_TIMEOUT
  WORK=$(mktemp -d "$TMPDIR/wal-basebackup.XXXXXX")
  ERR_FILE=$WORK/stderr
  trap cleanup EXIT
  write_pgpass "$WORK/pgpass" "$REPLICATION_USER" replication-password
  export PGPASSFILE=$WORK/pgpass

  local start_us stop_us
  start_us=$(now_us)
  STAMP=$(date -u -d "@${start_us:0:-6}" +%Y%m%dT%H%M%SZ)
  take_backup
  stop_us=$(now_us)
  write_manifest "$WORK/MANIFEST" "$start_us" "$stop_us"
  upload
  log "base backup $STAMP complete: $(grep -E '^(start_wal|stop_lsn)=' "$WORK/MANIFEST" | tr '\n' ' ')"

  load_backups
  [[ " ${BACKUPS[*]} " == *" $STAMP "* ]] || die "the new backup $STAMP is not among the complete backups listed; nothing is pruned"
  prune_archive
}

main "$@"
