"""The pod env contract rendered as bash: env-contract.sh, shipped beside the pod scripts.

components/pod_env_contract.py declares the variables; this module writes them into the one
file every entry script sources after lib-base.sh. Its ``load_env`` applies the entry
script's contract before anything reads the environment: it stops, naming the variable, at
the first required one that is unset or empty, gives every other declared variable its
default, then refuses, naming it, the first value that does not have its declared format.
The checks are generated, so no script writes one by hand.

Pure Python: nothing here needs pulumi.
"""

from __future__ import annotations

import shlex

from components.pod_env_contract import CONTRACTS, ENV_CONTRACT_FILE, EnvContract, EnvVar

_HEADER = """\
#!/usr/bin/env bash
# GENERATED from components/pod_env_contract.py (components/pod_env_contract_sh.py): do
# not edit, edit the declaration. Sourced by every entry script after lib-base.sh, never
# executed on its own.
set -euo pipefail

# env_contract SCRIPT: set, for SCRIPT, ENV_REQUIRED (the variables it refuses to start
# without), ENV_DEFAULTS (every other variable it reads -> its value when unset or empty),
# ENV_CHECKED (the variables with a format, in declaration order), ENV_FORMAT (-> the
# extended regex a value matches) and ENV_EXPECTED (-> what a refusal says is expected).
# Returns 1 for an unknown SCRIPT.
declare -ga ENV_REQUIRED=() ENV_CHECKED=()
declare -gA ENV_DEFAULTS=() ENV_FORMAT=() ENV_EXPECTED=()
env_contract() {
  case $1 in"""

_LOAD_ENV = """\
    *) return 1 ;;
  esac
}

# load_env: apply this script's contract, before anything reads the environment. The
# scripts read no default of their own: with `set -u`, reading a variable that is not
# declared stops the script. An empty value passes a format only where the default is empty.
load_env() {
  local v
  env_contract "$SCRIPT_NAME" || die "env-contract.sh has no environment contract for $SCRIPT_NAME"
  for v in "${ENV_REQUIRED[@]}"; do
    [[ -n ${!v-} ]] || die "environment variable $v is required"
  done
  for v in "${!ENV_DEFAULTS[@]}"; do
    [[ -n ${!v-} ]] || printf -v "$v" '%s' "${ENV_DEFAULTS[$v]}"
  done
  for v in "${ENV_CHECKED[@]}"; do
    [[ -z ${!v} || ${!v} =~ ${ENV_FORMAT[$v]} ]] || die "$v='${!v}' is invalid: expected ${ENV_EXPECTED[$v]}"
  done
}
"""


def _table(name: str, rows: list[str]) -> list[str]:
    return [f"      {name}=(", *(f"        {row}" for row in rows), "      )"]


def _bash_arm(contract: EnvContract, scripts: list[str], variables: tuple[EnvVar, ...]) -> list[str]:
    checked = [v for v in variables if v.format is not None]
    lines = [f"    {' | '.join(scripts)})", f"      # {contract.name}: {contract.container}"]
    lines += _table("ENV_REQUIRED", [f"{v.name} # {v.meaning}" for v in variables if v.required])
    lines += _table("ENV_DEFAULTS", [f"[{v.name}]={shlex.quote(v.default or '')} # {v.meaning}" for v in variables if not v.required])
    lines += _table("ENV_CHECKED", [v.name for v in checked])
    lines += _table("ENV_FORMAT", [f"[{v.name}]={shlex.quote(v.format.regex)}" for v in checked if v.format])
    lines += _table("ENV_EXPECTED", [f"[{v.name}]={shlex.quote(v.expected)}" for v in checked])
    return [*lines, "      ;;"]


def render_env_contract() -> str:
    """env-contract.sh: both contracts, their checks and ``load_env``, as bash."""
    lines = [_HEADER]
    for contract in CONTRACTS:
        # Scripts reading the same variables share one arm.
        arms: dict[tuple[EnvVar, ...], list[str]] = {}
        for script in contract.scripts:
            arms.setdefault(contract.read_by(script), []).append(script)
        for variables, scripts in arms.items():
            lines += _bash_arm(contract, scripts, variables)
    return "\n".join([*lines, _LOAD_ENV])


def generated_scripts() -> dict[str, str]:
    """Files generated from Python that ship in the scripts ConfigMap beside components/scripts/*.sh."""
    return {ENV_CONTRACT_FILE: render_env_contract()}
