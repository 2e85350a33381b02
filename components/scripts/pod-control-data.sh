#!/usr/bin/env bash
# This server's own WAL position and identity, read from the stopped cluster
# in PGDATA (pg_controldata, the files in pg_wal): what a standby's diagnosis
# compares with the primary.
# shellcheck disable=SC2034 # The CTL_* results are read by the files that source this one.
set -euo pipefail

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
