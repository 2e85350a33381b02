#!/usr/bin/env bash
# Helpers for a standby and its primary, shared by init.sh and readiness.sh.
# Sourced after common.sh, never executed on its own.
#
# - Each standby streams through its own physical replication slot on the
#   primary (SLOT_NAME, from the pod name), so the primary keeps the WAL a
#   standby still needs while that standby is down (bounded by
#   max_slot_wal_keep_size).
# - A standby that does not stream is diagnosed against the primary: another
#   database (system identifier), a timeline it cannot follow (diverged), a
#   lost slot.
# - A primary with an empty volume looks for peers that still hold data before
#   it creates a new cluster.
#
# Every connection to the primary is a physical replication connection as
# REPLICATION_USER through the 0600 passfile (never a password in an argument
# or the environment), and every one is bounded in time.
set -euo pipefail

# Seconds one connection to the primary may take (connect and command).
UPSTREAM_TIMEOUT=5

# upstream_psql [psql args...]: psql over a replication connection to the
# primary (replication commands only); unaligned rows, fields split by '|',
# errors with their SQLSTATE ("ERROR:  42710: ...").
upstream_psql() {
  local conninfo
  conninfo="host=$PRIMARY_HOST port=$PRIMARY_PORT user=$REPLICATION_USER passfile=$REPLICATION_PGPASS"
  conninfo+=" replication=true connect_timeout=$UPSTREAM_TIMEOUT application_name=$POD_NAME/${SCRIPT_NAME%.sh}"
  timeout -k 1 "$((UPSTREAM_TIMEOUT + 1))" \
    psql -X -q -w -A -t -F '|' -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$conninfo" "$@"
}

# upstream_run VAR [psql args...]: upstream_psql with its output in VAR; on a
# failure, UP_ERROR holds the first error line (or says it timed out).
upstream_run() {
  # No xtrace (bash -x) lines in the error output we parse.
  local -
  set +x
  local -n _out=$1
  shift
  local errf rc=0
  errf=$(mktemp "${TMPDIR:-/tmp}/upstream.XXXXXX")
  _out=$(upstream_psql "$@" 2>"$errf") || rc=$?
  UP_ERROR=''
  if ((rc != 0)); then
    IFS= read -r UP_ERROR <"$errf" || true
    UP_ERROR=${UP_ERROR#psql: }
    if ((rc == 124 || rc == 137)); then
      UP_ERROR="no answer within $((UPSTREAM_TIMEOUT + 1))s"
    fi
    [[ -n $UP_ERROR ]] || UP_ERROR="psql exited with status $rc"
  fi
  rm -f -- "$errf"
  return "$rc"
}

# reclone_hint: the commands that give this pod an empty volume, so that it
# clones the primary again.
reclone_hint() {
  local ns=${POD_NAMESPACE:-<namespace>}
  printf 'kubectl -n %s delete pvc data-%s --wait=false && kubectl -n %s delete pod %s\n' "$ns" "$POD_NAME" "$ns" "$POD_NAME"
}

# lsn_int LSN: print the LSN X/Y as one integer.
lsn_int() {
  [[ $1 =~ ^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$ ]] || die "'$1' is not a WAL position (X/Y)"
  printf '%d\n' "$(((16#${BASH_REMATCH[1]} << 32) | 16#${BASH_REMATCH[2]}))"
}

# wal_timeline_at LSN SEGMENT_BYTES TLI: the timeline of this server's WAL at
# LSN: the newest timeline among the files in PGDATA/pg_wal of the segment
# that holds the byte before LSN, and at least TLI (the last checkpoint's,
# which lags behind a timeline switch until the next restartpoint).
wal_timeline_at() {
  local pos seg per name f t best=$3
  pos=$(lsn_int "$1")
  if ((pos > 0 && $2 > 0)); then
    seg=$(((pos - 1) / $2))
    per=$((0x100000000 / $2))
    name=$(printf '%08X%08X' "$((seg / per))" "$((seg % per))")
    for f in "$PGDATA"/pg_wal/????????"$name" "$PGDATA"/pg_wal/????????"$name".partial; do
      [[ -e $f ]] || continue
      f=${f##*/}
      t=$((16#${f:0:8}))
      if ((t > best)); then
        best=$t
      fi
    done
  fi
  printf '%s\n' "$best"
}

# control_data: read the stopped cluster in PGDATA with pg_controldata. Sets
# CTL_SYSID, CTL_TLI and CTL_LSN (the newest position pg_control records, and
# its timeline), CTL_SEGSIZE, and CTL_HOT_STANDBY_ARGS: the settings a hot
# standby of this data needs at least ("-c name=value" each). Returns 1 when
# pg_controldata is missing or fails.
control_data() {
  local out key val ckpt='' min_lsn='' min_tli=0
  CTL_SYSID='' CTL_TLI='' CTL_LSN='' CTL_SEGSIZE='' CTL_HOT_STANDBY_ARGS=()
  command -v pg_controldata >/dev/null 2>&1 || return 1
  # Another major's pg_controldata would misread pg_control.
  out=$(pg_controldata --version 2>&1) || return 1
  [[ $out =~ \(PostgreSQL\)\ ([0-9]+) && ${BASH_REMATCH[1]} == "$(<"$PGDATA/PG_VERSION")" ]] || {
    log "pg_controldata is not PostgreSQL $(<"$PGDATA/PG_VERSION")'s ($out)"
    return 1
  }
  out=$(LC_ALL=C pg_controldata -D "$PGDATA" 2>&1) || {
    log "pg_controldata failed: ${out//$'\n'/ }"
    return 1
  }
  while IFS=: read -r key val; do
    val=${val#"${val%%[![:space:]]*}"}
    case $key in
      'Database system identifier') CTL_SYSID=$val ;;
      'Latest checkpoint location') ckpt=$val ;;
      "Latest checkpoint's TimeLineID") CTL_TLI=$val ;;
      'Minimum recovery ending location') min_lsn=$val ;;
      "Min recovery ending loc's timeline") min_tli=$val ;;
      'Bytes per WAL segment') CTL_SEGSIZE=$val ;;
      'max_connections setting') CTL_HOT_STANDBY_ARGS+=(-c "max_connections=$val") ;;
      'max_worker_processes setting') CTL_HOT_STANDBY_ARGS+=(-c "max_worker_processes=$val") ;;
      'max_wal_senders setting') CTL_HOT_STANDBY_ARGS+=(-c "max_wal_senders=$val") ;;
      'max_prepared_xacts setting') CTL_HOT_STANDBY_ARGS+=(-c "max_prepared_transactions=$val") ;;
      'max_locks_per_xact setting') CTL_HOT_STANDBY_ARGS+=(-c "max_locks_per_transaction=$val") ;;
    esac
  done <<<"$out"
  [[ $CTL_SYSID =~ $UINT_RE && $CTL_TLI =~ $UINT_RE && $CTL_SEGSIZE =~ $UINT_RE ]] || {
    log "cannot parse the output of pg_controldata"
    return 1
  }
  CTL_LSN=$ckpt
  if [[ -n $min_lsn && $min_tli =~ $UINT_RE ]] && ((min_tli > 0)) &&
    (($(lsn_int "$min_lsn") > $(lsn_int "$ckpt"))); then
    CTL_LSN=$min_lsn
    ((min_tli <= CTL_TLI)) || CTL_TLI=$min_tli
  fi
}

# upstream_probe: ask the primary who it is and about this standby's slot
# (IDENTIFY_SYSTEM, READ_REPLICATION_SLOT). Sets UP_SYSID, UP_TLI, UP_LSN (its
# WAL flush position) and UP_SLOT: 'missing', 'lost' (invalidated: it keeps no WAL) or 'ok'. Returns 1,
# with the reason in UP_ERROR, when the primary cannot be asked.
upstream_probe() {
  local out identify slot slot_type slot_lsn
  UP_SYSID='' UP_TLI='' UP_LSN='' UP_SLOT=''
  upstream_run out -c IDENTIFY_SYSTEM -c "READ_REPLICATION_SLOT \"$SLOT_NAME\"" || return 1
  { IFS= read -r identify && IFS= read -r slot; } <<<"$out" || true
  # shellcheck disable=SC2034 # UP_LSN is read by readiness.sh.
  IFS='|' read -r UP_SYSID UP_TLI UP_LSN _ <<<"$identify"
  IFS='|' read -r slot_type slot_lsn _ <<<"$slot"
  if ! [[ $UP_SYSID =~ $UINT_RE && $UP_TLI =~ $UINT_RE ]]; then
    UP_ERROR="unexpected answer to IDENTIFY_SYSTEM: $identify"
    return 1
  fi
  if [[ -z $slot_type ]]; then
    UP_SLOT=missing
  elif [[ -z $slot_lsn ]]; then
    UP_SLOT=lost
  else
    UP_SLOT=ok
  fi
}

# upstream_divergence TLI LSN: after upstream_probe, print why WAL of this
# server up to LSN on timeline TLI cannot continue on the primary's timeline
# (nothing when it can, or when the primary's history cannot be read).
upstream_divergence() {
  local tli=$1 lsn=$2 out htli hlsn switch='' next=''
  ((tli != UP_TLI)) || return 0
  if ((tli > UP_TLI)); then
    printf "diverged: this pod's WAL is on timeline %s, newer than the primary's timeline %s; re-clone it: %s\n" \
      "$tli" "$UP_TLI" "$(reclone_hint)"
    return 0
  fi
  upstream_run out -c "TIMELINE_HISTORY $UP_TLI" || return 0
  # One row: the file name, then the file itself ("tli<TAB>switchpoint<TAB>reason" lines).
  out=${out#*|}
  while IFS=$'\t' read -r htli hlsn _; do
    [[ $htli =~ $UINT_RE ]] || continue
    if [[ -n $switch && -z $next ]]; then
      next=$htli
    fi
    if ((htli == tli)); then
      switch=$hlsn
    fi
  done <<<"$out"
  if [[ -z $switch ]]; then
    printf "diverged: this pod's timeline %s is not in the history of the primary's timeline %s; re-clone it: %s\n" \
      "$tli" "$UP_TLI" "$(reclone_hint)"
    return 0
  fi
  next=${next:-$UP_TLI}
  if (($(lsn_int "$lsn") > $(lsn_int "$switch"))); then
    printf 'diverged: this pod wrote WAL past the promotion point of timeline %s (its WAL on timeline %s reaches %s, timeline %s forked off at %s); re-clone it: %s\n' \
      "$next" "$tli" "$lsn" "$next" "$switch" "$(reclone_hint)"
  fi
}

# upstream_problem SYSID TLI LSN: after upstream_probe, print what keeps this
# standby (system identifier SYSID, WAL up to LSN on timeline TLI; TLI and LSN
# may be empty when unknown) from following the primary: another database, or
# a diverged timeline. Nothing when neither.
upstream_problem() {
  if [[ -n $1 && $1 != "$UP_SYSID" ]]; then
    printf "primary %s runs a different database (system identifier %s, this standby %s): the primary was re-initialised, probably with an empty volume; do not let clients write there; follow README 'Runbook: the primary lost its volume'\n" \
      "$PRIMARY_HOST" "$UP_SYSID" "$1"
    return 0
  fi
  if [[ -n $2 && -n $3 ]]; then
    upstream_divergence "$2" "$3"
  fi
}

# slot_lost_message: the slot exists but keeps no WAL any more.
slot_lost_message() {
  printf 'standby fell behind: the primary no longer keeps the WAL it needs (slot %s lost); re-clone it: %s\n' \
    "$SLOT_NAME" "$(reclone_hint)"
}

# create_slot: create this standby's slot on the primary, reserving WAL from
# now on. Succeeds when it is created or already exists.
create_slot() {
  local out
  if upstream_run out -c "CREATE_REPLICATION_SLOT \"$SLOT_NAME\" PHYSICAL RESERVE_WAL"; then
    return 0
  fi
  # 42710 duplicate_object: the slot is there already.
  [[ $UP_ERROR == *' 42710: '* ]]
}

# drop_slot: drop this standby's slot on the primary (before a new clone makes
# a new one). Succeeds when it is dropped or does not exist; fails while a
# walsender still uses it (e.g. the old pod's connection has not timed out yet).
drop_slot() {
  local out
  if upstream_run out -c "DROP_REPLICATION_SLOT \"$SLOT_NAME\""; then
    log "standby: dropped the replication slot $SLOT_NAME left on the primary by this pod's old data"
    return 0
  fi
  # 42704 undefined_object: no such slot.
  [[ $UP_ERROR == *' 42704: '* ]] && return 0
  log "standby: cannot drop the replication slot $SLOT_NAME on the primary: $UP_ERROR"
  return 1
}

# check_primary_at_start: a standby with data, before postgres starts. Make
# sure its slot exists on the primary, and log anything that will keep it from
# streaming. Never refuses to start: this data stays readable, and it may be
# the copy to promote.
check_primary_at_start() {
  local sysid='' tli='' lsn='' problem
  if control_data; then
    sysid=$CTL_SYSID
    lsn=$CTL_LSN
    tli=$(wal_timeline_at "$CTL_LSN" "$CTL_SEGSIZE" "$CTL_TLI")
  else
    log "standby: cannot read $PGDATA/global/pg_control (pg_controldata); skipping the checks of its identity and timeline"
  fi
  if ! upstream_probe; then
    log "standby: cannot check the primary $PRIMARY_HOST:$PRIMARY_PORT now ($UP_ERROR); the WAL receiver keeps trying"
    return 0
  fi
  problem=$(upstream_problem "$sysid" "$tli" "$lsn")
  if [[ -n $problem ]]; then
    log "standby: WARNING: $problem"
    return 0
  fi
  case $UP_SLOT in
    missing)
      if create_slot; then
        log "standby: created the replication slot $SLOT_NAME on the primary"
      else
        log "standby: cannot create the replication slot $SLOT_NAME on the primary: $UP_ERROR"
      fi
      ;;
    lost) log "standby: WARNING: $(slot_lost_message)" ;;
    *) log "standby: the primary keeps this standby's WAL in the replication slot $SLOT_NAME" ;;
  esac
}

# refuse_if_peer_running: the primary's volume is empty. When another pod of
# the set (an A record of PEERS_HOST, the headless Service) runs PostgreSQL,
# it holds data that a new empty primary would silently replace: stop. Looks
# for PEER_CHECK_SECONDS, so that a peer that is just restarting is seen.
# Only with replication and PEERS_HOST set.
refuse_if_peer_running() {
  [[ $REPLICATION_ENABLED == true && -n $PEERS_HOST ]] || return 0
  local deadline ips ip rc rounds=0
  deadline=$(($(now_ms) + PEER_CHECK_SECONDS * 1000))
  log "primary: the volume is empty; checking for ${PEER_CHECK_SECONDS}s that no pod of $PEERS_HOST runs PostgreSQL"
  while :; do
    rounds=$((rounds + 1))
    if ips=$(getent ahostsv4 "$PEERS_HOST" | awk '!seen[$1]++ { print $1 }') && [[ -n $ips ]]; then
      for ip in $ips; do
        rc=0
        pg_isready -q -h "$ip" -p "$PRIMARY_PORT" -t 3 >/dev/null 2>&1 || rc=$?
        # 0: accepting connections; 1: rejecting them (starting up, recovering).
        if ((rc == 0 || rc == 1)); then
          die "the primary's volume is empty but $ip (a pod of this set) is running PostgreSQL with data: refusing to start an empty primary; follow README 'Runbook: the primary lost its volume' (promote the standby with the data)"
        fi
      done
    elif ((rounds == 1)); then
      log "primary: $PEERS_HOST resolves to no IPv4 address (no peers yet)"
    fi
    sleep_within 1 "$deadline" || break
  done
  log "primary: no pod of $PEERS_HOST runs PostgreSQL"
}
