#!/usr/bin/env bash
# Point-in-time restore: fill an empty PGDATA from the archive (WAL_TARGET) so
# that the server, started on it, replays to the target and promotes there.
#
#   wal-pitr.sh --time '2026-12-06 02:03:04.5+00'   (GNU date's forms; no zone: UTC)
#   wal-pitr.sh --lsn 0/3000148
#   wal-pitr.sh --latest                             (all archived WAL)
#   wal-pitr.sh --finish                             (after the promotion)
#   wal-pitr.sh --check --time ... | --lsn ... | --latest
#                                  (the range check alone: prints the base backup
#                                   a restore would use and the archive's range,
#                                   or refuses as a restore would; reads no PGDATA)
#
# - The base backup: the newest complete one (wal-manifest.sh) that ended at or
#   before the target (stop_us, stop_lsn), so that replay can reach the target.
# - Refusals, naming the available range (the oldest backup's end .. the
#   newest archived WAL): a target before the end of the oldest backup, and a
#   target after the newest archived WAL (by its file's modification time, or
#   the end of the newest segment for an LSN): a target in the future.
# - PGDATA must be missing or empty: nothing is ever overwritten. The backup is
#   streamed from the archive into it (md5 checked against the MANIFEST).
# - Recovery settings go to PGDATA/pgstack-pitr.conf, included from
#   postgresql.conf: restore_command (wal-restore.sh with this archive),
#   recovery_target_* with recovery_target_action=promote and
#   recovery_target_timeline=latest; then recovery.signal. PostgreSQL replays,
#   stops at the target, promotes onto a new timeline (its .history and WAL
#   are archived by the new primary if archiving is on).
# - --finish, once the server has promoted (no recovery.signal): removes
#   pgstack-pitr.conf, whose recovery target would otherwise stop any standby
#   cloned from this data at the same point.
# Environment: components/pod_env_contract.py WAL_ENV, applied by load_env.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib-base.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib-base.sh"
# shellcheck source=wal-target.sh
. "$SCRIPT_DIR/wal-target.sh"
# shellcheck source=wal-manifest.sh
. "$SCRIPT_DIR/wal-manifest.sh"

readonly PITR_CONF='pgstack-pitr.conf'
WORK=''
ERR_FILE=''
FILLED=false

cleanup() {
  local rc=$?
  if ((rc != 0)) && [[ $FILLED == true ]]; then
    # PGDATA was empty before this run: leave it empty, never half restored.
    find "$PGDATA" -mindepth 1 -delete 2>/dev/null || true
    log "removed the incomplete restore from $PGDATA"
  fi
  [[ -z $WORK ]] || rm -rf -- "$WORK"
  exit "$rc"
}

usage() {
  die "usage: $SCRIPT_NAME [--check] --time 'TIMESTAMP' | [--check] --lsn X/Y | [--check] --latest | --finish"
}

# newest_wal: NEWEST_WAL_US (the newest archived file's modification time, in
# microseconds, rounded up to the second) and NEWEST_END (the end of the
# highest archived segment, an LSN as an integer); both 0 without WAL.
newest_wal() {
  local list time name latest=''
  NEWEST_WAL_US=0 NEWEST_END=0
  list=$(target_list "$WAL_TARGET/wal" tp) || die "cannot list $WAL_TARGET/wal: $(one_line "$ERR_FILE")"
  while IFS=';' read -r time name; do
    [[ $name =~ $WAL_FILE_RE ]] || continue
    # lsf's times ("2026-12-06 02:03:04", UTC) sort as text.
    [[ $time > $latest ]] && latest=$time
    [[ $name =~ $WAL_SEGMENT_RE ]] || continue
    wal_segno "$name"
    (((WAL_SEGNO + 1) * WAL_SEGSIZE <= NEWEST_END)) || NEWEST_END=$(((WAL_SEGNO + 1) * WAL_SEGSIZE))
  done <<<"$list"
  [[ -z $latest ]] || NEWEST_WAL_US=$((($(date -u -d "$latest UTC" +%s) + 1) * 1000000))
}

# range: the available range, for a refusal.
range() {
  local oldest=${BACKUPS[0]} newest_time='no archived WAL'
  ((NEWEST_WAL_US == 0)) || newest_time=$(iso_time "$NEWEST_WAL_US")
  printf 'the archive covers %s (end of the oldest base backup %s, LSN %s) .. %s (newest archived WAL, LSN %s)\n' \
    "${BK_STOP_TIME[$oldest]}" "$oldest" "${BK_STOP_LSN[$oldest]}" "$newest_time" "$(int_to_lsn "$NEWEST_END")"
}

# choose MODE VALUE: CHOSEN, the backup to restore, and TARGET_CONF, the recovery target settings.
choose() {
  local s us lsn
  CHOSEN='' TARGET_CONF=''
  case $1 in
    --latest) CHOSEN=${BACKUPS[-1]} ;;
    --time)
      us=$(TZ=UTC date -d "$2" +%s%6N 2>/dev/null) || die "--time '$2' is not a time GNU date reads (such as '2026-12-06 02:03:04.5+00')"
      for s in "${BACKUPS[@]}"; do
        ((${BK_STOP_US[$s]} > us)) || CHOSEN=$s
      done
      [[ -n $CHOSEN ]] || die "refusing --time '$2' ($(iso_time "$us")): it is before the end of the oldest base backup; $(range)"
      ((us <= NEWEST_WAL_US)) || die "refusing --time '$2' ($(iso_time "$us")): it is after the newest archived WAL (in the future of the archive); $(range)"
      TARGET_CONF="recovery_target_time = '$(date -u -d "@${us:0:-6}.${us: -6}" '+%Y-%m-%d %H:%M:%S.%6N+00')'"
      ;;
    --lsn)
      [[ $2 =~ ^[0-9A-F]{1,8}/[0-9A-F]{1,8}$ ]] || die "--lsn '$2' is not a WAL position X/Y in upper-case hex"
      lsn=$(lsn_to_int "$2")
      for s in "${BACKUPS[@]}"; do
        (($(lsn_to_int "${BK_STOP_LSN[$s]}") > lsn)) || CHOSEN=$s
      done
      [[ -n $CHOSEN ]] || die "refusing --lsn $2: it is before the end of the oldest base backup; $(range)"
      ((lsn <= NEWEST_END)) || die "refusing --lsn $2: it is after the newest archived WAL (in the future of the archive); $(range)"
      TARGET_CONF="recovery_target_lsn = '$2'"
      ;;
  esac
}

# fetch NAME DIR: stream base/CHOSEN/NAME into tar -x in DIR, checking its md5.
fetch() {
  local want got line
  line=$(grep -m 1 "^$1 " <<<"${BK_FILES[$CHOSEN]}") || die "MANIFEST of $CHOSEN lists no $1"
  want=${line#* }
  mkfifo -- "$WORK/pipe"
  md5sum <"$WORK/pipe" >"$WORK/md5" &
  if ! wal_rclone cat "$WAL_TARGET/base/$CHOSEN/$1" 2>"$ERR_FILE" | tee -- "$WORK/pipe" | tar -xz -C "$2" 2>>"$ERR_FILE"; then
    wait || true
    die "fetching and unpacking $WAL_TARGET/base/$CHOSEN/$1 failed: $(one_line "$ERR_FILE")"
  fi
  wait
  rm -f -- "$WORK/pipe"
  got=$(<"$WORK/md5")
  [[ ${want#* } == "${got%% *}" ]] || die "$WAL_TARGET/base/$CHOSEN/$1 does not have the md5 its MANIFEST names"
}

# write_recovery: pgstack-pitr.conf, its include, recovery.signal.
write_recovery() {
  local conf=$PGDATA/postgresql.conf include="include_if_exists = '$PITR_CONF'"
  {
    printf '%s\n' "# Written by $SCRIPT_NAME: the point-in-time restore from $WAL_TARGET, base backup $CHOSEN."
    printf '%s\n' "# Remove it once the server has promoted ($SCRIPT_NAME --finish)."
    printf "restore_command = '%s \"%%f\" \"%%p\" %s'\n" "$SCRIPT_DIR/wal-restore.sh" "$WAL_TARGET"
    printf "recovery_target_timeline = 'latest'\n"
    [[ -z $TARGET_CONF ]] || printf "%s\nrecovery_target_action = 'promote'\n" "$TARGET_CONF"
  } >"$PGDATA/$PITR_CONF"
  grep -qxF -- "$include" "$conf" || printf '\n# Added by %s.\n%s\n' "$SCRIPT_NAME" "$include" >>"$conf"
  : >"$PGDATA/recovery.signal"
  rm -f -- "$PGDATA/standby.signal"
}

# finish: drop the recovery settings after the promotion.
finish() {
  [[ -f $PGDATA/$PITR_CONF ]] || {
    log "no $PITR_CONF in $PGDATA: nothing to do"
    return 0
  }
  [[ ! -e $PGDATA/recovery.signal ]] || die "$PGDATA/recovery.signal exists: the server has not finished the recovery; not removing $PITR_CONF"
  rm -f -- "$PGDATA/$PITR_CONF"
  log "removed $PGDATA/$PITR_CONF (the recovery is over)"
}

main() {
  local check=false
  if [[ ${1-} == --check ]]; then
    check=true
    shift
  fi
  local mode=${1-} value=${2-}
  [[ $check == false || $mode != --finish ]] || usage
  case $mode in
    --time | --lsn) (($# == 2)) || usage ;;
    --latest | --finish) (($# == 1)) || usage ;;
    *) usage ;;
  esac
  load_env
  [[ $mode != --finish ]] || {
    finish
    return 0
  }
  wal_check_target
  if [[ $check == false && -e $PGDATA ]] && [[ ! -d $PGDATA || -n $(find "$PGDATA" -mindepth 1 -maxdepth 1 -print -quit) ]]; then
    die "PGDATA=$PGDATA is not empty: a restore only fills an empty data directory"
  fi
  WORK=$(mktemp -d "$TMPDIR/wal-pitr.XXXXXX")
  ERR_FILE=$WORK/stderr
  trap cleanup EXIT
  load_backups
  ((${#BACKUPS[@]} > 0)) || die "no complete base backup in $WAL_TARGET/base: nothing to restore from"
  newest_wal
  choose "$mode" "$value"
  if [[ $check == true ]]; then
    printf 'base backup %s (ended %s, LSN %s); %s\n' "$CHOSEN" "${BK_STOP_TIME[$CHOSEN]}" "${BK_STOP_LSN[$CHOSEN]}" "$(range)"
    return 0
  fi

  log "restoring base backup $CHOSEN (ended ${BK_STOP_TIME[$CHOSEN]}, LSN ${BK_STOP_LSN[$CHOSEN]}) into $PGDATA"
  mkdir -p -- "$PGDATA"
  chmod 0700 -- "$PGDATA"
  FILLED=true
  fetch base.tar.gz "$PGDATA"
  fetch pg_wal.tar.gz "$PGDATA/pg_wal"
  write_recovery
  FILLED=false
  log "restore prepared: start the server on $PGDATA; it replays from $WAL_TARGET${TARGET_CONF:+ to $TARGET_CONF} and promotes"
}

main "$@"
