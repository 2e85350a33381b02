#!/usr/bin/env bash
# The Secret's files (SECRETS_DIR) and the 0600 passfiles made from them. The
# file names are declared in components/pod_env_contract.py (SECRET_FILES).
set -euo pipefail

# secret_path NAME: path of a Secret file; dies unless it holds one usable line.
# The check reads the content into a local variable only; nothing is printed.
secret_path() {
  # Keep the content out of an xtrace (bash -x) even when the caller enabled it.
  local -
  set +x
  local path="$SECRETS_DIR/$1" content
  [[ -r $path ]] || die "secret file $path is missing or unreadable"
  content=''
  IFS= read -r -d '' content <"$path" || true
  content=${content%$'\n'}
  [[ -n $content ]] || die "secret file $path is empty"
  [[ $content != *[$'\n\r']* ]] || die "secret file $path must hold a single line"
  printf '%s\n' "$path"
}

# secret_files: print, one per line, the Secret files this configuration uses
# (superuser always, replication with replication on, the app user's when set);
# dies like secret_path on a missing or unusable file.
secret_files() {
  secret_path postgres-password
  if [[ $REPLICATION_ENABLED == true ]]; then
    secret_path replication-password
  fi
  if [[ -n $APP_USER ]]; then
    secret_path password
  fi
}

# write_pgpass FILE ROLE SECRET: (re)write FILE as a 0600 passfile for ROLE
# with the password of the Secret file SECRET (escaped as libpq reads it).
write_pgpass() {
  local -
  set +x
  local file=$1 role=$2 src pw tmp
  src=$(secret_path "$3")
  pw=''
  IFS= read -r -d '' pw <"$src" || true
  pw=${pw%$'\n'}
  pw=${pw//\\/\\\\}
  pw=${pw//:/\\:}
  # mktemp creates the file 0600 (and lib-base.sh's umask is 077): no chmod to run.
  tmp=$(mktemp "$file.XXXXXX")
  printf '*:*:*:%s:%s\n' "$role" "$pw" >"$tmp"
  mv -f -- "$tmp" "$file"
}

# write_replication_pgpass: (re)write the 0600 passfile libpq uses for
# replication connections, from the Secret (which may be 0440 and so is never
# handed to libpq directly). Lives on the pod's socket emptyDir, never on the
# data volume. Replaced atomically so a reconnecting walreceiver never reads a
# half-written file.
write_replication_pgpass() {
  write_pgpass "$REPLICATION_PGPASS" "$REPLICATION_USER" replication-password
}
