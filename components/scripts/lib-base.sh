#!/usr/bin/env bash
# What every pod script needs first: strict mode, logging, the value rules,
# clocks. Sourced first by every entry script, never executed on its own.
#
# Entry scripts (the pod spec and the CronJob run these by name):
#   init.sh, readiness.sh, sync-passwords.sh   database pods
#   backup.sh, restore.sh                      dumps job
# Every other file here is a library they source, one concern each, and
# env-contract.sh is generated from components/pod_env.py (env.sh applies it).
#
# Rules every script keeps:
# - logs go to stderr, one line each;
# - a password is never printed, never put on a command line and never put
#   into an environment variable: it travels from the Secret file to libpq or
#   psql through a 0600 file or a pipe only;
# - every value that ends up in a configuration file is validated first, so
#   nothing needs quoting beyond what the helpers add.
# shellcheck disable=SC2034 # The rules below are read by the files that source this one.
set -euo pipefail
# Command substitutions ($(...)) stop at the first failure too.
shopt -s inherit_errexit

# Every file we create is private to the postgres user.
umask 077

SCRIPT_NAME=$(basename -- "${BASH_SOURCE[1]:-$0}")
SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_NAME SCRIPT_DIR

# Identifier rule for role and database names we interpolate: a plain,
# lower-case SQL identifier that needs no quoting in pg_hba.conf, pgpass files
# or connection strings.
readonly IDENT_RE='^[a-z_][a-z0-9_]{0,62}$'
readonly PATH_RE='^/[A-Za-z0-9._/-]*$'
readonly HOST_RE='^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$'
readonly POD_RE='^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$'
readonly UINT_RE='^[0-9]+$'

log() {
  printf '%(%Y-%m-%dT%H:%M:%S%z)T %s[%d]: %s\n' -1 "$SCRIPT_NAME" "$$" "$*" >&2
}

die() {
  log "FATAL: $*"
  exit 1
}

# _require_match NAME REGEX DESCRIPTION: the variable NAME must match REGEX.
_require_match() {
  local name=$1 re=$2 what=$3 value
  value=${!name-}
  [[ $value =~ $re ]] || die "$name='$value' is invalid: expected $what"
}

# now_ms: wall-clock milliseconds. $SECONDS counts whole seconds from an
# arbitrary fraction, which would make "waited N seconds" up to 1s short.
now_ms() {
  local us=${EPOCHREALTIME//[!0-9]/}
  printf '%d\n' "$((10#$us / 1000))"
}

# sleep_within DELAY DEADLINE_MS: sleep DELAY seconds but not past DEADLINE_MS
# (a value of now_ms). Returns 1 when the deadline has already passed.
sleep_within() {
  local delay_ms=$(($1 * 1000)) left
  left=$(($2 - $(now_ms)))
  ((left > 0)) || return 1
  ((delay_ms <= left)) || delay_ms=$left
  sleep "$((delay_ms / 1000)).$(printf '%03d' "$((delay_ms % 1000))")"
}

# one_line FILE: FILE's non-empty lines joined with ' / ' (at most 800
# characters), for a log line that quotes a tool's error output.
one_line() {
  local line out=''
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line//$'\r'/}
    [[ -n ${line//[[:space:]]/} ]] || continue
    out+="${out:+ / }$line"
  done <"$1"
  ((${#out} <= 800)) || out="${out:0:797}..."
  printf '%s\n' "${out:-no error output}"
}
