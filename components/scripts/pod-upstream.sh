#!/usr/bin/env bash
# Asking the primary about this standby: who it is (system identifier,
# timeline, WAL position), its timeline history, this standby's slot, and what
# keeps this standby from following it (another database, a diverged
# timeline).
#
# Every connection to the primary is a physical replication connection as
# REPLICATION_USER through the 0600 passfile (never a password in an argument
# or the environment), verifies the primary's certificate when TLS is on
# (UPSTREAM_TLS), and every one is bounded in time.
# shellcheck disable=SC2034 # The UP_* results are read by the files that source this one.
set -euo pipefail

# Seconds one connection to the primary may take (connect and command).
UPSTREAM_TIMEOUT=5

# replication_psql HOST [psql args...]: psql over a replication connection to
# the pod at HOST (every pod listens on PRIMARY_PORT; replication commands
# only); unaligned rows, fields split by '|', errors with their SQLSTATE
# ("ERROR:  42710: ...").
replication_psql() {
  local conninfo
  conninfo="host=$1 port=$PRIMARY_PORT user=$REPLICATION_USER passfile=$REPLICATION_PGPASS"
  conninfo+=" replication=true connect_timeout=$UPSTREAM_TIMEOUT application_name=$POD_NAME/${SCRIPT_NAME%.sh}"
  conninfo+=${UPSTREAM_TLS:+ $UPSTREAM_TLS}
  shift
  timeout -k 1 "$((UPSTREAM_TIMEOUT + 1))" \
    psql -X -q -w -A -t -F '|' -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$conninfo" "$@"
}

# upstream_psql [psql args...]: replication_psql to the primary.
upstream_psql() {
  replication_psql "$PRIMARY_HOST" "$@"
}

# upstream_run VAR [psql args...]: replication_run to the primary.
upstream_run() {
  replication_run "$1" "$PRIMARY_HOST" "${@:2}"
}

# replication_run VAR HOST [psql args...]: replication_psql with its output in
# VAR; on a failure, UP_ERROR holds the first error line (or says it timed out).
replication_run() {
  # No xtrace (bash -x) lines in the error output we parse.
  local -
  set +x
  local -n _out=$1
  local host=$2
  shift 2
  local errf rc=0
  errf=$(mktemp "$TMPDIR/upstream.XXXXXX")
  _out=$(replication_psql "$host" "$@" 2>"$errf") || rc=$?
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

# upstream_probe: ask the primary who it is and about this standby's slot
# (IDENTIFY_SYSTEM, READ_REPLICATION_SLOT). Sets UP_SYSID, UP_TLI, UP_LSN (its
# WAL flush position) and UP_SLOT: 'missing', 'lost' (invalidated: it keeps no WAL) or 'ok'. Returns 1,
# with the reason in UP_ERROR, when the primary cannot be asked.
upstream_probe() {
  local out identify slot slot_type slot_lsn
  UP_SYSID='' UP_TLI='' UP_LSN='' UP_SLOT=''
  upstream_run out -c IDENTIFY_SYSTEM -c "READ_REPLICATION_SLOT \"$SLOT_NAME\"" || return 1
  { IFS= read -r identify && IFS= read -r slot; } <<<"$out" || true
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
    printf "primary %s runs a different database (system identifier %s, this standby %s): the primary was re-initialised, probably with an empty volume; do not let clients write there; follow docs/operations.md#primary-lost-its-volume\n" \
      "$PRIMARY_HOST" "$UP_SYSID" "$1"
    return 0
  fi
  if [[ -n $2 && -n $3 ]]; then
    upstream_divergence "$2" "$3"
  fi
}
