#!/usr/bin/env bash
# Retention in the archive, run after a base backup was uploaded: keep the
# newest WAL_KEEP_BACKUPS complete base backups and every WAL file any of them
# needs; all .history files stay (they are small, and a recovery reads them to
# choose its timeline).
#
# What a base backup needs: its start_wal segment and every later one on its
# timeline and on the timelines that descend from it. Later means a higher
# segment number, whatever the timeline, so a file is deleted only when its
# segment number is below the lowest start segment of all kept backups (a
# backup of a timeline forked by a point-in-time restore may start lower than
# an older backup). Files of older timelines beyond that point stay: fewer
# deletions, never one too many.
#
# Order: an old backup's MANIFEST first (it stops being a backup), then its
# files, and WAL last, so that a run killed half-way never leaves a backup
# that looks complete without its WAL.
set -euo pipefail

# prune_archive: apply the rule above; BACKUPS must hold the complete backups.
prune_archive() {
  local count=${#BACKUPS[@]} drop s min=-1
  ((count > 0)) || die "retention: no complete base backup in $WAL_TARGET/base; nothing is pruned"
  drop=$((count > WAL_KEEP_BACKUPS ? count - WAL_KEEP_BACKUPS : 0))
  for s in "${BACKUPS[@]:drop}"; do
    wal_segno "${BK_START_WAL[$s]}"
    ((min >= 0 && min <= WAL_SEGNO)) || min=$WAL_SEGNO
  done
  for s in "${BACKUPS[@]:0:drop}"; do
    wal_rclone deletefile "$WAL_TARGET/base/$s/MANIFEST" 2>"$ERR_FILE" || die "retention: cannot delete $WAL_TARGET/base/$s/MANIFEST: $(one_line "$ERR_FILE")"
    wal_rclone purge "$WAL_TARGET/base/$s" 2>"$ERR_FILE" || die "retention: cannot delete $WAL_TARGET/base/$s: $(one_line "$ERR_FILE")"
    log "retention: deleted base backup $s (not among the newest $WAL_KEEP_BACKUPS)"
  done
  prune_incomplete
  prune_wal "$min"
  log "retention: kept $((count - drop)) base backup(s), the oldest ${BACKUPS[drop]}, and the WAL from segment number $min on"
}

# prune_incomplete: delete base/<stamp>/ directories without a MANIFEST that are
# older than the newest complete backup (runs killed before their MANIFEST; a
# run that is still going has a newer stamp, and the CronJob forbids overlaps).
prune_incomplete() {
  local newest=${BACKUPS[-1]} dir rc=0 list
  list=$(wal_rclone lsf --dirs-only "$WAL_TARGET/base" 2>"$ERR_FILE") || rc=$?
  ((rc == 0 || rc == 3)) || die "retention: cannot list $WAL_TARGET/base: $(one_line "$ERR_FILE")"
  while IFS= read -r dir; do
    dir=${dir%/}
    [[ $dir =~ $BACKUP_STAMP_RE && $dir < $newest && -z ${BK_STOP_US[$dir]+x} ]] || continue
    wal_rclone purge "$WAL_TARGET/base/$dir" 2>"$ERR_FILE" || die "retention: cannot delete $WAL_TARGET/base/$dir: $(one_line "$ERR_FILE")"
    log "retention: deleted $dir, an incomplete base backup (no MANIFEST) left by an interrupted run"
  done <<<"$list"
}

# prune_wal MIN: delete the WAL files (not .history) whose segment number is below MIN.
prune_wal() {
  local name n=0 list
  list=$(target_list "$WAL_TARGET/wal" p) || die "retention: cannot list $WAL_TARGET/wal: $(one_line "$ERR_FILE")"
  : >"$WORK/delete"
  while IFS= read -r name; do
    [[ $name =~ $WAL_FILE_RE && $name != *.history ]] || continue
    wal_segno "$name"
    ((WAL_SEGNO < $1)) || continue
    printf '%s\n' "$name" >>"$WORK/delete"
    n=$((n + 1))
  done <<<"$list"
  ((n > 0)) || return 0
  wal_rclone delete --files-from-raw "$WORK/delete" "$WAL_TARGET/wal" 2>"$ERR_FILE" ||
    die "retention: deleting $n old WAL file(s) failed: $(one_line "$ERR_FILE")"
  log "retention: deleted $n WAL file(s) older than every kept base backup"
}
