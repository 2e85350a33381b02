#!/usr/bin/env bash
# The WAL settings sized to the data volume (a 1Gi volume must not fill up
# with PostgreSQL's default 1GB of WAL), rewritten on every pod start so that
# they follow the volume's real size when it grows. The tests call
# volume_settings alone.
set -euo pipefail

# Name of the file (inside PGDATA) with the settings sized to the data volume.
readonly VOLUME_CONF_NAME='k8s-volume.conf'

# mb BYTES: BYTES as a whole number of megabytes for postgresql.conf (at least 1MB).
mb() {
  local n=$(($1 / 1048576))
  ((n >= 1)) || n=1
  printf '%dMB\n' "$n"
}

# volume_settings BYTES: the WAL settings for a data volume of BYTES bytes, one
# "name = 'value'" line each.
# - max_wal_size: a quarter of the volume, at most 1GB (PostgreSQL's default 1GB
#   fills a 1Gi volume);
# - min_wal_size: a quarter of max_wal_size, at least 32MB;
#   both at least 32MB: PostgreSQL refuses less than two 16MB WAL segments;
# - with replication, wal_keep_size (an eighth of the volume, at most 1GB) lets a
#   briefly disconnected standby catch up, and max_slot_wal_keep_size (a quarter
#   of the volume) bounds the WAL a dead standby's replication slot can hold.
volume_settings() {
  local v=$1 mib=1048576 max_wal min_wal keep
  [[ $v =~ $UINT_RE ]] || die "volume size '$v' is invalid: expected a number of bytes"
  max_wal=$((v / 4))
  ((max_wal <= 1024 * mib)) || max_wal=$((1024 * mib))
  ((max_wal >= 32 * mib)) || max_wal=$((32 * mib))
  min_wal=$((max_wal / 4))
  ((min_wal >= 32 * mib)) || min_wal=$((32 * mib))
  ((min_wal <= max_wal)) || min_wal=$max_wal
  printf "max_wal_size = '%s'\n" "$(mb "$max_wal")"
  printf "min_wal_size = '%s'\n" "$(mb "$min_wal")"
  if [[ $REPLICATION_ENABLED == true ]]; then
    keep=$((v / 8))
    ((keep <= 1024 * mib)) || keep=$((1024 * mib))
    printf "wal_keep_size = '%s'\n" "$(mb "$keep")"
    printf "max_slot_wal_keep_size = '%s'\n" "$(mb "$((v / 4))")"
  fi
}

# write_volume_conf: the WAL settings sized to the data volume's real size
# (volume_settings) into $VOLUME_CONF_NAME, so that a grown volume gets them
# without a change to the pod template.
write_volume_conf() {
  local out bytes settings
  out=$(df -B1 --output=size -- "$DATA_MOUNT") || die "cannot read the size of the data volume $DATA_MOUNT (df)"
  bytes=${out##*[!0-9 ]}
  bytes=${bytes// /}
  [[ $bytes =~ $UINT_RE ]] || die "cannot read the size of the data volume $DATA_MOUNT from df: $out"
  settings=$(volume_settings "$bytes")
  {
    printf '%s\n' '# Managed by init.sh: rewritten on every pod start from the volume size, edits are lost.'
    printf '# Data volume %s: %s bytes.\n' "$DATA_MOUNT" "$bytes"
    printf '%s\n' "$settings"
  } | replace_file "$PGDATA/$VOLUME_CONF_NAME"
  ensure_include "$VOLUME_CONF_NAME"
  log "volume $DATA_MOUNT has $bytes bytes: ${settings//$'\n'/, }"
}
