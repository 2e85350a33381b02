#!/usr/bin/env bash
# The environment contract: which variables each entry script reads, which
# are required and what the others default to. Declared once, in
# components/pod_env.py, and shipped as the generated env-contract.sh beside
# these files. Sourced after lib-base.sh, never executed on its own.
set -euo pipefail

if [[ ! -r $SCRIPT_DIR/env-contract.sh ]]; then
  die "$SCRIPT_DIR/env-contract.sh is missing: it is generated from components/pod_env.py and ships with the scripts"
fi
# shellcheck source=/dev/null # Generated (components/pod_env.py render_env_contract).
. "$SCRIPT_DIR/env-contract.sh"

# load_env: apply this script's contract, before anything reads the
# environment: stop, naming it, at the first required variable that is unset
# or empty; give every other declared variable its default when unset or
# empty. The scripts read no default of their own: with `set -u`, reading a
# variable that is not declared stops the script.
load_env() {
  local v
  env_contract "$SCRIPT_NAME" || die "env-contract.sh has no environment contract for $SCRIPT_NAME"
  for v in "${ENV_REQUIRED[@]}"; do
    [[ -n ${!v-} ]] || die "environment variable $v is required"
  done
  for v in "${!ENV_DEFAULTS[@]}"; do
    [[ -n ${!v-} ]] || printf -v "$v" '%s' "${ENV_DEFAULTS[$v]}"
  done
}
