#!/usr/bin/env bash
# Init container: runs on EVERY pod start, before postgres.
#
# Primary (PRIMARY_POD, by default ordinal 0; any pod when REPLICATION_ENABLED=false):
#   no data yet -> initdb into "$PGDATA.partial", create the roles and the
#   application database on a socket-only temporary server, then rename the
#   directory to "$PGDATA" (atomic: a pod killed half-way leaves only the
#   .partial directory, which the next start discards).
# Standby (every other pod, with replication):
#   no data yet -> wait for the primary (exponential backoff, overall limit
#   BOOTSTRAP_MAX_WAIT_SECONDS), pg_basebackup into "$PGDATA.partial", rename.
#   Existing data is kept.
# Both, every start: managed pg_hba.conf, standby settings (or their absence),
#   the 0600 replication passfile on the socket emptyDir.
#
# No password is ever written to the data volume: primary_conninfo names a
# passfile on the emptyDir instead of carrying one.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/common.sh"

TEMP_SERVER_PID=''
TEMP_SOCKET_DIR=''
FLUSHER_PID=''

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

# Check that existing data matches the server binary's major version.
check_existing_data() {
  local data_major bin_major
  data_major=$(<"$PGDATA/PG_VERSION")
  bin_major=$(server_major)
  [[ $data_major == "$bin_major" ]] ||
    die "$PGDATA holds PostgreSQL $data_major data but this image runs PostgreSQL $bin_major; a major upgrade needs pg_upgrade or dump/restore"
}

# publish DIR: atomically rename a complete DIR to PGDATA and make the rename durable.
publish() {
  mv -T -- "$1" "$PGDATA"
  sync -- "$(dirname -- "$PGDATA")" || log "warning: could not fsync $(dirname -- "$PGDATA")"
}

start_temp_server() {
  local dir=$1 deadline
  TEMP_SOCKET_DIR=$(mktemp -d "${TMPDIR:-/tmp}/pg-init.XXXXXX")
  # Socket only, in a private directory: nothing but this script can connect.
  postgres -D "$dir" -p "$PGPORT" \
    -c listen_addresses= \
    -c "unix_socket_directories=$TEMP_SOCKET_DIR" \
    -c log_statement=none \
    -c log_min_duration_statement=-1 \
    -c log_min_error_statement=panic >&2 &
  TEMP_SERVER_PID=$!
  deadline=$((SECONDS + 120))
  until pg_isready -q -h "$TEMP_SOCKET_DIR" -p "$PGPORT" -t 2 >/dev/null 2>&1; do
    if ! kill -0 "$TEMP_SERVER_PID" 2>/dev/null; then
      TEMP_SERVER_PID=''
      die "temporary server exited during startup"
    fi
    ((SECONDS < deadline)) || die "temporary server did not accept connections within 120s"
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
    [[ ! -e $partial ]] || rm -rf -- "$partial"
    return 0
  fi
  require_empty_pgdata
  if [[ -e $partial ]]; then
    log "$role: discarding the interrupted $work in $partial"
    rm -rf -- "$partial"
  fi
  return 1
}

init_primary() {
  local partial="$PGDATA.partial" su_pw
  if has_data primary initialisation; then
    return 0
  fi
  log "primary: initialising a new cluster in $partial"
  su_pw=$(secret_path postgres-password)
  initdb -D "$partial" --username=postgres --pwfile="$su_pw" \
    --auth-local=peer --auth-host=scram-sha-256 \
    --data-checksums --encoding=UTF8 >&2
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
      if PGPASSFILE=$REPLICATION_PGPASS pg_basebackup \
        -h "$PRIMARY_HOST" -p "$PRIMARY_PORT" -U "$REPLICATION_USER" -w \
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
  # Never let a half-configured clone start as a primary.
  : >"$partial/standby.signal"
  publish "$partial"
  log "standby: clone complete in $PGDATA"
}

init_standby() {
  if has_data standby clone; then
    return 0
  fi
  clone_from_primary
}

# replace_file PATH: write stdin to PATH atomically (temporary file in the same directory).
replace_file() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  chmod 0600 "$tmp"
  mv -f -- "$tmp" "$1"
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
    fi
  } | replace_file "$PGDATA/$MANAGED_CONF_NAME"

  local conf="$PGDATA/postgresql.conf" line="include_if_exists = '$MANAGED_CONF_NAME'"
  if ! grep -qxF -- "$line" "$conf"; then
    printf '\n# Added by init.sh (Kubernetes pod scripts).\n%s\n' "$line" >>"$conf"
  fi

  # A primary_conninfo in postgresql.auto.conf (pg_basebackup -R, ALTER SYSTEM)
  # would override ours and may carry a password: drop it.
  local auto="$PGDATA/postgresql.auto.conf" re='^[[:space:]]*primary_conninfo[[:space:]]*='
  if [[ -f $auto ]] && grep -qE -- "$re" "$auto"; then
    log "removing primary_conninfo from postgresql.auto.conf"
    { grep -vE -- "$re" "$auto" || true; } | replace_file "$auto"
  fi

  if [[ $IS_PRIMARY == true ]]; then
    rm -f -- "$PGDATA/standby.signal"
  else
    : >"$PGDATA/standby.signal"
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

  mkdir -p -- "$(dirname -- "$PGDATA")" "$PG_SOCKET_DIR"
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
  write_hba
  write_managed_conf
  log "done; postgres may start"
}

main "$@"
