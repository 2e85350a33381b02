#!/usr/bin/env bash
# Reading a dump restore.sh is given: the dumps volume's lock held shared
# while it is read, and the dump checked against its MANIFEST (a partial or
# corrupt dump is refused before the server is touched).
# shellcheck disable=SC2034 # STEMS and MANIFEST_* are read by restore.sh.
set -euo pipefail

# lock_dumps: hold the dumps volume's lock shared while the dump is read.
lock_dumps() {
  local lock
  lock=$(dirname -- "$DUMP")/.lock
  [[ -f $lock ]] || return 0
  exec {LOCK_FD}<"$lock"
  if ! flock -s -n "$LOCK_FD"; then
    log "a backup run holds $lock; waiting for it to finish (it may prune old dumps)"
    flock -s "$LOCK_FD"
  fi
}

# verify_dump: refuse a partial or corrupt dump. Sets STEMS (the databases'
# file stems, in MANIFEST order) and MANIFEST_* facts (the log; the server's
# major, MANIFEST_VERSION_NUM, for check_server).
STEMS=()
MANIFEST_CREATED='' MANIFEST_HOST='' MANIFEST_STANDBY='' MANIFEST_VERSION='' MANIFEST_VERSION_NUM=''
verify_dump() {
  local dir=$DUMP name problems=() line kind a b c rest sum size actual f
  local -A listed=()
  [[ -d $dir ]] || die "$dir is not a directory"
  name=$(basename -- "$dir")
  [[ $name != *.partial ]] || die "refusing $dir: a partial dump (its run did not finish)"
  [[ -f $dir/MANIFEST ]] || die "refusing $dir: it has no MANIFEST, so it is not a complete dump"
  IFS= read -r line <"$dir/MANIFEST" || true
  [[ $line == "$DUMP_FORMAT" ]] || die "refusing $dir: its MANIFEST does not start with '$DUMP_FORMAT'"
  while read -r kind a b c rest; do
    case $kind in
      created) MANIFEST_CREATED=$a ;;
      host) MANIFEST_HOST=$a ;;
      standby) MANIFEST_STANDBY=$a ;;
      server_version)
        MANIFEST_VERSION_NUM=$a
        MANIFEST_VERSION="$b${c:+ $c}${rest:+ $rest}"
        ;;
      database)
        if [[ $a =~ $DUMP_STEM_RE ]]; then
          STEMS+=("$a")
        else
          problems+=("bad database entry '$a'")
        fi
        ;;
      file)
        sum=$a size=$b f=$c
        if ! [[ $sum =~ ^[0-9a-f]{64}$ && $size =~ $UINT_RE && $f =~ $DUMP_STEM_RE ]]; then
          problems+=("bad file entry '$a $b $c'")
        elif [[ ! -f $dir/$f ]]; then
          problems+=("$f is missing")
        elif [[ $(stat -c %s -- "$dir/$f") != "$size" ]]; then
          problems+=("$f has $(stat -c %s -- "$dir/$f") bytes, the MANIFEST says $size")
        else
          actual=$(sha256sum -- "$dir/$f")
          if [[ ${actual%% *} == "$sum" ]]; then
            listed[$f]=1
          else
            problems+=("$f does not match its sha256 in the MANIFEST")
          fi
        fi
        ;;
    esac
  done < <(tail -n +2 -- "$dir/MANIFEST")
  [[ $MANIFEST_VERSION_NUM =~ ^[1-9][0-9]{5}$ ]] || problems+=("bad or missing server_version entry '$MANIFEST_VERSION_NUM'")
  [[ -n ${listed[globals.sql.gz]-} ]] || problems+=("globals.sql.gz is not a checked file of the MANIFEST")
  for f in "${STEMS[@]}"; do
    [[ -n ${listed[$f.dump]-} ]] || problems+=("$f.dump is not a checked file of the MANIFEST")
  done
  ((${#STEMS[@]} > 0)) || problems+=("the MANIFEST lists no database")
  if ((${#problems[@]} > 0)); then
    local IFS=';'
    die "refusing $dir: ${#problems[@]} problem(s):${problems[*]/#/ }; nothing was restored"
  fi
}

# select_databases: STEMS restricted to --only (each must be in the dump).
select_databases() {
  local want stem found chosen=()
  ((${#ONLY[@]} > 0)) || return 0
  for want in "${ONLY[@]}"; do
    found=''
    for stem in "${STEMS[@]}"; do
      if [[ $(dump_stem_name "$stem") == "$want" ]]; then
        found=$stem
      fi
    done
    [[ -n $found ]] || die "--only '$want': the dump has no such database"
    chosen+=("$found")
  done
  STEMS=("${chosen[@]}")
}
