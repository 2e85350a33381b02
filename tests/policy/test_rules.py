"""The policy pack (policy/rules.py), called the way the pulumi-policy runtime calls it.

The runtime (pulumi_policy/policy.py, _PolicyAnalyzerServicer.Analyze) deserializes the resource's inputs,
wraps them in unknown_checking_proxy and hands ResourceValidationArgs(type, props, urn, name, opts,
provider, config, stack_tags) to each policy's validate. These tests build the same arguments from the
resources the real program registers under mocks, so every rule sees what a preview would show it.
policy/__main__.py is never imported: building a PolicyPack starts a gRPC server.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

try:
    import pulumi_policy  # noqa: F401
except ImportError:  # pragma: no cover - a missing tool fails, it never skips
    pytest.fail("missing pulumi-policy: .venv/bin/pip install pulumi-policy==1.21.0 (pinned in requirements-dev.txt)", pytrace=False)
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

from policy import offline, rules
from stacks.config import uninstall_confirmation
from tests.components.wal_runs import WAL_S3
from tests.conftest import program_run, recorded_run, settings_of
from tools.mock_run import Registered, Run
from tools.stack_files import stack_config, stacks

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"
POLICIES: dict[str, ResourceValidationPolicy] = {p.name: p for p in rules.POLICIES}
# The pack's config as bin/up, bin/policy and the workflows pass it (--policy-pack-config policy/config.json).
PACK_CONFIG = offline.load_config()


def default_config(policy: ResourceValidationPolicy) -> dict[str, Any]:
    """What the CLI passes a policy when no config file is given: the schema's defaults."""
    return offline.policy_config(policy, {})[1]


def violations(policy: ResourceValidationPolicy, resource: Registered, config: dict[str, Any] | None = None) -> list[str]:
    found: list[str] = []
    cfg = default_config(policy) if config is None else config
    result = policy.validate(offline.validation_args(resource, cfg), lambda message, urn=None: found.append(message))
    assert result is None  # every rule is synchronous
    return found


def run_pack(run: Run, config: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """Every policy over every registered resource, as bin/policy runs it: policy name -> messages."""
    out: dict[str, list[str]] = {}
    for v in offline.check(run, PACK_CONFIG if config is None else config):
        out.setdefault(v.policy, []).append(f"{v.resource.name}: {v.message}")
    return out


def mandatory(found: dict[str, list[str]]) -> dict[str, list[str]]:
    return {k: v for k, v in found.items() if POLICIES[k].enforcement_level == EnforcementLevel.MANDATORY}


# The secret config a stack file needs on the machine that deploys it, which no stack file holds in plain text: prod
# archives its WAL with the S3 account pgstack:dumpS3 (without it archiving is off and production-wal-archiving
# refuses the stack: test_production_without_its_s3_account_does_not_archive_and_is_refused).
DEPLOYED_SECRETS: dict[str, dict[str, Any]] = {"prod": {"pgstack:dumpS3": WAL_S3}}


def recorded(stack: str) -> Run:
    """The stack file's run (with its DEPLOYED_SECRETS), shared with the other tests of the same config (one mock
    run per config and worker)."""
    secrets = DEPLOYED_SECRETS.get(stack)
    if secrets is None:
        return recorded_run(stack)
    return program_run(stack_config(stack) | secrets, stack, sorted(secrets))


def one(stack: str, type_: str, name: str) -> Registered:
    matches = [r for r in recorded(stack).resources if r.type == type_ and r.name == name]
    assert len(matches) == 1, f"{stack}: no single {type_} {name}"
    return matches[0]


def edited(resource: Registered, edit: Callable[[dict[str, Any]], None], **options: Any) -> Registered:
    inputs = copy.deepcopy(resource.inputs)
    edit(inputs)
    return dataclasses.replace(resource, inputs=inputs, options=dataclasses.replace(resource.options, **options))


# ------------------------------------------------------------------ edits that break one rule each

STS, CRON, CM, SC, REL = (
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:storage.k8s.io/v1:StorageClass",
    "kubernetes:helm.sh/v3:Release",
)
SECRET_TYPE = "kubernetes:core/v1:Secret"


def _pod(inputs: dict[str, Any]) -> dict[str, Any]:
    if "jobTemplate" in inputs["spec"]:
        return dict(inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(inputs["spec"]["template"]["spec"])


def _db(inputs: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in _pod(inputs)["containers"] if c["name"] == "postgres")


def _set_env(name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def edit(inputs: dict[str, Any]) -> None:
        env = _db(inputs)["env"]
        env[:] = [e for e in env if e["name"] != name] + [{"name": name, "value": value}]

    return edit


def _drop_arg(arg: str) -> Callable[[dict[str, Any]], None]:
    def edit(inputs: dict[str, Any]) -> None:
        _db(inputs)["args"] = [a for a in _db(inputs)["args"] if a != arg]

    return edit


def _drop(path: list[str]) -> Callable[[dict[str, Any]], None]:
    def edit(inputs: dict[str, Any]) -> None:
        obj = inputs
        for key in path[:-1]:
            obj = obj[key]
        del obj[path[-1]]

    return edit


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(inputs: dict[str, Any]) -> None:
        obj = inputs
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value

    return edit


def _each_container(edit_one: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def edit(inputs: dict[str, Any]) -> None:
        for c in _pod(inputs)["containers"]:
            edit_one(c)

    return edit


def _add_cm(key: str, text: str) -> Callable[[dict[str, Any]], None]:
    return lambda inputs: inputs["data"].__setitem__(key, text)


def _no_spread(inputs: dict[str, Any]) -> None:
    spec = inputs["spec"]["template"]["spec"]
    spec.pop("affinity")
    spec.pop("topologySpreadConstraints")


def _no_non_root(inputs: dict[str, Any]) -> None:
    spec = inputs["spec"]["template"]["spec"]
    spec["securityContext"].pop("runAsNonRoot")
    for c in spec["containers"] + spec.get("initContainers", []):
        c["securityContext"].pop("runAsNonRoot")


def _tag_only(c: dict[str, Any]) -> None:
    c["image"] = c["image"].split("@", 1)[0]


# (rule, stack, type, name, edit, options, expected words in the message)
CASES: list[tuple[str, str, str, str, Callable[[dict[str, Any]], None], dict[str, Any], str]] = [
    ("no-trust-auth", "prod", STS, "postgres", _set_env("POSTGRES_HOST_AUTH_METHOD", "trust"), {}, "POSTGRES_HOST_AUTH_METHOD"),
    (
        "no-trust-auth",
        "prod",
        CM,
        "postgres-scripts",
        _add_cm("pg_hba.conf", "local all all peer\nhost all all 0.0.0.0/0 trust\n"),
        {},
        "trust",
    ),
    ("no-trust-auth", "prod", CM, "postgres-scripts", _add_cm("x.sh", 'initdb --auth-host=trust -D "$PGDATA"\n'), {}, "trust"),
    ("passwords-from-secrets", "prod", STS, "postgres", _set_env("POSTGRES_PASSWORD", "hunter2"), {}, "POSTGRES_PASSWORD is a literal"),
    ("passwords-from-secrets", "prod", CM, "postgres-scripts", _add_cm("postgres-password", "hunter2"), {}, "belong in a Secret"),
    ("passwords-from-secrets", "prod", CM, "postgres-scripts", _add_cm("env.sh", "export PGPASSWORD=hunter2\n"), {}, "belong in a Secret"),
    ("pgdata-subdirectory", "prod", STS, "postgres", _set_env("PGDATA", "/var/lib/postgresql"), {}, "mount point"),
    ("pgdata-subdirectory", "prod", STS, "postgres", _set_env("PGDATA", "/tmp/pgdata"), {}, "not inside its data volume"),
    ("requests-and-limits", "prod", STS, "postgres", _each_container(lambda c: c["resources"].pop("limits")), {}, "limits lacks"),
    ("requests-and-limits", "prod", CRON, "dumps-cron", _each_container(lambda c: c["resources"]["requests"].pop("memory")), {}, "memory"),
    (
        "claim-storage-class",
        "prod",
        STS,
        "postgres",
        _drop(["spec", "volumeClaimTemplates", 0, "spec", "storageClassName"]),
        {},
        "storageClassName",
    ),
    (
        "claim-storage-class",
        "prod",
        "kubernetes:core/v1:PersistentVolumeClaimPatch",
        "dumps-claim",
        _drop(["spec", "storageClassName"]),
        {},
        "storageClassName",
    ),
    (
        "pvc-retention-retain",
        "prod",
        STS,
        "postgres",
        _set(["spec", "persistentVolumeClaimRetentionPolicy", "whenDeleted"], "Delete"),
        {},
        "whenDeleted",
    ),
    ("storage-class-retain", "prod", SC, "longhorn-sc", _set(["reclaimPolicy"], "Delete"), {}, "Delete"),
    ("storage-class-retain", "prod", SC, "longhorn-sc", _drop(["reclaimPolicy"]), {}, "unset"),
    ("spread-replicas", "prod", STS, "postgres-standby", _no_spread, {}, "anti-affinity".replace("-", "")),
    (
        "restricted-security-context",
        "prod",
        STS,
        "postgres",
        _each_container(lambda c: c["securityContext"].__setitem__("allowPrivilegeEscalation", True)),
        {},
        "allowPrivilegeEscalation",
    ),
    ("restricted-security-context", "prod", STS, "postgres", _no_non_root, {}, "runAsNonRoot"),
    (
        "restricted-security-context",
        "prod",
        CRON,
        "dumps-cron",
        _each_container(lambda c: c["securityContext"].pop("capabilities")),
        {},
        "drop",
    ),
    (
        "longhorn-uninstall-disarmed",
        "prod",
        REL,
        "longhorn-release",
        _set(["values", "defaultSettings", "deletingConfirmationFlag"], "true"),
        {},
        "deletingConfirmationFlag",
    ),
    ("production-longhorn-replicas", "prod", SC, "longhorn-sc", _set(["parameters", "numberOfReplicas"], "1"), {}, "numberOfReplicas"),
    (
        "production-longhorn-replicas",
        "prod",
        REL,
        "longhorn-release",
        _set(["values", "defaultSettings", "defaultReplicaCount"], "1"),
        {},
        "defaultReplicaCount",
    ),
    ("production-protect", "prod", STS, "postgres", lambda i: None, {"protect": False}, "not protected"),
    ("production-protect", "prod", SECRET_TYPE, "postgres-credentials", lambda i: None, {"protect": False}, "not protected"),
    ("production-image-digest", "prod", STS, "postgres", _each_container(_tag_only), {}, "digest"),
    ("production-image-digest", "prod", CRON, "dumps-cron", _each_container(_tag_only), {}, "digest"),
    ("production-tls", "prod", STS, "postgres", _drop_arg("ssl=on"), {}, "tls.enabled"),
    ("production-tls", "prod", STS, "postgres", _set_env("TLS_REQUIRED", "false"), {}, "tls.required"),
    ("production-tls", "prod", STS, "postgres-standby", _set_env("TLS_REQUIRED", "false"), {}, "tls.required"),
    ("production-wal-archiving", "prod", STS, "postgres", _drop_arg("archive_mode=on"), {}, "backup.wal"),
    ("production-wal-archiving", "prod", STS, "postgres-standby", _set_env("WAL_TARGET", ""), {}, "backup.wal"),
    ("stateful-unguarded", "prod", STS, "postgres", lambda i: None, {"protect": False}, "not protected"),
]
IDS = [f"{rule}-{name}-{i}" for i, (rule, _, _, name, *_rest) in enumerate(CASES)]


def test_every_rule_has_a_case() -> None:
    assert {c[0] for c in CASES} == set(POLICIES)


@pytest.mark.parametrize(("rule", "stack", "type_", "name", "edit", "options", "words"), CASES, ids=IDS)
def test_rule_passes_the_recorded_resource(rule: str, stack: str, type_: str, name: str, edit: Any, options: Any, words: str) -> None:
    assert violations(POLICIES[rule], one(stack, type_, name)) == []


@pytest.mark.parametrize(("rule", "stack", "type_", "name", "edit", "options", "words"), CASES, ids=IDS)
def test_rule_catches_the_broken_resource(rule: str, stack: str, type_: str, name: str, edit: Any, options: Any, words: str) -> None:
    found = violations(POLICIES[rule], edited(one(stack, type_, name), edit, **options))
    assert found, f"{rule} let a broken {type_} {name} through"
    assert any(words.lower() in m.lower() for m in found), found


def test_production_rules_follow_the_policy_config() -> None:
    """productionStacks decides: dev's one Longhorn replica, unprotected resources and TLS off pass as dev, fail as
    production."""
    sc = one("dev", SC, "longhorn-sc")
    sts = one("dev", STS, "postgres")
    assert violations(POLICIES["production-longhorn-replicas"], sc) == []
    assert violations(POLICIES["production-protect"], sts) == []
    assert violations(POLICIES["production-tls"], sts) == []
    as_prod = {"productionStacks": ["dev"]}
    assert violations(POLICIES["production-longhorn-replicas"], sc, as_prod)
    assert violations(POLICIES["production-protect"], sts, as_prod)
    assert not settings_of("dev").tls.enabled
    assert len(violations(POLICIES["production-tls"], sts, as_prod)) == 2


def test_longhorn_uninstall_may_be_armed_only_in_an_unprotected_stack_with_its_confirmation() -> None:
    """Every stack that arms it, unprotected ones included: the uninstall deletes other stacks' volumes too."""
    rule = POLICIES["longhorn-uninstall-disarmed"]
    armed = _set(["values", "defaultSettings", "deletingConfirmationFlag"], "true")
    release = one("dev", REL, "longhorn-release")
    assert not release.options.protect
    confirmed = uninstall_confirmation("dev", "longhorn-system")

    def described(text: str) -> Callable[[dict[str, Any]], None]:
        return lambda inputs: (armed(inputs), inputs.__setitem__("description", text))

    assert violations(rule, edited(release, described(confirmed))) == []
    for broken in (edited(release, armed), edited(release, described(uninstall_confirmation("staging", "longhorn-system")))):
        (found,) = violations(rule, broken)
        assert "without this stack's confirmation" in found and repr(confirmed) in found
    assert violations(rule, edited(release, described(confirmed), protect=True))
    # The pack and the config build the same sentence from the stack, the namespace and the release.
    assert rules.uninstall_confirmation("eu.prod", "lh", "longhorn") == uninstall_confirmation("eu.prod", "lh")


def test_a_stack_armed_through_its_config_passes_the_pack() -> None:
    longhorn = dict(stack_config("dev")["pgstack:longhorn"], deleteAllVolumesOnUninstall=True)
    longhorn["uninstallConfirmation"] = uninstall_confirmation("dev", "longhorn-system")
    run = program_run(stack_config("dev") | {"pgstack:longhorn": longhorn}, "dev")
    assert "longhorn-uninstall-disarmed" not in run_pack(run)


def test_unknown_values_raise_as_the_runtime_expects() -> None:
    """During preview an unknown input raises UnknownValueError; the runtime turns it into an advisory note."""
    sts = edited(one("prod", STS, "postgres"), _each_container(lambda c: c.__setitem__("image", UNKNOWN_STRING_VALUE)))
    with pytest.raises(UnknownValueError):
        violations(POLICIES["production-image-digest"], sts)


# ------------------------------------------------------------------ whole stacks


@pytest.mark.parametrize("stack", stacks())
def test_every_stack_passes_the_pack(stack: str) -> None:
    found = run_pack(recorded(stack))
    assert mandatory(found) == {}
    # The advisory rule speaks exactly when the stack leaves its stateful resources unprotected.
    assert bool(found.get("stateful-unguarded")) == (not settings_of(stack).protect)


def _broken_trust(run: Run) -> Run:
    resources = [
        edited(r, _set_env("POSTGRES_HOST_AUTH_METHOD", "trust")) if r.type == STS and r.name == "postgres" else r for r in run.resources
    ]
    return dataclasses.replace(run, resources=resources)


def _broken_claims(run: Run) -> Run:
    resources = [
        edited(r, _drop(["spec", "volumeClaimTemplates", 0, "spec", "storageClassName"])) if r.type == STS else r for r in run.resources
    ]
    return dataclasses.replace(run, resources=resources)


def _prod_with(**overrides: Any) -> Run:
    config = stack_config("prod")
    for key, fields in overrides.items():
        config[f"pgstack:{key}"] = fields if not isinstance(fields, dict) else {**config.get(f"pgstack:{key}", {}), **fields}
    return program_run(config, "prod")


@pytest.mark.parametrize(
    ("broken", "rule"),
    [
        (lambda: _broken_trust(recorded("dev")), "no-trust-auth"),
        (lambda: _broken_claims(recorded("staging")), "claim-storage-class"),
        (lambda: _prod_with(protect=False), "production-protect"),
        (
            lambda: _prod_with(postgres={"image": {"repository": "docker.io/library/postgres", "tag": "18.1", "digest": None}}),
            "production-image-digest",
        ),
        (lambda: _prod_with(storage={"numberOfReplicas": 1}), "production-longhorn-replicas"),
        (lambda: _prod_with(storage={"reclaimPolicy": "Delete"}), "storage-class-retain"),
    ],
    ids=[
        # Fixed examples, not per-stack tests: ids that do not look like a stack parameter.
        "trust_env_in_dev",
        "claim_without_class_in_staging",
        "unprotected_prod",
        "image_by_tag_in_prod",
        "one_replica_in_prod",
        "reclaim_delete_in_prod",
    ],
)
def test_a_broken_stack_is_caught(broken: Callable[[], Run], rule: str) -> None:
    found = mandatory(run_pack(broken()))
    assert rule in found, found


# ------------------------------------------------------------------ the pack's config (policy/config.json)


def _production_policies() -> list[str]:
    return sorted(n for n, p in POLICIES.items() if p.config_schema and "productionStacks" in p.config_schema.properties)


def _as_production(config: dict[str, Any], stack: str) -> dict[str, Any]:
    out = copy.deepcopy(config)
    for name in _production_policies():
        out.setdefault(name, {}).setdefault("productionStacks", []).append(stack)
    return out


def test_the_pack_config_lists_the_production_stacks_once_for_every_production_rule() -> None:
    """policy/config.json is the one list of production stacks: every production rule reads it, and each name
    is a stack of this repository (a typo would leave a production stack to the non-production rules)."""
    assert sorted(n for n in PACK_CONFIG if isinstance(PACK_CONFIG[n], dict) and "productionStacks" in PACK_CONFIG[n]) == (
        _production_policies()
    )
    listed = offline.production_stacks(PACK_CONFIG)
    assert listed, "policy/config.json names no production stack"
    assert set(listed) <= set(stacks()), f"policy/config.json names stacks without a Pulumi.<stack>.yaml: {set(listed) - set(stacks())}"


def test_a_stack_listed_in_the_pack_config_gets_the_production_rules() -> None:
    """The config, not the stack's name, decides: dev passes as it is, and fails once the file lists it."""
    dev = recorded("dev")
    assert mandatory(run_pack(dev)) == {}
    found = mandatory(run_pack(dev, _as_production(PACK_CONFIG, "dev")))
    assert {"production-protect", "production-longhorn-replicas"} <= set(found), found


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ({"production-protectt": {"productionStacks": ["prod"]}}, "'production-protectt' names no policy of the pack"),
        ({"production-protect": {"productionStacks": ["prod", "eu prod"]}}, "is not a list of stack names"),
        ({"production-protect": {"productionStacks": ["prod", "eu.prod"]}}, "productionStacks differs between the production policies"),
        ({"no-trust-auth": "optional"}, "'optional' is not an enforcement level"),
        ([], "expected an object of policy names"),
    ],
    ids=["typo_in_a_policy_name", "not_a_stack_name", "lists_that_differ", "bad_level", "not_an_object"],
)
def test_a_bad_pack_config_is_one_line(tmp_path: Path, content: Any, words: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(content))
    with pytest.raises(offline.PolicyConfigError) as caught:
        offline.load_config(path)
    assert words in str(caught.value) and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_enforcement_levels_follow_the_engine() -> None:
    """Schema defaults, then "all", then the policy's own entry (pulumi pkg/resource/analyzer/config.go applyConfig);
    disabled rules do not run and remediate reports as mandatory (pulumi_policy policy.py Analyze)."""
    protect = POLICIES["production-protect"]
    assert offline.policy_config(protect, {}) == (EnforcementLevel.MANDATORY, {"productionStacks": ["prod"]})
    config = {"all": "advisory", "production-protect": {"enforcementLevel": "remediate", "productionStacks": ["dev"]}}
    assert offline.policy_config(protect, config) == (EnforcementLevel.REMEDIATE, {"productionStacks": ["dev"]})
    assert offline.policy_config(POLICIES["no-trust-auth"], config)[0] == EnforcementLevel.ADVISORY
    levels = {(v.policy, v.level) for v in offline.check(recorded("dev"), config)}
    assert ("production-protect", EnforcementLevel.MANDATORY) in levels
    assert not offline.check(recorded("dev"), {"all": "disabled"})


def test_production_without_its_s3_account_does_not_archive_and_is_refused() -> None:
    """prod's stack file as committed (no pgstack:dumpS3, a secret): the program leaves archiving off and warns, and
    the pack refuses the stack until the account is set; as dev it passes (archiving is production's rule)."""
    run = recorded_run("prod")
    assert any("WAL is not archived until the S3 account is set" in m for _, m in run.logs), run.logs
    found = mandatory(run_pack(run))
    assert set(found) == {"production-wal-archiving"}
    assert sorted(m.split(":")[0] for m in found["production-wal-archiving"]) == ["postgres", "postgres-standby"]
    assert violations(POLICIES["production-wal-archiving"], one("dev", STS, "postgres")) == []
