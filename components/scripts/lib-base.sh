#!/usr/bin/env bash
# What every pod script needs first: strict mode, logging, the value rules,
# clocks, the env contract. Every entry script sources it first.
#
# Entry scripts (the pod spec and the CronJob run these by name):
#   init.sh, readiness.sh, sync-passwords.sh   database pods
#   backup.sh, restore.sh                      dumps job
#   wal-archive.sh, wal-restore.sh             archive/restore_command (database pods)
#   wal-basebackup.sh, wal-pitr.sh             base-backup job, point-in-time restore
# Every other file here is a library they source (never executed on its own),
# one concern each, named by who sources it: lib-* (both families), pod-* (the
# database pods' scripts), init-* (init.sh alone), dump-* (both of the dumps
# job's), backup-* and restore-* (that script alone), wal-* (the wal-* entry
# scripts). This file sources
# env-contract.sh, generated from components/pod_env_contract.py.
#
# Rules every script keeps:
# - logs go to stderr, one line each;
# - a password is never printed, never put on a command line and never put
#   into an environment variable: it travels from the Secret file to libpq or
#   psql through a 0600 file or a pipe only;
# - every value that ends up in a configuration file is validated first, so
#   nothing needs quoting beyond what the helpers add.
# shellcheck source-path=SCRIPTDIR
# shellcheck disable=SC2034 # The rules below are read by the files that source this one.
set -euo pipefail
# Command substitutions ($(...)) stop at the first failure too.
shopt -s inherit_errexit

# Every file we create is private to the postgres user.
umask 077

# basename and dirname by parameter expansion: every script run (an archive_command per WAL segment, a
# sidecar pass, a probe) starts here, and two programs and two subshells were a fifth of a short script's cost.
SCRIPT_NAME=${BASH_SOURCE[1]:-$0}
SCRIPT_NAME=${SCRIPT_NAME##*/}
SCRIPT_DIR=${BASH_SOURCE[0]%/*}
[[ $SCRIPT_DIR != "${BASH_SOURCE[0]}" ]] || SCRIPT_DIR=.
# An absolute path without . or .. parts is already what `cd DIR && pwd` prints.
if [[ $SCRIPT_DIR != /* || $SCRIPT_DIR == *"/."* ]]; then
  SCRIPT_DIR=$(cd -- "${SCRIPT_DIR:-/}" && pwd)
fi
readonly SCRIPT_NAME SCRIPT_DIR

# The formats of the environment are declared in components/pod_env_contract.py
# and checked by load_env; this one is for what the tools print.
readonly UINT_RE='^[0-9]+$'

log() {
  printf '%(%Y-%m-%dT%H:%M:%S%z)T %s[%d]: %s\n' -1 "$SCRIPT_NAME" "$$" "$*" >&2
}

die() {
  log "FATAL: $*"
  exit 1
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

# The pod env contract: load_env applies it (each entry script's first step).
[[ -r $SCRIPT_DIR/env-contract.sh ]] ||
  die "$SCRIPT_DIR/env-contract.sh is missing: it is generated from components/pod_env_contract.py and ships with the scripts"
# shellcheck source=env-contract.sh
. "$SCRIPT_DIR/env-contract.sh"
