#!/usr/bin/env bash
# The dumps job's configuration: the environment checked (load_env), for
# backup.sh (load_backup_config) and restore.sh (load_restore_config).
# shellcheck disable=SC2034 # HOSTS is read by backup.sh.
set -euo pipefail

# The hosts of BACKUP_HOSTS, in order.
HOSTS=()

# load_backup_config: apply backup.sh's environment contract and validate it;
# sets HOSTS.
load_backup_config() {
  # load_env checks the formats (env-contract.sh).
  load_env
  [[ $BACKUP_DIR == / ]] || BACKUP_DIR=${BACKUP_DIR%/}
  read -r -a HOSTS <<<"$BACKUP_HOSTS"
  [[ -d $BACKUP_DIR ]] || die "BACKUP_DIR=$BACKUP_DIR is not a directory (is the dumps volume mounted?)"
  [[ -w $BACKUP_DIR ]] || die "BACKUP_DIR=$BACKUP_DIR is not writable by uid $(id -u)"
  [[ -d $TMPDIR && -w $TMPDIR ]] || die "TMPDIR=$TMPDIR is not a writable directory"
  # libpq: never prompt; each connection attempt is bounded.
  export PGCONNECT_TIMEOUT
}

# load_restore_config: apply restore.sh's environment contract and validate it.
load_restore_config() {
  load_env
  [[ -d $TMPDIR && -w $TMPDIR ]] || die "TMPDIR=$TMPDIR is not a writable directory"
  export PGCONNECT_TIMEOUT
}
