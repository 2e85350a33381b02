#!/usr/bin/env bash
# Init container: runs on EVERY pod start, before postgres.
#
# Primary (PRIMARY_POD, by default ordinal 0; any pod when REPLICATION_ENABLED=false):
#   no data yet -> initdb into "$PGDATA.partial", create the roles and the
#   application database on a socket-only temporary server, then rename the
#   directory to "$PGDATA" (atomic: a pod killed half-way leaves only the
#   .partial directory, which the next start discards). Before that, with
#   PEERS_HOST set, it refuses when another pod of the set runs PostgreSQL.
#   A standby's data (standby.signal) -> promoted (a new timeline).
# Standby (every other pod, with replication):
#   no data yet -> wait for the primary (exponential backoff, overall limit
#   BOOTSTRAP_MAX_WAIT_SECONDS), pg_basebackup into "$PGDATA.partial" with a
#   new replication slot on the primary, rename.
#   Existing data is kept; its slot on the primary is made if missing, and
#   what would keep it from streaming (another database, a diverged timeline,
#   a lost slot) is logged.
# Both, every start: managed pg_hba.conf, standby settings (or their absence),
#   the 0600 replication passfile on the socket emptyDir.
#
# No password is ever written to the data volume: primary_conninfo names a
# passfile on the emptyDir instead of carrying one.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"
# shellcheck source-path=SCRIPTDIR source=replication.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/replication.sh"

TEMP_SERVER_PID=''
TEMP_SOCKET_DIR=''
FLUSHER_PID=''
# How long start_temp_server waits for the server to accept connections.
TEMP_SERVER_WAIT_SECONDS=120

cleanup() {
  local rc=$?
  stop_flusher
  if [[ -n $TEMP_SERVER_PID ]]; then
    kill -INT "$TEMP_SERVER_PID" 2>/dev/null || true
    wait "$TEMP_SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n $TEMP_SOCKET_DIR ]]; then
    rm -rf -- "$TEMP_SOCKET_DIR"
  fi
  exit "$rc"
}

# The major version of the postgres binary on PATH.
server_major() {
  local v
  v=$(postgres --version)
  [[ $v =~ \(PostgreSQL\)\ ([0-9]+) ]] || die "cannot parse 'postgres --version' output: $v"
  printf '%s\n' "${BASH_REMATCH[1]}"
}

# Refuse to touch a PGDATA that holds something other than a cluster.
require_empty_pgdata() {
  if [[ -e $PGDATA && ! -d $PGDATA ]]; then
    die "$PGDATA exists and is not a directory"
  fi
  if [[ -d $PGDATA && -n $(ls -A -- "$PGDATA") ]]; then
    die "$PGDATA is not empty but has no PG_VERSION; refusing to overwrite it (move it away to re-initialise)"
  fi
}

# data_major DIR: the major version in DIR/PG_VERSION ('unknown' when unreadable).
data_major() {
  local v=''
  IFS= read -r v 2>/dev/null <"$1/PG_VERSION" || true
  [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] || v=unknown
  printf '%s\n' "$v"
}

# upgrade_hint DATA_MAJOR IMAGE_MAJOR: the ways out when the data's major is not the image's.
upgrade_hint() {
  printf '%s\n' "roll the image back to PostgreSQL $1 to keep using this data; to move it to PostgreSQL $2, dump it at PostgreSQL $1 and restore it into a new PostgreSQL $2 stack (README: \"Upgrade to a new PostgreSQL major\")"
}

# check_existing_data: PGDATA must be a complete cluster of the server's major.
# Runs before anything is written into PGDATA: a refused directory stays as it was.
check_existing_data() {
  local data bin_major missing=()
  [[ -f $PGDATA/global/pg_control ]] || missing+=(global/pg_control)
  [[ -d $PGDATA/base ]] || missing+=(base/)
  [[ -d $PGDATA/pg_wal ]] || missing+=(pg_wal/)
  if ((${#missing[@]} > 0)); then
    die "$PGDATA is incomplete: it has PG_VERSION but no ${missing[*]}; refusing to start on it or to write into it. Restore the volume from a backup, or move the directory away (mv $PGDATA $PGDATA.broken) so that the next start initialises a new cluster (primary) or clones the primary again (standby)"
  fi
  data=$(data_major "$PGDATA")
  bin_major=$(server_major)
  [[ $data == "$bin_major" ]] ||
    die "$PGDATA holds PostgreSQL $data data but this image runs PostgreSQL $bin_major; $(upgrade_hint "$data" "$bin_major")"
}

# find_other_clusters: set OTHER_CLUSTERS to every directory on the data volume,
# PGDATA excepted, that holds a cluster at a layout this program has used:
# <mount>/pgdata (15, 16, 17), <mount>/<major>/docker (18 and later), the mount itself.
OTHER_CLUSTERS=()
find_other_clusters() {
  local d m=${DATA_MOUNT%/}
  OTHER_CLUSTERS=()
  for d in "$m/pgdata" "$m"/*/docker "$DATA_MOUNT"; do
    if [[ $d != "$PGDATA" && -f $d/PG_VERSION ]]; then
      OTHER_CLUSTERS+=("$d")
    fi
  done
}

# refuse_other_clusters: before a new cluster is made in an empty PGDATA, stop
# if the volume already holds one elsewhere: a new image major (or a changed
# PGDATA) must never hide the data that is there.
refuse_other_clusters() {
  local d major bin_major found='' hint=''
  find_other_clusters
  ((${#OTHER_CLUSTERS[@]} > 0)) || return 0
  bin_major=$(server_major)
  for d in "${OTHER_CLUSTERS[@]}"; do
    major=$(data_major "$d")
    found+="${found:+ and }PostgreSQL $major data at $d"
    if [[ -z $hint && $major != "$bin_major" ]]; then
      hint=$(upgrade_hint "$major" "$bin_major")
    fi
  done
  [[ -n $hint ]] ||
    hint="if it is this cluster's data, move it to $PGDATA while no pod uses the volume; to start a new cluster, move it off the volume"
  die "found $found, but this image (PostgreSQL $bin_major) expects its data at $PGDATA; refusing to create a new cluster beside it. $hint"
}

# publish DIR: atomically rename a complete DIR to PGDATA and make the rename durable.
publish() {
  mv -T -- "$1" "$PGDATA"
  sync -- "$(dirname -- "$PGDATA")" || log "warning: could not fsync $(dirname -- "$PGDATA")"
}

# start_temp_server DIR [postgres args...]
start_temp_server() {
  local dir=$1 deadline
  shift
  TEMP_SOCKET_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pg-init.XXXXXX")
  # Socket only, in a private directory: nothing but this script can connect.
  postgres -D "$dir" -p "$PGPORT" \
    -c listen_addresses= \
    -c "unix_socket_directories=$TEMP_SOCKET_DIR" \
    -c log_statement=none \
    -c log_min_duration_statement=-1 \
    -c log_min_error_statement=panic "$@" >&2 &
  TEMP_SERVER_PID=$!
  deadline=$((SECONDS + TEMP_SERVER_WAIT_SECONDS))
  until pg_isready -q -h "$TEMP_SOCKET_DIR" -p "$PGPORT" -t 2 >/dev/null 2>&1; do
    if ! kill -0 "$TEMP_SERVER_PID" 2>/dev/null; then
      TEMP_SERVER_PID=''
      die "temporary server exited during startup"
    fi
    ((SECONDS < deadline)) || die "temporary server did not accept connections within ${TEMP_SERVER_WAIT_SECONDS}s"
    sleep 0.2
  done
}

stop_temp_server() {
  local rc=0
  kill -INT "$TEMP_SERVER_PID"
  wait "$TEMP_SERVER_PID" || rc=$?
  TEMP_SERVER_PID=''
  ((rc == 0)) || die "temporary server exited with status $rc"
  rm -rf -- "$TEMP_SOCKET_DIR"
  TEMP_SOCKET_DIR=''
}

# has_data ROLE WORK: true when PGDATA already holds a cluster (kept as it is);
# false when it is empty, after discarding an interrupted WORK in "$PGDATA.partial".
has_data() {
  local role=$1 work=$2 partial="$PGDATA.partial"
  if [[ -s $PGDATA/PG_VERSION ]]; then
    check_existing_data
    log "$role: keeping the existing data directory $PGDATA"
    find_other_clusters
    if ((${#OTHER_CLUSTERS[@]} > 0)); then
      log "warning: the volume also holds a cluster this pod does not use: ${OTHER_CLUSTERS[*]} (left untouched)"
    fi
    [[ ! -e $partial ]] || rm -rf -- "$partial"
    return 0
  fi
  require_empty_pgdata
  refuse_other_clusters
  local parent err
  parent=$(dirname -- "$PGDATA")
  if ! err=$(mkdir -p -- "$parent" 2>&1); then
    volume_write_failed "$parent" "$err"
  fi
  if [[ -e $partial ]]; then
    log "$role: discarding the interrupted $work in $partial"
    rm -rf -- "$partial"
  fi
  return 1
}

# promote_standby_data: this pod is the primary, but PGDATA is a standby's
# (standby.signal). Removing standby.signal alone would end recovery on the
# old timeline, so that a standby of the old primary could follow either; a
# real promotion starts a new timeline. It runs on a socket-only temporary
# server that streams from nobody, with at least the settings the primary
# ran with (a hot standby refuses less).
promote_standby_data() {
  local in_recovery tli
  log "promoting: $PGDATA is a standby's (standby.signal) but this pod is now the primary (PRIMARY_POD=${PRIMARY_POD:-$POD_NAME}); replaying its WAL, then pg_promote()"
  control_data || die "promoting: cannot read $PGDATA/global/pg_control with pg_controldata"
  # Replaying a standby's backlog can take long; the init container has no deadline.
  TEMP_SERVER_WAIT_SECONDS=900
  start_temp_server "$PGDATA" -c hot_standby=on -c primary_conninfo= -c primary_slot_name= \
    -c restore_command= "${CTL_HOT_STANDBY_ARGS[@]}"
  [[ $(psql_at "$TEMP_SOCKET_DIR" -At -c 'SELECT pg_promote(true, 60)') == t ]] ||
    die "promoting: pg_promote() did not finish within 60s"
  in_recovery=$(psql_at "$TEMP_SOCKET_DIR" -At -c 'SELECT pg_is_in_recovery()')
  [[ $in_recovery == f ]] || die "promoting: the server is still in recovery after pg_promote()"
  psql_at "$TEMP_SOCKET_DIR" -c CHECKPOINT
  tli=$(psql_at "$TEMP_SOCKET_DIR" -At -c 'SELECT timeline_id FROM pg_control_checkpoint()')
  stop_temp_server
  log "promoting: this pod was a standby and is now configured as the primary; new timeline $tli"
}

init_primary() {
  local partial="$PGDATA.partial" su_pw
  if has_data primary initialisation; then
    if [[ -e $PGDATA/standby.signal ]]; then
      promote_standby_data
    fi
    return 0
  fi
  refuse_if_peer_running
  log "primary: initialising a new cluster in $partial"
  su_pw=$(secret_path postgres-password)
  run_on_volume "$partial" initdb -D "$partial" --username=postgres --pwfile="$su_pw" \
    --auth-local=peer --auth-host=scram-sha-256 \
    --data-checksums --encoding=UTF8
  start_temp_server "$partial"
  apply_roles "$TEMP_SOCKET_DIR"
  stop_temp_server
  publish "$partial"
  log "primary: new cluster ready in $PGDATA"
}

# start_flusher DIR: write dirty pages back while pg_basebackup copies, so that
# the final syncfs has little left to do (best effort; the final sync is not).
start_flusher() {
  (while sleep 0.2; do sync --file-system -- "$1" 2>/dev/null || :; done) &
  FLUSHER_PID=$!
}

stop_flusher() {
  if [[ -n $FLUSHER_PID ]]; then
    kill "$FLUSHER_PID" 2>/dev/null || :
    wait "$FLUSHER_PID" 2>/dev/null || :
    FLUSHER_PID=''
  fi
}

clone_from_primary() {
  local partial="$PGDATA.partial" deadline delay=1 attempt=0
  deadline=$(($(now_ms) + BOOTSTRAP_MAX_WAIT_SECONDS * 1000))
  while :; do
    attempt=$((attempt + 1))
    rm -rf -- "$partial"
    # Re-read the Secret each attempt: a password fixed or rotated while we wait is picked up.
    write_replication_pgpass
    if ! pg_isready -q -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -t 5 >/dev/null 2>&1; then
      log "standby: primary $PRIMARY_HOST:$PRIMARY_PORT is not accepting connections yet (attempt $attempt)"
    else
      log "standby: cloning $PRIMARY_HOST:$PRIMARY_PORT into $partial (attempt $attempt)"
      # No -R: we write our own settings, so no password lands in the data directory.
      # --no-sync plus syncfs of the volume (in the background while copying, then
      # once more at the end): the same durability as pg_basebackup's file-by-file
      # fsync at a fraction of the cost. publish() renames only after the final sync.
      start_flusher "$partial"
      # The clone makes this pod's replication slot afresh: a slot left by its
      # old data (re-clone) may be lost, or hold WAL from long ago.
      if drop_slot && PGPASSFILE=$REPLICATION_PGPASS run_on_volume "$partial" pg_basebackup \
        -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPLICATION_USER" -w \
        --create-slot --slot="$SLOT_NAME" \
        -D "$partial" --checkpoint=fast --wal-method=stream --no-manifest --no-sync >&2 &&
        stop_flusher && sync --file-system -- "$partial"; then
        break
      fi
      stop_flusher
      log "standby: pg_basebackup failed (attempt $attempt)"
      rm -rf -- "$partial"
    fi
    sleep_within "$delay" "$deadline" ||
      die "standby: gave up after ${BOOTSTRAP_MAX_WAIT_SECONDS}s (BOOTSTRAP_MAX_WAIT_SECONDS) waiting for the primary"
    delay=$(next_backoff "$delay")
  done
  # A standby runs the primary's major or nothing: a clone of another major
  # (the primary's image is older or newer than this one's) is never published.
  local clone_major bin_major
  clone_major=$(data_major "$partial")
  bin_major=$(server_major)
  if [[ $clone_major != "$bin_major" ]]; then
    rm -rf -- "$partial"
    die "standby: the primary $PRIMARY_HOST:$PRIMARY_PORT runs PostgreSQL $clone_major but this standby's image runs PostgreSQL $bin_major; discarded the clone. Every pod must run the primary's major: roll the image back to PostgreSQL $clone_major (a new major is a new stack: README \"Upgrade to a new PostgreSQL major\")"
  fi
  # Never let a half-configured clone start as a primary.
  create_empty_file "$partial/standby.signal"
  publish "$partial"
  log "standby: clone complete in $PGDATA"
}

init_standby() {
  if has_data standby clone; then
    check_primary_at_start
    return 0
  fi
  clone_from_primary
}

# replace_file PATH: write stdin to PATH atomically (temporary file in the same
# directory). When a write fails (a full volume above all) the temporary file is
# removed, PATH is left as it was, and the script stops with the reason.
replace_file() {
  local tmp err
  if ! tmp=$(mktemp -- "$1.XXXXXX" 2>&1); then
    volume_write_failed "$1" "$tmp"
  fi
  if ! err=$({ cat >"$tmp" && chmod 0600 -- "$tmp" && mv -f -- "$tmp" "$1"; } 2>&1); then
    rm -f -- "$tmp"
    volume_write_failed "$1" "$err"
  fi
}

# create_empty_file PATH: create (or truncate) PATH on the data volume.
create_empty_file() {
  local err
  if ! err=$({ : >"$1"; } 2>&1); then
    volume_write_failed "$1" "$err"
  fi
}

# remove_stale_temp_files: temporary files of a replace_file that was killed
# (pod deleted mid-write) would stay in PGDATA for ever.
remove_stale_temp_files() {
  local f
  for f in "$PGDATA"/*.conf.??????; do
    if [[ -f $f ]]; then
      log "removing the temporary file $f left by an interrupted start"
      rm -f -- "$f"
    fi
  done
}

# ensure_include NAME: postgresql.conf includes PGDATA/NAME (include_if_exists),
# exactly once. Rewritten whole through replace_file, never appended to: an
# append on a full volume could leave half a line that stops the server.
ensure_include() {
  local conf="$PGDATA/postgresql.conf" line="include_if_exists = '$1'"
  if grep -qxF -- "$line" "$conf"; then
    return 0
  fi
  { cat -- "$conf" && printf '\n# Added by init.sh (Kubernetes pod scripts).\n%s\n' "$line"; } | replace_file "$conf"
}

# run_on_volume TARGET CMD...: run CMD (initdb, pg_basebackup), which writes
# TARGET on the data volume, with all its output in the log. A failure on a
# full volume (told by CMD's own error text) stops the script with the way
# out; any other failure returns CMD's status. Not a full volume: a full
# /dev/shm ("shared memory"), or the primary's disk (an "ERROR:" the server
# sent pg_basebackup).
run_on_volume() {
  local target=$1 errf rc=0 err
  shift
  errf=$(mktemp -- "${TMPDIR:-/tmp}/init-stderr.XXXXXX")
  "$@" >&2 2>"$errf" || rc=$?
  cat -- "$errf" >&2
  err=$(grep -E -- 'No space left on device|Disk quota exceeded' "$errf" | grep -v -e 'shared memory' || :)
  if [[ $1 == pg_basebackup ]]; then
    err=$(grep -v -e 'ERROR:' <<<"$err" || :)
  fi
  err=${err%%$'\n'*}
  rm -f -- "$errf"
  if ((rc != 0)) && [[ -n $err ]]; then
    volume_write_failed "$target" "$err"
  fi
  return "$rc"
}

# write_volume_conf: the WAL settings sized to the data volume's real size
# (volume_settings), rewritten on every start, so that a grown volume gets them
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

hba_line() {
  printf '%-7s %-12s %-16s %-8s %s\n' "$@"
}

write_hba() {
  {
    printf '%s\n' '# Managed by init.sh: rewritten on every pod start, edits are lost.'
    hba_line '# TYPE' DATABASE USER ADDRESS METHOD
    hba_line local all postgres '' peer
    hba_line local all "$REPLICATION_USER" '' reject
    hba_line local all all '' scram-sha-256
    if [[ $REPLICATION_ENABLED == true ]]; then
      hba_line host replication "$REPLICATION_USER" all scram-sha-256
    fi
    hba_line host replication all all reject
    hba_line host all "$REPLICATION_USER" all reject
    hba_line host all all all scram-sha-256
  } | replace_file "$PGDATA/pg_hba.conf"
}

write_managed_conf() {
  {
    printf '%s\n' '# Managed by init.sh: rewritten on every pod start, edits are lost.'
    if [[ $IS_PRIMARY == true ]]; then
      printf '%s\n' '# This pod is a primary: no standby settings.'
    else
      # The passfile lives on the pod's emptyDir; the password never enters this file.
      printf "primary_conninfo = 'host=%s port=%s user=%s passfile=%s application_name=%s connect_timeout=10'\n" \
        "$PRIMARY_HOST" "$PRIMARY_PORT" "$REPLICATION_USER" "$REPLICATION_PGPASS" "$POD_NAME"
      # This standby's slot on the primary (made by the clone, or at start).
      printf "primary_slot_name = '%s'\n" "$SLOT_NAME"
    fi
  } | replace_file "$PGDATA/$MANAGED_CONF_NAME"

  ensure_include "$MANAGED_CONF_NAME"

  # A primary_conninfo or primary_slot_name in postgresql.auto.conf (pg_basebackup
  # -R, ALTER SYSTEM) would override ours, and the first may carry a password: drop them.
  local auto="$PGDATA/postgresql.auto.conf" re='^[[:space:]]*primary_(conninfo|slot_name)[[:space:]]*='
  if [[ -f $auto ]] && grep -qE -- "$re" "$auto"; then
    log "removing primary_conninfo/primary_slot_name from postgresql.auto.conf"
    { grep -vE -- "$re" "$auto" || true; } | replace_file "$auto"
  fi

  if [[ $IS_PRIMARY == true ]]; then
    rm -f -- "$PGDATA/standby.signal"
  else
    create_empty_file "$PGDATA/standby.signal"
  fi
}

main() {
  [[ $# -eq 0 ]] || die "usage: init.sh (no arguments; configured through the environment)"
  ((EUID != 0)) || die "must run as the postgres user, not root"
  load_config
  trap cleanup EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT

  local role=standby
  if [[ $IS_PRIMARY == true ]]; then
    role=primary
  fi
  log "pod $POD_NAME (ordinal $ORDINAL) starts as $role; replication=$REPLICATION_ENABLED"

  # PGDATA's parent on the volume is made only when a new cluster is (has_data).
  mkdir -p -- "$PG_SOCKET_DIR"
  secret_files >/dev/null
  rm -f -- "$REPLICATION_PGPASS".*
  if [[ $REPLICATION_ENABLED == true ]]; then
    write_replication_pgpass
  fi

  if [[ $IS_PRIMARY == true ]]; then
    init_primary
  else
    init_standby
  fi

  # fsGroup handling can loosen the mode; postgres refuses to start unless 0700/0750.
  chmod 0700 -- "$PGDATA"
  remove_stale_temp_files
  write_hba
  write_managed_conf
  write_volume_conf
  log "done; postgres may start"
}

main "$@"
