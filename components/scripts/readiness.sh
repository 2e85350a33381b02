#!/usr/bin/env bash
# Readiness probe, role-aware. Exit 0 when ready, 1 when not; one line on
# stderr says why either way.
#
# Primary (PRIMARY_POD, by default ordinal 0; any pod with replication off):
#   ready when it accepts connections and is not in recovery.
# Standby (every other pod, with replication): ready when in recovery, the WAL
#   receiver is streaming and the replay lag is <= READINESS_MAX_LAG_BYTES.
#   A lag that cannot be measured (the primary has not reported its position
#   since the WAL receiver connected) is not ready either.
#   A standby that is NOT in recovery has been promoted behind our back
#   (split-brain risk) and is never ready.
#   A standby that does not stream asks the primary why (pod-upstream.sh, pod-slots.sh):
#   another database, a diverged timeline, a lost slot; a missing slot is
#   created again.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib-base.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib-base.sh"
# shellcheck source=pod-config.sh
. "$SCRIPT_DIR/pod-config.sh"
# shellcheck source=pod-psql.sh
. "$SCRIPT_DIR/pod-psql.sh"
# shellcheck source=pod-control-data.sh
. "$SCRIPT_DIR/pod-control-data.sh"
# shellcheck source=pod-upstream.sh
. "$SCRIPT_DIR/pod-upstream.sh"
# shellcheck source=pod-slots.sh
. "$SCRIPT_DIR/pod-slots.sh"

ready() {
  printf 'ready: %s\n' "$*" >&2
  exit 0
}

not_ready() {
  printf 'not ready: %s\n' "$*" >&2
  exit 1
}

# Lag in bytes between the newest WAL this standby knows the primary has
# (what it received, or what the primary last reported, whichever is newer)
# and what it has replayed. NULL (empty) when any of these is unknown, and
# then the next column says which: greatest() skips NULLs, so it must not
# see one. written_lsn is NULL until the WAL receiver has received something
# since it (re)connected (latest_end_lsn may be left from an earlier
# connection until then; an idle primary sends nothing, e.g. after a clone,
# until its next running-transactions record, up to 15s later). Then the lag
# is measured against the primary's WAL position, asked over a replication
# connection (lag_from_primary).
# Then what the diagnosis of a standby that does not stream needs: the system
# identifier, the last checkpoint's timeline, the newest WAL position, the slot
# in use and the WAL segment size.
readonly STATUS_SQL="
SELECT pg_is_in_recovery(),
       coalesce(r.status, 'none'),
       CASE WHEN pg_is_in_recovery() AND r.written_lsn IS NOT NULL AND r.latest_end_lsn IS NOT NULL
                 AND pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_replay_lsn() IS NOT NULL THEN
         greatest(0, pg_wal_lsn_diff(greatest(pg_last_wal_receive_lsn(), r.latest_end_lsn),
                                     pg_last_wal_replay_lsn()))::bigint
       END,
       concat_ws('; ',
         CASE WHEN r.written_lsn IS NULL THEN 'no WAL received since the WAL receiver connected' END,
         CASE WHEN r.latest_end_lsn IS NULL THEN 'the primary has not reported its WAL position yet' END,
         CASE WHEN pg_last_wal_replay_lsn() IS NULL THEN 'no WAL replayed yet' END),
       (SELECT system_identifier FROM pg_control_system()),
       (SELECT timeline_id FROM pg_control_checkpoint()),
       coalesce(greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::text, ''),
       current_setting('primary_slot_name'),
       (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'),
       coalesce(pg_last_wal_replay_lsn()::text, '')
FROM (SELECT) AS one
LEFT JOIN (SELECT status, written_lsn, latest_end_lsn FROM pg_stat_wal_receiver LIMIT 1) AS r ON true"

# lag_from_primary REPLAY_LSN: set LAG to the bytes between the primary's WAL
# flush position (IDENTIFY_SYSTEM) and REPLAY_LSN; fails (UP_ERROR) when the
# primary cannot be asked.
lag_from_primary() {
  local primary replay
  UPSTREAM_TIMEOUT=2
  upstream_probe || return 1
  primary=$(lsn_int "$UP_LSN")
  replay=$(lsn_int "$1")
  LAG=$((primary - replay))
  ((LAG >= 0)) || LAG=0
}

# not_streaming RECEIVER SYSID TLI LSN SLOT SEGSIZE: not ready, with the reason
# the primary gives, when it can be asked. A slot that is missing there (the
# primary was unreachable when this pod started, or someone dropped it) is
# created again, as init.sh would, so that the WAL receiver's next try works.
not_streaming() {
  local receiver=$1 sysid=$2 tli=$3 lsn=$4 slot=$5 segsize=$6 problem
  local generic="standby WAL receiver is '$receiver', not streaming from $PRIMARY_HOST:$PRIMARY_PORT"
  # The probe has a 5s budget in all.
  UPSTREAM_TIMEOUT=2
  if ! upstream_probe; then
    not_ready "$generic (cannot ask the primary: $UP_ERROR)"
  fi
  if [[ -n $lsn ]]; then
    tli=$(wal_timeline_at "$lsn" "$segsize" "$tli")
  fi
  problem=$(upstream_problem "$sysid" "$tli" "$lsn")
  [[ -z $problem ]] || not_ready "$problem"
  if [[ $slot == "$SLOT_NAME" ]]; then
    case $UP_SLOT in
      lost) not_ready "$(slot_lost_message)" ;;
      missing)
        if create_slot; then
          not_ready "$generic: its replication slot $SLOT_NAME did not exist on the primary; created it, the WAL receiver retries (if the primary no longer has the WAL this standby needs, re-clone it: $(reclone_hint))"
        fi
        not_ready "$generic: its replication slot $SLOT_NAME does not exist on the primary, and creating it failed: $UP_ERROR"
        ;;
    esac
  fi
  not_ready "$generic (the primary answers; its log or this server's says why)"
}

main() {
  load_config
  local_server_up 3 || not_ready "server is not accepting connections on $PG_SOCKET_DIR port $PGPORT"

  local out err errfile in_recovery receiver lag unknown sysid tli lsn slot segsize replay problem how=''
  errfile=$(mktemp "$TMPDIR/readiness.XXXXXX")
  trap 'rm -f -- "$errfile"' EXIT
  if ! out=$(PGOPTIONS='-c statement_timeout=4000' PGCONNECT_TIMEOUT=3 psql_local -A -t -F '|' -c "$STATUS_SQL" 2>"$errfile"); then
    err=$(<"$errfile")
    not_ready "status query failed: ${err//$'\n'/ }"
  fi
  IFS='|' read -r in_recovery receiver lag unknown sysid tli lsn slot segsize replay <<<"$out"

  if [[ $IS_PRIMARY == true ]]; then
    if [[ $in_recovery == t ]]; then
      if [[ $REPLICATION_ENABLED == true ]]; then
        not_ready "pod $POD_NAME must be the primary but is in recovery"
      fi
      not_ready "in recovery although replication is disabled"
    fi
    ready "primary accepting connections"
  fi

  [[ $in_recovery == t ]] ||
    not_ready "pod $POD_NAME should be a standby but is not in recovery (promoted?): split-brain risk"
  [[ $receiver == streaming ]] || not_streaming "$receiver" "$sysid" "$tli" "$lsn" "$slot" "$segsize"
  if [[ -z $lag ]]; then
    [[ -n $replay ]] || not_ready "standby replay lag is unknown (${unknown:-no WAL position})"
    lag_from_primary "$replay" ||
      not_ready "standby replay lag is unknown (${unknown:-no WAL position}; cannot ask the primary: $UP_ERROR)"
    # Nothing received since the WAL receiver connected: it may be about to be refused (another database, a
    # diverged timeline), so the primary's answer is checked as when it is not streaming.
    [[ -z $lsn ]] || tli=$(wal_timeline_at "$lsn" "$segsize" "$tli")
    problem=$(upstream_problem "$sysid" "$tli" "$lsn")
    [[ -z $problem ]] || not_ready "$problem"
    lag=$LAG
    how=', measured against the primary'
  fi
  ((lag <= READINESS_MAX_LAG_BYTES)) ||
    not_ready "standby replay lag ${lag} bytes exceeds READINESS_MAX_LAG_BYTES=${READINESS_MAX_LAG_BYTES}"
  ready "standby streaming, replay lag ${lag} bytes$how"
}

main "$@"
