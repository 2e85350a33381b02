#!/usr/bin/env bash
# The base backups in the archive (WAL_TARGET/base/<UTC stamp>/) and their
# MANIFEST, written last by wal-basebackup.sh: a directory with a MANIFEST is a
# complete base backup. MANIFEST is one key=value per line, stamp first:
#   stamp=20261206T020304Z          the directory's name (the run's start, UTC)
#   pg_major=18                     PG_VERSION of the backup
#   timeline=1                      START TIMELINE (backup_label)
#   start_lsn=0/2000028             START WAL LOCATION (backup_label)
#   stop_lsn=0/2000138              the End-LSN of backup_manifest's WAL-Ranges:
#                                   the backup is consistent from here on
#   start_wal=000000010000000000000002   the first WAL file it needs
#   wal_segment_size=16777216       bytes per WAL segment
#   start_time=2026-12-06T02:03:04.123456Z, start_us=<epoch microseconds>
#   stop_time=..., stop_us=...      the job's clock before pg_basebackup started
#                                   and after it returned (so stop_time is at or
#                                   after the server's end of the backup)
#   file=<name> <size> <md5>        one line per uploaded file (base.tar.gz,
#                                   pg_wal.tar.gz, backup_manifest)
# shellcheck disable=SC2034 # Read by the scripts that source this one.
set -euo pipefail

readonly BACKUP_STAMP_RE='^[0-9]{8}T[0-9]{6}Z$'

# The complete base backups, oldest first, and their MANIFEST fields by stamp.
BACKUPS=()
declare -gA BK_TIMELINE=() BK_START_LSN=() BK_STOP_LSN=() BK_START_WAL=() BK_START_US=() BK_STOP_US=()
declare -gA BK_START_TIME=() BK_STOP_TIME=() BK_SEGSIZE=() BK_MAJOR=() BK_FILES=()
# Bytes per WAL segment (the newest backup's; 16 MiB without a backup).
WAL_SEGSIZE=16777216

# now_us: wall-clock microseconds since the epoch.
now_us() {
  printf '%s\n' "${EPOCHREALTIME/./}"
}

# iso_time US: an epoch in microseconds as 2026-12-06T02:03:04.123456Z.
iso_time() {
  date -u -d "@${1:0:-6}.${1: -6}" +%Y-%m-%dT%H:%M:%S.%6NZ
}

# load_backups: read every complete base backup's MANIFEST (one rclone call).
load_backups() {
  local text rc=0 key value stamp=''
  text=$(wal_rclone cat --include '/*/MANIFEST' "$WAL_TARGET/base" 2>"$ERR_FILE") || rc=$?
  ((rc == 0 || rc == 3)) || die "cannot read the base backups' manifests in $WAL_TARGET/base: $(one_line "$ERR_FILE")"
  BACKUPS=()
  while IFS='=' read -r key value; do
    case $key in
      stamp)
        [[ $value =~ $BACKUP_STAMP_RE ]] || die "a MANIFEST in $WAL_TARGET/base names the invalid stamp '$value'"
        stamp=$value
        BACKUPS+=("$stamp")
        BK_FILES[$stamp]=''
        ;;
      '') ;;
      *) [[ -n $stamp ]] || die "a MANIFEST in $WAL_TARGET/base does not start with its stamp" ;;&
      timeline) BK_TIMELINE[$stamp]=$value ;;
      start_lsn) BK_START_LSN[$stamp]=$value ;;
      stop_lsn) BK_STOP_LSN[$stamp]=$value ;;
      start_wal) BK_START_WAL[$stamp]=$value ;;
      start_us) BK_START_US[$stamp]=$value ;;
      stop_us) BK_STOP_US[$stamp]=$value ;;
      start_time) BK_START_TIME[$stamp]=$value ;;
      stop_time) BK_STOP_TIME[$stamp]=$value ;;
      wal_segment_size) BK_SEGSIZE[$stamp]=$value ;;
      pg_major) BK_MAJOR[$stamp]=$value ;;
      file) BK_FILES[$stamp]+="$value"$'\n' ;;
    esac
  done <<<"$text"
  ((${#BACKUPS[@]} == 0)) || mapfile -t BACKUPS < <(printf '%s\n' "${BACKUPS[@]}" | sort)
  check_backups
}

# check_backups: every field the scripts compute with has its form.
check_backups() {
  local s
  for s in "${BACKUPS[@]}"; do
    [[ ${BK_START_WAL[$s]-} =~ $WAL_SEGMENT_RE && ${BK_STOP_LSN[$s]-} =~ ^[0-9A-F]{1,8}/[0-9A-F]{1,8}$ &&
      ${BK_STOP_US[$s]-} =~ $UINT_RE && ${BK_START_US[$s]-} =~ $UINT_RE && ${BK_SEGSIZE[$s]-} =~ $UINT_RE ]] ||
      die "$WAL_TARGET/base/$s/MANIFEST lacks start_wal, stop_lsn, start_us, stop_us or wal_segment_size in their form"
    WAL_SEGSIZE=${BK_SEGSIZE[$s]}
  done
}
