#!/usr/bin/env bash
# Logical backup: what the dumps CronJob runs. One run writes one dump and
# prunes old ones; exit 0 only when the new dump is complete.
#
# Layout, on the dumps volume (BACKUP_DIR):
#   <UTC start time, 20261122T010203Z>/
#     globals.sql.gz   pg_dumpall --globals-only --no-role-passwords: roles,
#                      memberships, tablespaces; never a password hash (role
#                      passwords come from the stack's Secret)
#     <database>.dump  pg_dump -Fc of every database that allows connections
#                      (postgres included; not template0/template1):
#                      compressed, restorable one database at a time, in
#                      parallel (pg_restore -j). Names other than
#                      [A-Za-z0-9_.-] are %XX-encoded (dump_stem).
#     MANIFEST         written last: server version, the host dumped from and
#                      whether it was a standby, the databases, and the size
#                      and sha256 of every file (restore.sh checks them)
#   The run writes into <time>.partial/, syncs it and renames it (atomic
#   publish, as init.sh does): only a directory with that name and a MANIFEST
#   is a complete dump.
#
# Where from: the first of BACKUP_HOSTS that answers (the read-only Service,
#   i.e. a standby, then the read-write one), retried with backoff for up to
#   BACKUP_CONNECT_SECONDS (a new pod's first connections may wait on its
#   NetworkPolicy). A database whose dump a standby cancels ("conflict with
#   recovery": replay needed a lock or rows the dump held) is dumped again from
#   the next host (the primary). Each database is consistent on its own; a
#   dump from a standby is as of its replay position (MANIFEST:
#   replayed_until), its sequences may be up to 32 values ahead of the
#   primary's (pre-logged WAL), and it has no data of unlogged tables (a
#   standby has none; pg_dump keeps their definitions). A Service may send
#   each connection to another of its pods: the MANIFEST records the Service
#   and what its first connection found.
#
# One run at a time: an exclusive flock on BACKUP_DIR/.lock for the whole run
#   (non-blocking: a second run fails at once; restore.sh holds it shared
#   while it reads a dump). pg_dump inherits the lock, so a dump outliving a
#   killed script still keeps the next run out.
# Failure: any failed step stops the run with one line naming the database
#   (or step) and the error, removes the .partial directory and prunes nothing.
#   SIGTERM/SIGINT stop the running tool and clean up the same way.
# Leftovers: <time>.partial directories of killed runs are removed at the
#   start, under the lock: the lock is held as long as any process of a run
#   lives, so a .partial seen under the lock has no writer. Removing them
#   first also frees their space before the new dump needs it.
# Retention, only after the new dump is published: a complete dump is kept if
#   it is among the newest BACKUP_KEEP complete dumps (0: no count rule) OR
#   younger than BACKUP_KEEP_DAYS days by its name (0: no age rule); both 0
#   keep everything. The newest complete dump (and the one just written) is
#   never removed. A removed dump is renamed to <time>.partial first, so that
#   a crash half-way never leaves a directory that looks complete. The volume
#   must hold BACKUP_KEEP + 1 dumps: a full volume fails the run (and says so)
#   before anything is pruned.
#
# Environment: BACKUP_DIR, BACKUP_HOSTS (space-separated), PGPORT, SECRETS_DIR
#   (postgres-password: the superuser, over TCP with scram through a 0600
#   passfile in a private directory under TMPDIR), BACKUP_KEEP (default 7),
#   BACKUP_KEEP_DAYS (default 0), BACKUP_CONNECT_SECONDS (default 120),
#   TMPDIR (default /tmp), POD_NAME (logs). BACKUP_NOW (a time like the
#   directory names) replaces the clock; only tests set it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

# Longest pause between two rounds of connection attempts.
readonly CONNECT_BACKOFF_MAX_SECONDS=10
readonly COUNT_RE='^[0-9]{1,9}$'

HOSTS=()
WORK=''
PARTIAL=''
CHILD=''
ERR_FILE=''
LOCK_FD=''

usage() {
  printf '%s\n' "usage: $SCRIPT_NAME   (configured by the environment; see the header of this script)"
}

load_backup_config() {
  local v h
  for v in BACKUP_DIR BACKUP_HOSTS PGPORT SECRETS_DIR; do
    [[ -n ${!v-} ]] || die "environment variable $v is required"
  done
  [[ $BACKUP_DIR == / ]] || BACKUP_DIR=${BACKUP_DIR%/}
  _require_match BACKUP_DIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  _require_match SECRETS_DIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  _require_match PGPORT "$UINT_RE" 'a TCP port number'
  read -r -a HOSTS <<<"$BACKUP_HOSTS"
  ((${#HOSTS[@]} > 0)) || die "BACKUP_HOSTS='$BACKUP_HOSTS' is invalid: expected host names separated by spaces"
  for h in "${HOSTS[@]}"; do
    [[ $h =~ $HOST_RE ]] ||
      die "BACKUP_HOSTS='$BACKUP_HOSTS' is invalid: '$h' is not a host name or IP address (expected host names separated by spaces)"
  done
  BACKUP_KEEP=${BACKUP_KEEP:-7}
  _require_match BACKUP_KEEP "$COUNT_RE" 'a non-negative integer (dumps; 0: no count rule)'
  BACKUP_KEEP_DAYS=${BACKUP_KEEP_DAYS:-0}
  _require_match BACKUP_KEEP_DAYS "$COUNT_RE" 'a non-negative integer (days; 0: no age rule)'
  BACKUP_CONNECT_SECONDS=${BACKUP_CONNECT_SECONDS:-120}
  _require_match BACKUP_CONNECT_SECONDS "$COUNT_RE" 'a non-negative integer (seconds)'
  POD_NAME=${POD_NAME-}
  if [[ -n $POD_NAME ]]; then
    _require_match POD_NAME "$POD_RE" 'a pod name'
  fi
  TMPDIR=${TMPDIR:-/tmp}
  _require_match TMPDIR "$PATH_RE" 'an absolute path of [A-Za-z0-9._/-]'
  BACKUP_NOW=${BACKUP_NOW-}
  if [[ -n $BACKUP_NOW ]]; then
    _require_match BACKUP_NOW "$DUMP_STAMP_RE" 'a UTC time like 20261122T010203Z'
  fi
  [[ -d $BACKUP_DIR ]] || die "BACKUP_DIR=$BACKUP_DIR is not a directory (is the dumps volume mounted?)"
  [[ -w $BACKUP_DIR ]] || die "BACKUP_DIR=$BACKUP_DIR is not writable by uid $(id -u)"
  [[ -d $TMPDIR && -w $TMPDIR ]] || die "TMPDIR=$TMPDIR is not a writable directory"
  # libpq: never prompt; each connection attempt is bounded.
  export PGCONNECT_TIMEOUT=${PGCONNECT_TIMEOUT:-10}
}

# ------------------------------------------------------------ run control

cleanup() {
  local rc=$?
  if [[ -n $CHILD ]]; then
    kill -TERM "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
    CHILD=''
  fi
  if [[ -n $PARTIAL && -e $PARTIAL ]]; then
    rm -rf -- "$PARTIAL"
    log "removed the incomplete dump $PARTIAL; earlier dumps are untouched"
  fi
  if [[ -n $WORK ]]; then
    rm -rf -- "$WORK"
  fi
  exit "$rc"
}

on_signal() {
  log "received SIG$1: stopping"
  exit "$2"
}

# run_tool COMMAND...: run COMMAND in the background with its stderr in
# ERR_FILE and wait for it, so that SIGTERM reaches this script (and through
# cleanup, the tool) at once. Returns the tool's exit status.
run_tool() {
  local rc=0
  "$@" 2>"$ERR_FILE" &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=''
  return "$rc"
}

# pass_warnings: copy a successful tool's messages (warnings) to the log.
pass_warnings() {
  [[ ! -s $ERR_FILE ]] || cat -- "$ERR_FILE" >&2
}

# volume_full_reason: the reason when ERR_FILE says the volume is full.
volume_full_reason() {
  grep -o -m 1 -e 'No space left on device' -e 'Disk quota exceeded' -- "$ERR_FILE" 2>/dev/null || true
}

# die_step WHAT: die with the error of the step WHAT (a full volume says so).
die_step() {
  local reason avail
  reason=$(volume_full_reason)
  if [[ -n $reason ]]; then
    avail=$(df -B1 --output=avail -- "$BACKUP_DIR" 2>/dev/null | tail -n 1) || avail=''
    avail=${avail// /}
    die "backup volume full: $1: $reason (${avail:-?} bytes free on $BACKUP_DIR); the incomplete dump is removed and nothing was pruned. Make room for one more dump: grow the dumps volume, or keep fewer dumps (BACKUP_KEEP, BACKUP_KEEP_DAYS) and remove the oldest by hand"
  fi
  die "$1: $(one_line "$ERR_FILE")"
}

take_lock() {
  local lock=$BACKUP_DIR/.lock
  if ! { exec {LOCK_FD}>>"$lock"; } 2>"$ERR_FILE"; then
    die_step "cannot open the lock file $lock"
  fi
  flock -n "$LOCK_FD" ||
    die "another run holds $lock (a backup still running, or restore.sh reading a dump); not starting a second one"
}

# now_epoch: the run's clock in seconds (BACKUP_NOW when a test set it).
now_epoch() {
  if [[ -n $BACKUP_NOW ]]; then
    stamp_epoch "$BACKUP_NOW"
  else
    printf '%s\n' "$EPOCHSECONDS"
  fi
}

# stamp_epoch STAMP: seconds since the epoch of a dump name like 20261122T010203Z.
stamp_epoch() {
  local s=$1
  date -u -d "${s:0:4}-${s:4:2}-${s:6:2}T${s:9:2}:${s:11:2}:${s:13:2}Z" +%s
}

# ------------------------------------------------------------ servers

# probe HOST: does HOST answer as a usable server? On success sets PROBE to
# "in_recovery<US>server_version_num<US>server_version<US>replay_timestamp";
# on failure sets PROBE_ERROR to why.
PROBE=''
PROBE_ERROR=''
probe() {
  local host=$1 timeout=${2:-$PGCONNECT_TIMEOUT} rc=0
  PROBE='' PROBE_ERROR=''
  ((timeout >= 2)) || timeout=2
  pg_isready -h "$host" -p "$PGPORT" -t "$timeout" >"$ERR_FILE" 2>&1 || rc=$?
  if ((rc != 0)); then
    PROBE_ERROR="pg_isready: $(one_line "$ERR_FILE")"
    return 1
  fi
  if ! PROBE=$(PGCONNECT_TIMEOUT=$timeout psql -X -q -w -A -t -F $'\x1f' -v ON_ERROR_STOP=1 \
    -d "$(superuser_conninfo "$host" postgres)" 2>"$ERR_FILE" \
    -c "SELECT pg_is_in_recovery(), current_setting('server_version_num'), current_setting('server_version'),
               coalesce(pg_last_xact_replay_timestamp()::text, '')"); then
    PROBE_ERROR=$(one_line "$ERR_FILE")
    return 1
  fi
}

# choose_host: set HOST_INDEX to the first of HOSTS that answers, trying all
# of them in rounds with backoff until BACKUP_CONNECT_SECONDS have passed.
HOST_INDEX=''
choose_host() {
  local deadline delay=1 i left errors
  deadline=$(($(now_ms) + BACKUP_CONNECT_SECONDS * 1000))
  while :; do
    errors=''
    for i in "${!HOSTS[@]}"; do
      left=$(((deadline - $(now_ms)) / 1000))
      ((left <= PGCONNECT_TIMEOUT)) || left=$PGCONNECT_TIMEOUT
      if probe "${HOSTS[i]}" "$left"; then
        HOST_INDEX=$i
        return 0
      fi
      errors+="${errors:+; }${HOSTS[i]}: $PROBE_ERROR"
    done
    if (($(now_ms) >= deadline)); then
      die "no server answered within ${BACKUP_CONNECT_SECONDS}s (BACKUP_CONNECT_SECONDS) on any of BACKUP_HOSTS ($BACKUP_HOSTS): $errors"
    fi
    log "no server answers yet ($errors); next round in ${delay}s"
    sleep_within "$delay" "$deadline" || true
    delay=$((delay * 2))
    ((delay <= CONNECT_BACKOFF_MAX_SECONDS)) || delay=$CONNECT_BACKOFF_MAX_SECONDS
  done
}

# role_of IN_RECOVERY: "standby" or "primary".
role_of() {
  if [[ $1 == t ]]; then
    printf 'standby\n'
  else
    printf 'primary\n'
  fi
}

# ------------------------------------------------------------ dumping

# dump_step WHAT FILE KIND [DB]: dump (KIND globals or database DB) into FILE
# from HOSTS[HOST_INDEX]. When a standby cancels it for a recovery conflict,
# log it and dump again from the next host that answers. Sets STEP_HOST and
# STEP_STANDBY to where the dump came from.
STEP_HOST=''
STEP_STANDBY=''
dump_step() {
  local what=$1 file=$2 kind=$3 db=${4-} i=$HOST_INDEX standby=$IN_RECOVERY host conninfo
  while :; do
    host=${HOSTS[i]}
    rm -f -- "$file"
    if [[ $kind == globals ]]; then
      conninfo=$(superuser_conninfo "$host" postgres)
      if run_tool pg_dumpall --globals-only --no-role-passwords -d "$conninfo" -f "$file"; then
        break
      fi
    else
      conninfo=$(superuser_conninfo "$host" "$db")
      if run_tool pg_dump -Fc -d "$conninfo" -f "$file"; then
        break
      fi
    fi
    # Only a standby cancels for this (whatever the first connection found:
    # a Service may send each connection to another pod).
    if grep -q 'conflict with recovery' -- "$ERR_FILE"; then
      log "recovery conflict: the standby $host cancelled the dump of $what ($(one_line "$ERR_FILE")); dumping it again from the next host"
      while ((++i < ${#HOSTS[@]})); do
        if probe "${HOSTS[i]}"; then
          standby=${PROBE%%$'\x1f'*}
          continue 2
        fi
        log "${HOSTS[i]} does not answer: $PROBE_ERROR"
      done
      die "dump of $what failed on the standby $host (recovery conflict) and no later host of BACKUP_HOSTS answered"
    fi
    die_step "dump of $what from $host ($(role_of "$standby")) failed"
  done
  pass_warnings
  STEP_HOST=$host
  STEP_STANDBY=$standby
}

# list_databases: DATABASES (names) and DB_BYTES (sizes) of every database
# that allows connections, template0 and template1 excepted.
DATABASES=()
DB_BYTES=()
list_databases() {
  local out
  out="$WORK/databases"
  psql -X -q -w -A -t -z -0 -v ON_ERROR_STOP=1 -d "$(superuser_conninfo "${HOSTS[HOST_INDEX]}" postgres)" \
    -c "SELECT datname, pg_database_size(oid) FROM pg_database
        WHERE datallowconn AND datname NOT IN ('template0', 'template1') ORDER BY datname" >"$out" 2>"$ERR_FILE" ||
    die_step "listing the databases on ${HOSTS[HOST_INDEX]} failed"
  local -a fields
  mapfile -d '' -t fields <"$out"
  DATABASES=() DB_BYTES=()
  local i
  for ((i = 0; i + 1 < ${#fields[@]}; i += 2)); do
    DATABASES+=("${fields[i]}")
    DB_BYTES+=("${fields[i + 1]}")
  done
  ((${#DATABASES[@]} > 0)) || die "no database to dump on ${HOSTS[HOST_INDEX]}"
}

# human BYTES: BYTES in KiB, MiB or GiB with one decimal.
human() {
  local unit=KiB div=1024 tenths
  if (($1 >= 1073741824)); then
    unit=GiB div=1073741824
  elif (($1 >= 1048576)); then
    unit=MiB div=1048576
  fi
  tenths=$(($1 * 10 / div))
  printf '%d.%d %s\n' "$((tenths / 10))" "$((tenths % 10))" "$unit"
}

# write_manifest: the MANIFEST, last, then sync every file and the directory.
# Its lines (space-separated, the last field may contain spaces):
#   pgstack-dump 1
#   created <stamp> / host <host> / standby true|false
#   replayed_until <timestamp> (standby only) / server_version <num> <version>
#   pg_dump <version>
#   database <stem> <database bytes> <host dumped from> <standby: true|false>
#   file <sha256> <bytes> <file name>
write_manifest() {
  local tmp=$PARTIAL/MANIFEST.tmp text sum size f i standby=false
  local -a paths
  [[ $IN_RECOVERY != t ]] || standby=true
  text="$DUMP_FORMAT"$'\n'
  text+="created $STAMP"$'\n'
  text+="host ${HOSTS[HOST_INDEX]}"$'\n'
  text+="standby $standby"$'\n'
  [[ $standby != true ]] || text+="replayed_until ${REPLAY_TS:-unknown}"$'\n'
  text+="server_version $SERVER_VERSION_NUM $SERVER_VERSION"$'\n'
  text+="pg_dump $(pg_dump --version)"$'\n'
  for i in "${!DATABASES[@]}"; do
    text+="database ${STEMS[i]} ${DB_BYTES[i]} ${DB_HOST[i]} ${DB_STANDBY[i]}"$'\n'
  done
  for f in "${FILES[@]}"; do
    sum=$(sha256sum -- "$PARTIAL/$f")
    size=$(stat -c %s -- "$PARTIAL/$f")
    TOTAL_BYTES=$((TOTAL_BYTES + size))
    text+="file ${sum%% *} $size $f"$'\n'
  done
  # One write: it fails as a whole (a full volume) or not at all.
  printf '%s' "$text" 2>"$ERR_FILE" >"$tmp" || die_step "writing $PARTIAL/MANIFEST failed"
  mv -f -- "$tmp" "$PARTIAL/MANIFEST"
  paths=()
  for f in "${FILES[@]}" MANIFEST; do
    paths+=("$PARTIAL/$f")
  done
  sync -- "${paths[@]}" "$PARTIAL" 2>"$ERR_FILE" || die_step "syncing $PARTIAL to disk failed"
}

# ------------------------------------------------------------ retention

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

# ------------------------------------------------------------ main

main() {
  if (($# > 0)); then
    case $1 in
      -h | --help)
        usage
        exit 0
        ;;
    esac
    usage >&2
    exit 2
  fi
  load_backup_config
  local started i db stem final secs
  started=$(now_ms)
  WORK=$(mktemp -d "$TMPDIR/backup.XXXXXX")
  ERR_FILE=$WORK/stderr
  trap cleanup EXIT
  trap 'on_signal TERM 143' TERM
  trap 'on_signal INT 130' INT

  take_lock
  log "backup run${POD_NAME:+ on $POD_NAME}: dumping from the first of $BACKUP_HOSTS that answers into $BACKUP_DIR"
  remove_leftovers

  write_pgpass "$WORK/pgpass" postgres postgres-password
  export PGPASSFILE=$WORK/pgpass
  choose_host
  IFS=$'\x1f' read -r IN_RECOVERY SERVER_VERSION_NUM SERVER_VERSION REPLAY_TS <<<"$PROBE"
  log "connected to ${HOSTS[HOST_INDEX]} ($(role_of "$IN_RECOVERY"), PostgreSQL $SERVER_VERSION)"

  STAMP=$(date -u -d "@$(now_epoch)" +%Y%m%dT%H%M%SZ)
  final=$BACKUP_DIR/$STAMP
  [[ ! -e $final ]] || die "a dump named $final already exists (two runs in the same second?); not overwriting it"
  PARTIAL=$final.partial
  mkdir -- "$PARTIAL" 2>"$ERR_FILE" || die_step "cannot create $PARTIAL"

  list_databases
  FILES=(globals.sql.gz)
  STEMS=() DB_HOST=() DB_STANDBY=()
  TOTAL_BYTES=0

  dump_step "the globals (roles, tablespaces)" "$PARTIAL/globals.sql" globals
  run_tool gzip -n -- "$PARTIAL/globals.sql" || die_step "compressing the globals failed"

  for i in "${!DATABASES[@]}"; do
    db=${DATABASES[i]}
    stem=$(dump_stem "$db")
    dump_step "database $db" "$PARTIAL/$stem.dump" database "$db"
    STEMS+=("$stem")
    DB_HOST+=("$STEP_HOST")
    DB_STANDBY+=("$([[ $STEP_STANDBY == t ]] && echo true || echo false)")
    FILES+=("$stem.dump")
    log "dumped database $db ($(human "$(stat -c %s -- "$PARTIAL/$stem.dump")") from $STEP_HOST)"
  done

  write_manifest
  mv -T -- "$PARTIAL" "$final"
  PARTIAL=''
  sync -- "$BACKUP_DIR" || log "warning: could not fsync $BACKUP_DIR"

  prune
  secs=$(($(now_ms) - started))
  log "backup complete: $final (${#DATABASES[@]} databases, $(human "$TOTAL_BYTES"), $((secs / 1000)).$(((secs % 1000) / 100)) s, from ${HOSTS[HOST_INDEX]} ($(role_of "$IN_RECOVERY")))"
}

main "$@"
