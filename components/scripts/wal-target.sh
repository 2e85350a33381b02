#!/usr/bin/env bash
# The WAL archive (WAL_TARGET) and the rclone calls on it.
#
# WAL_TARGET is an rclone remote path REMOTE:bucket/prefix (the remote
# configured from the environment, RCLONE_CONFIG_<REMOTE>_*) or an absolute
# directory (rclone's local backend: a mounted volume). Under it:
#   wal/<file>           what archive_command handed over: segments, .partial
#                        segments of a promoted standby's old timeline,
#                        .history and .backup files, under their own names
#   incoming/<file>      (directory targets only) an upload in progress: it is
#                        renamed into wal/ once stored and verified, so that a
#                        killed upload never leaves a short file under wal/.
#                        An S3 PUT is atomic already (the object appears whole
#                        or not at all), so S3 uploads go straight to wal/.
#   base/<UTC stamp>/    a base backup (wal-manifest.sh): base.tar.gz,
#                        pg_wal.tar.gz, backup_manifest and, written last,
#                        MANIFEST; a directory without MANIFEST is incomplete.
# shellcheck disable=SC2034 # Read by the scripts that source this one.
set -euo pipefail

# PostgreSQL's WAL file names (xlog_internal.h: XLogFileName, TLHistoryFileName,
# BackupHistoryFileName, the .partial of a promotion): timeline, log, segment in
# upper-case hex.
readonly WAL_SEGMENT_RE='^[0-9A-F]{24}$'
readonly WAL_FILE_RE='^([0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$'

# wal_rclone ARGS...: rclone, quiet (errors only, on stderr), with bounded
# retries so that a dead remote fails an attempt in seconds; PostgreSQL retries
# archive_command itself. No config file: the remote comes from the environment.
wal_rclone() {
  "$WAL_RCLONE" -q --retries 1 --low-level-retries 3 --contimeout 10s --timeout 60s "$@"
}

# wal_is_local: whether WAL_TARGET is a directory (rclone's local backend).
wal_is_local() {
  [[ $WAL_TARGET == /* ]]
}

# wal_check_target: refuse an empty WAL_TARGET (the format is load_env's).
wal_check_target() {
  [[ -n $WAL_TARGET ]] || die "WAL_TARGET is empty: there is no WAL archive configured"
}

# target_stat PATH: print "SIZE MD5" of the object at PATH (a path under
# WAL_TARGET). Returns 1 when there is none, 2 on any other error (rclone's
# message in ERR_FILE). On S3 a missing object lists as a directory (prefix).
target_stat() {
  local out rc=0 size md5
  out=$(wal_rclone lsjson --stat --hash --hash-type md5 --no-mimetype "$1" 2>"$ERR_FILE") || rc=$?
  # 3: directory not found, 4: file not found (rclone's documented exit codes).
  ((rc == 3 || rc == 4)) && return 1
  ((rc == 0)) || return 2
  [[ $out =~ \"IsDir\":[[:space:]]*false ]] || return 1
  [[ $out =~ \"Size\":[[:space:]]*([0-9]+) ]] || {
    printf 'no size in rclone lsjson output for %s\n' "$1" >"$ERR_FILE"
    return 2
  }
  size=${BASH_REMATCH[1]}
  md5=''
  [[ $out =~ \"md5\":[[:space:]]*\"([0-9a-f]{32})\" ]] && md5=${BASH_REMATCH[1]}
  printf '%s %s\n' "$size" "${md5:-none}"
}

# local_stat FILE: "SIZE MD5" of a local file, as target_stat prints it.
local_stat() {
  local size md5
  size=$(stat -c %s -- "$1")
  md5=$(md5sum <"$1")
  printf '%s %s\n' "$size" "${md5%% *}"
}

# target_list DIR FORMAT: the files directly under DIR (under WAL_TARGET), one
# per line as rclone lsf --format FORMAT prints them (p: name, t: modification
# time, s: size), ';'-separated; nothing for a missing directory.
target_list() {
  local rc=0
  # TZ=UTC: lsf prints times in the local zone; UTC makes them comparable.
  TZ=UTC wal_rclone lsf --files-only --format "$2" --separator ';' "$1" 2>"$ERR_FILE" || rc=$?
  ((rc == 0 || rc == 3)) || return 1
}

# wal_segno NAME: the segment number (decimal) of a WAL file name whose first
# 24 characters name a segment, for WAL_SEGSIZE-byte segments; in WAL_SEGNO,
# not printed, so that a loop over thousands of names forks nothing.
wal_segno() {
  WAL_SEGNO=$((16#${1:8:8} * (0x100000000 / WAL_SEGSIZE) + 16#${1:16:8}))
}

# lsn_to_int X/Y: a WAL position as one integer (bash holds 64 bits).
lsn_to_int() {
  local hi=${1%/*} lo=${1#*/}
  printf '%d\n' "$(((16#$hi << 32) | 16#$lo))"
}

# int_to_lsn N: the X/Y form of a position.
int_to_lsn() {
  printf '%X/%X\n' "$(($1 >> 32))" "$(($1 & 0xFFFFFFFF))"
}
