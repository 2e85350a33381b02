#!/usr/bin/env bash
# Writing one dump into PARTIAL: the list of databases, each dump (again from
# the next host when a standby cancels it), and the MANIFEST, last, with every
# file synced.
# shellcheck disable=SC2034 # STEP_*, DATABASES and DB_BYTES are read by backup.sh.
set -euo pipefail

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
