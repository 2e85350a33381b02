#!/usr/bin/env bash
# The data volume's layout: what PGDATA holds (nothing, a complete cluster of
# this image's major, or something to refuse), and the clusters elsewhere on
# the volume that a new cluster must never hide.
set -euo pipefail

# server_major: the major version of the postgres binary on PATH.
server_major() {
  local v
  v=$(postgres --version)
  [[ $v =~ \(PostgreSQL\)\ ([0-9]+) ]] || die "cannot parse 'postgres --version' output: $v"
  printf '%s\n' "${BASH_REMATCH[1]}"
}

# check_server_major: the server binary must be the major the stack configures
# (STACK_PG_MAJOR, from postgres.image.tag, which also chose PGDATA's layout).
# A digest of another version than the tag runs that version whatever the tag
# says; refuse before anything on the volume is read or written.
check_server_major() {
  local bin_major
  bin_major=$(server_major)
  [[ $bin_major == "$STACK_PG_MAJOR" ]] ||
    die "this image runs PostgreSQL $bin_major (postgres --version) but the stack configures PostgreSQL $STACK_PG_MAJOR (postgres.image.tag); the image's digest is another version than its tag: set postgres.image.tag and postgres.image.digest to the same version, then roll out again"
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
  printf '%s\n' "roll the image back to PostgreSQL $1 to keep using this data; to move it to PostgreSQL $2, dump it at PostgreSQL $1 and restore it into a new PostgreSQL $2 stack (docs/operations.md#upgrade-major)"
}

# require_empty_pgdata: refuse to touch a PGDATA that holds something other than a cluster.
require_empty_pgdata() {
  if [[ -e $PGDATA && ! -d $PGDATA ]]; then
    die "$PGDATA exists and is not a directory"
  fi
  if [[ -d $PGDATA && -n $(ls -A -- "$PGDATA") ]]; then
    die "$PGDATA is not empty but has no PG_VERSION; refusing to overwrite it (move it away to re-initialise)"
  fi
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
