#!/usr/bin/env bash
# A dump's format, shared by backup.sh (which writes it) and restore.sh (which
# checks and reads it): directory and file names, the MANIFEST's first line,
# and the superuser's connection strings.
# shellcheck disable=SC2034 # The rules below are read by the scripts that source this file.
set -euo pipefail

# A dump directory's name: the UTC time its run started.
readonly DUMP_STAMP_RE='^[0-9]{8}T[0-9]{6}Z$'
# A database's file name stem in a dump (see dump_stem).
readonly DUMP_STEM_RE='^[A-Za-z0-9_%-][A-Za-z0-9_.%-]*$'
# First line of a dump's MANIFEST.
readonly DUMP_FORMAT='pgstack-dump 1'

# superuser_conninfo HOST DBNAME: a libpq connection string for the superuser
# over TCP (or a socket directory) at HOST:$PGPORT; values quoted as libpq
# parses them, so any database name is taken literally.
superuser_conninfo() {
  local host=${1//\\/\\\\} db=${2//\\/\\\\}
  host=${host//\'/\\\'}
  db=${db//\'/\\\'}
  printf "host='%s' port=%s user=postgres dbname='%s'\n" "$host" "$PGPORT" "$db"
}

# dump_stem NAME: the file name stem of database NAME in a dump: NAME itself
# when it is made of [A-Za-z0-9_-] and dots (not first), else every other byte
# as %XX. dump_stem_name reverses it.
dump_stem() {
  local LC_ALL=C
  local name=$1 out='' c i
  for ((i = 0; i < ${#name}; i++)); do
    c=${name:i:1}
    if [[ $c == [A-Za-z0-9_-] ]] || { [[ $c == . ]] && ((i > 0)); }; then
      out+=$c
    else
      printf -v c '%%%02X' "'$c"
      out+=$c
    fi
  done
  printf '%s\n' "$out"
}

# dump_stem_name STEM: the database name a dump_stem encodes.
dump_stem_name() {
  local name
  printf -v name '%b' "${1//%/\\x}"
  printf '%s\n' "$name"
}
