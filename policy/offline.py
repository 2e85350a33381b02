"""The policy pack without the Pulumi CLI or a cluster: `bin/policy <stack>` (python -m policy.offline <stack>).

The program runs under Pulumi's mocks for the stack (tools/mock_run.py, as the render does), and every
registered resource goes through every rule of rules.py the way the pulumi-policy runtime hands it over
(pulumi_policy 1.21.0 policy.py:971-1029, _PolicyAnalyzerServicer.Analyze: deserialize_properties,
unknown_checking_proxy, ResourceValidationArgs(type, props, urn, name, opts, provider, config, stack_tags);
a DISABLED policy skipped, REMEDIATE reported as MANDATORY, UnknownValueError turned into an advisory note;
a policy without a level takes the pack's, ADVISORY by default, policy.py:122).

Each policy gets the config the CLI gives it for `--policy-pack-config policy/config.json`: the schema's
defaults, then the file's "all" enforcement level, then the file's entry for that policy (pulumi
pkg/resource/analyzer/config.go:276 createConfigWithDefaults, :307 ReconcilePolicyPackConfig, :337 applyConfig;
the file is JSON, :93 parsePolicyPackConfig). policy/config.json is the one list of production stacks
(productionStacks): bin/up, the workflows (pulumi/actions v7.0.0 policyPackConfigs, action.yml:82) and this
module all read it.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from policy.rules import POLICIES
from tools.mock_run import Registered, Run, run_program
from tools.stack_files import STACK_NAME, MissingStackFileError, StackFileError, StackFileWarning, stack_config, stacks

CONFIG_FILE = Path(__file__).resolve().parent / "config.json"
LEVELS = {level.value: level for level in EnforcementLevel}
PRODUCTION_KEY = "productionStacks"


# Secrets a stack file cannot hold (`pulumi config set --secret` puts them in the deploying machine's config): the
# offline run stands in for an absent one, so the rules judge what a deploy renders with its secrets set (WAL
# archiving needs pgstack:dumpS3). `pulumi preview` with the pack judges the real config and finds a missing one.
STAND_INS: dict[str, dict[str, Any]] = {
    "pgstack:dumpS3": {"provider": "AWS", "accessKeyId": "stand-in", "secretAccessKey": "stand-in"},
}


def needs_dump_s3(config: dict[str, Any]) -> bool:
    """The stack copies its dumps to S3 or archives WAL, so a deploy has pgstack:dumpS3 (the config requires it)."""
    backup = config.get("pgstack:backup") or {}
    return bool(backup.get("wal")) or bool((backup.get("dumps") or {}).get("s3Remote"))


def with_stand_ins(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The stack's config with a stand-in for each absent secret it needs, and the keys stood in for."""
    missing = [key for key in STAND_INS if key not in config and needs_dump_s3(config)]
    return config | {key: STAND_INS[key] for key in missing}, missing


class PolicyConfigError(ValueError):
    """policy/config.json cannot be used; the message is one line naming the file, the key and the value."""


@dataclass(frozen=True)
class Violation:
    level: EnforcementLevel
    policy: str
    resource: Registered
    message: str

    def line(self) -> str:
        return f"{self.level.value} {self.policy}: {self.resource.type} {self.resource.name}: {self.message}"


# ------------------------------------------------------------------ config


def _production_policies() -> list[ResourceValidationPolicy]:
    return [p for p in POLICIES if p.config_schema and PRODUCTION_KEY in p.config_schema.properties]


def _check_entry(path: Path, name: str, value: Any) -> None:
    where = f"{path}: {name}"
    if isinstance(value, str):
        if value not in LEVELS:
            raise PolicyConfigError(f"{where}: {value!r} is not an enforcement level ({', '.join(LEVELS)})")
        return
    if not isinstance(value, dict):
        raise PolicyConfigError(f"{where}: {value!r} is not an enforcement level or an object")
    if "enforcementLevel" in value and value["enforcementLevel"] not in LEVELS:
        raise PolicyConfigError(f"{where}.enforcementLevel: {value['enforcementLevel']!r} is not one of {', '.join(LEVELS)}")
    stacks = value.get(PRODUCTION_KEY, [])
    if not isinstance(stacks, list) or not all(isinstance(s, str) and STACK_NAME.fullmatch(s) for s in stacks):
        raise PolicyConfigError(f'{where}.{PRODUCTION_KEY}: {stacks!r} is not a list of stack names (e.g. ["prod", "eu.prod"])')


def load_config(path: Path = CONFIG_FILE) -> dict[str, Any]:
    """The file as the CLI reads it (JSON: policy name or "all" -> enforcement level or object), checked."""
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PolicyConfigError(f"{path}: cannot read a policy pack config: {exc}") from None
    if not isinstance(config, dict):
        raise PolicyConfigError(f"{path}: expected an object of policy names, got {type(config).__name__}")
    names = {p.name for p in POLICIES}
    for name, value in config.items():
        if name not in names | {"all"}:
            raise PolicyConfigError(f"{path}: {name!r} names no policy of the pack ({', '.join(sorted(names))})")
        _check_entry(path, name, value)
    lists = {p.name: sorted(_props(config.get(p.name)).get(PRODUCTION_KEY, [])) for p in _production_policies()}
    if len({json.dumps(v) for v in lists.values()}) > 1:
        raise PolicyConfigError(f"{path}: {PRODUCTION_KEY} differs between the production policies {lists}: give each the same list")
    return config


def _props(entry: Any) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != "enforcementLevel"} if isinstance(entry, dict) else {}


def policy_config(policy: ResourceValidationPolicy, config: dict[str, Any]) -> tuple[EnforcementLevel, dict[str, Any]]:
    """The enforcement level and properties the engine hands this policy (ReconcilePolicyPackConfig)."""
    schema = policy.config_schema
    props = {k: v["default"] for k, v in (schema.properties if schema else {}).items() if "default" in v}
    level = policy.enforcement_level or EnforcementLevel.ADVISORY
    for entry in (config.get("all"), config.get(policy.name)):
        given = entry if isinstance(entry, str) else (entry or {}).get("enforcementLevel")
        if given:
            level = LEVELS[given]
    props.update(copy.deepcopy(_props(config.get(policy.name))))
    return level, props


def production_stacks(config: dict[str, Any]) -> list[str]:
    """The stacks held to the production rules under this config."""
    return list(policy_config(_production_policies()[0], config)[1][PRODUCTION_KEY])


# ------------------------------------------------------------------ checks


def validation_args(resource: Registered, config: dict[str, Any]) -> ResourceValidationArgs:
    """What the runtime's Analyze builds for one resource (its options, as the engine sends them)."""
    opts = PolicyResourceOptions(
        protect=resource.options.protect,
        ignore_changes=list(resource.options.ignore_changes),
        delete_before_replace=resource.options.delete_before_replace,
        aliases=list(resource.options.aliases),
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=resource.parent or None,
    )
    # deserialize_properties builds every dict and list anew (pulumi_policy/deserialize.py), so a policy that
    # changes what it is handed changes a copy, as with the runtime's per-policy MessageToDict.
    props = unknown_checking_proxy(deserialize_properties(resource.inputs))
    return ResourceValidationArgs(resource.type, props, resource.urn, resource.name, opts, None, config, {})


def validate(policy: ResourceValidationPolicy, resource: Registered, config: dict[str, Any]) -> list[str]:
    """The messages one policy reports for one resource; an unknown value is a note, as in a preview."""
    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    try:
        policy.validate(validation_args(resource, config), report)
    except UnknownValueError as exc:
        found.append(f"can't run policy '{policy.name}' during preview: {exc.message}")
    return found


def check(run: Run, config: dict[str, Any]) -> list[Violation]:
    """Every policy over every resource of a run, in the pack's order."""
    out: list[Violation] = []
    for policy in POLICIES:
        level, props = policy_config(policy, config)
        if level == EnforcementLevel.DISABLED:
            continue
        shown = EnforcementLevel.MANDATORY if level == EnforcementLevel.REMEDIATE else level
        for resource in run.resources:
            out += [Violation(shown, policy.name, resource, m) for m in validate(policy, resource, props)]
    return out


# ------------------------------------------------------------------ command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/policy", description="Run the policy pack on a stack's mock render, offline.")
    parser.add_argument("stack", help="a stack with a Pulumi.<stack>.yaml")
    parser.add_argument("--config", type=Path, default=CONFIG_FILE, help="the policy pack config (default: policy/config.json)")
    args = parser.parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StackFileWarning)
        try:
            config = load_config(args.config)
            values, stood_in = with_stand_ins(stack_config(args.stack))
            run = run_program(values, stack=args.stack, secret_keys=stood_in)
            for key in stood_in:
                print(f"bin/policy: a stand-in for {key} (secret, not in the stack file; a deploy sets it)", file=sys.stderr)
        except (StackFileError, PolicyConfigError, pulumi.RunError) as exc:
            known = f"; the stacks here: {', '.join(stacks()) or 'none'}" if isinstance(exc, MissingStackFileError) else ""
            print(f"bin/policy: {exc}{known}", file=sys.stderr)
            return 2
        finally:
            for w in caught:
                print(f"warning: {w.message}", file=sys.stderr)
    found = check(run, config)
    for violation in found:
        print(violation.line())
    mandatory = sum(v.level == EnforcementLevel.MANDATORY for v in found)
    rules = "production" if args.stack in production_stacks(config) else "non-production"
    print(
        f"bin/policy: {args.stack} ({rules} rules, {args.config.name}): {len(run.resources)} resources, "
        f"{mandatory} mandatory and {len(found) - mandatory} other violations",
        file=sys.stderr,
    )
    return 1 if mandatory else 0


if __name__ == "__main__":
    sys.exit(main())
