#!/usr/bin/env bash
# Retention on the dumps volume: the complete dumps, the leftovers of killed
# runs, and the pruning of old dumps once a new one is published (the rule is
# in backup.sh's header).
set -euo pipefail

# complete_dumps: names of the complete dumps in BACKUP_DIR, newest first.
complete_dumps() {
  local d name
  for d in "$BACKUP_DIR"/*/; do
    d=${d%/}
    name=${d##*/}
    [[ $name =~ $DUMP_STAMP_RE && -f $d/MANIFEST ]] || continue
    printf '%s\n' "$name"
  done | sort -r
}

# remove_leftovers: delete the .partial directories of earlier runs (called
# under the lock: nothing writes them any more).
remove_leftovers() {
  local d name
  for d in "$BACKUP_DIR"/*.partial; do
    [[ -e $d ]] || continue
    name=${d##*/}
    [[ ${name%.partial} =~ $DUMP_STAMP_RE ]] || continue
    rm -rf -- "$d"
    log "removed $d, left by an interrupted run"
  done
}

# prune: apply the retention rule (see the header) to the complete dumps.
prune() {
  local -a dumps
  local i name age now keep kept=0 pruned=0
  if ((BACKUP_KEEP == 0 && BACKUP_KEEP_DAYS == 0)); then
    log "retention: BACKUP_KEEP and BACKUP_KEEP_DAYS are 0, every dump is kept"
    return 0
  fi
  mapfile -t dumps < <(complete_dumps)
  now=$(now_epoch)
  for i in "${!dumps[@]}"; do
    name=${dumps[i]}
    if ! age=$(stamp_epoch "$name" 2>/dev/null); then
      log "warning: $BACKUP_DIR/$name is not named after a valid time; retention leaves it alone"
      continue
    fi
    age=$((now - age))
    keep=false
    if ((i == 0)) || [[ $name == "$STAMP" ]]; then
      keep=true
    elif ((BACKUP_KEEP > 0 && i < BACKUP_KEEP)); then
      keep=true
    elif ((BACKUP_KEEP_DAYS > 0 && age < BACKUP_KEEP_DAYS * 86400)); then
      keep=true
    fi
    if [[ $keep == true ]]; then
      kept=$((kept + 1))
      continue
    fi
    # Rename first: a crash while deleting leaves a .partial (removed by the
    # next run), never a directory that still looks complete.
    mv -T -- "$BACKUP_DIR/$name" "$BACKUP_DIR/$name.partial"
    rm -rf -- "$BACKUP_DIR/$name.partial"
    pruned=$((pruned + 1))
    log "pruned $name ($((age / 86400)) days old, not among the newest $BACKUP_KEEP (BACKUP_KEEP) nor younger than $BACKUP_KEEP_DAYS days (BACKUP_KEEP_DAYS))"
  done
  log "retention: kept $kept complete dump(s), pruned $pruned"
}
