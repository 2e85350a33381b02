"""One rule, one home (issue 18): each cross-field rule lives in a component's Args, and stacks/config/ says
its refusal under the YAML key the value came from (stacks/config/contract.py).

For every rule moved out of the config: the stack file's refusal is a ConfigError whose cause is the Args'
own ArgsError (so no config validator checked it first), and the component used directly refuses the same
values with the same accepted form."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from components.logical_backup_args import LogicalBackupArgs
from components.longhorn_backups_args import LonghornRecurringJobsArgs, Schedule
from components.longhorn_install_args import LonghornInstallArgs
from components.longhorn_storage_class_args import LonghornStorageClassArgs
from components.network_args import DnsEgress, NetworkPolicyPeer
from components.postgres_args import PostgresStatefulSetArgs
from components.postgres_tls_args import IssuerRef, TlsArgs
from components.validation import ArgsError
from stacks.config import ConfigError, parse_settings
from stacks.config.contract import YAML_KEYS, config_line, yaml_key
from tests.components import test_args_contract as args_contract

_DAILY = {"schedule": "@daily", "retain": 3}


def pg(**kw: Any) -> PostgresStatefulSetArgs:
    args = PostgresStatefulSetArgs(**({"namespace": "postgres", "storage_class": "fast", "image": "postgres:18.6"} | kw))
    args.check_component_name("postgres")
    return args


def dumps(**kw: Any) -> LogicalBackupArgs:
    return args_contract.dumps(**({"name": "postgres", "image": "postgres:18.6"} | kw))


# (rule, the stack's config, the same values given to the component, the Args class and field that refuse them,
# the YAML key the refusal names)
MOVED: list[tuple[str, dict[str, Any], Callable[[], object], type, str, str]] = [
    (
        "requests <= limits",
        {"postgres": {"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}},
        lambda: pg(requests={"cpu": "2", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"}),
        PostgresStatefulSetArgs,
        "limits['cpu']",
        "postgres.resources.limits.cpu",
    ),
    (
        "nodePort only with NodePort",
        {"postgres": {"service": {"nodePort": 30001}}},
        lambda: pg(node_port=30001),
        PostgresStatefulSetArgs,
        "node_port",
        "postgres.service.nodePort",
    ),
    (
        "strict-local with one replica (the class)",
        {"storage": {"dataLocality": "strict-local", "numberOfReplicas": 2}},
        lambda: LonghornStorageClassArgs(name="c", data_locality="strict-local", replicas=2),
        LonghornStorageClassArgs,
        "data_locality",
        "storage.dataLocality",
    ),
    (
        "strict-local with one replica (Longhorn's defaults)",
        {"longhorn": {"defaultDataLocality": "strict-local", "defaultReplicaCount": 3}},
        lambda: LonghornInstallArgs(chart_version="1.10.1", default_data_locality="strict-local", default_replica_count=3),
        LonghornInstallArgs,
        "default_data_locality",
        "longhorn.defaultDataLocality",
    ),
    (
        "cidr xor labels",
        {"postgres": {"networkPolicy": {"allowFrom": [{}, {"cidr": "10.0.0.0/8", "podLabels": {"app": "api"}}]}}},
        lambda: NetworkPolicyPeer(cidr="10.0.0.0/8", pod_labels={"app": "api"}),
        NetworkPolicyPeer,
        "cidr",
        "postgres.networkPolicy.allowFrom.1.cidr",
    ),
    (
        "dns any alone",
        {"postgres": {"networkPolicy": {"dns": {"any": True, "cidrs": ["169.254.20.10/32"]}}}},
        lambda: DnsEgress(any=True, cidrs=("169.254.20.10/32",)),
        DnsEgress,
        "any",
        "postgres.networkPolicy.dns.any",
    ),
    (
        "keep or keepDays",
        {"backup": {"dumps": {"keep": 0, "keepDays": 0}}},
        lambda: dumps(keep=0, keep_days=0),
        LogicalBackupArgs,
        "keep",
        "backup.dumps.keep",
    ),
    (
        "a reserved role",
        {"postgres": {"username": "pg_app"}},
        lambda: pg(username="pg_app"),
        PostgresStatefulSetArgs,
        "username",
        "postgres.username",
    ),
    (
        "username other than the replication user",
        {"postgres": {"username": "replicator"}},
        lambda: pg(username="replicator"),
        PostgresStatefulSetArgs,
        "username",
        "postgres.username",
    ),
    (
        "primary pod with replication",
        {"postgres": {"replicas": 2, "replication": {"enabled": False, "primary": "postgres-1"}}},
        lambda: pg(replicas=2, replication=False, primary_pod="postgres-1"),
        PostgresStatefulSetArgs,
        "primary_pod",
        "postgres.replication.primary",
    ),
    (
        "primary pod one of the set's",
        {"postgres": {"replicas": 3, "replication": {"primary": "postgres-standby-5"}}},
        lambda: pg(replicas=3, primary_pod="postgres-standby-5"),
        PostgresStatefulSetArgs,
        "primary_pod",
        "postgres.replication.primary",
    ),
    (
        "the job group's length",
        {"storage": {"className": "c" * 32}, "backup": {"snapshots": _DAILY}},
        lambda: LonghornRecurringJobsArgs(namespace="longhorn-system", group="c" * 32, snapshot=Schedule("@daily", 3)),
        LonghornRecurringJobsArgs,
        "group",
        "storage.className",
    ),
    (
        "a two-character job group",
        {"storage": {"className": "c"}, "backup": {"volumeBackups": _DAILY}},
        lambda: LonghornRecurringJobsArgs(namespace="longhorn-system", group="c", backup=Schedule("@daily", 3)),
        LonghornRecurringJobsArgs,
        "group",
        "storage.className",
    ),
    (
        "TLS renewal before expiry",
        {"tls": {"enabled": True, "validityDays": 30, "renewBeforeDays": 30}},
        lambda: TlsArgs(validity_days=30, renew_before_days=30),
        TlsArgs,
        "renew_before_days",
        "tls.renewBeforeDays",
    ),
    (
        "one source of the certificate",
        {"tls": {"enabled": True, "existingSecret": "db-tls", "certManager": {"issuerRef": {"name": "ca"}}}},
        lambda: TlsArgs(existing_secret="db-tls", issuer=IssuerRef("ca")),
        TlsArgs,
        "existing_secret",
        "tls.existingSecret",
    ),
    (
        "the generated CA outlives the certificate",
        {"tls": {"enabled": True, "validityDays": 400, "caValidityDays": 300}},
        lambda: TlsArgs(validity_days=400, ca_validity_days=300),
        TlsArgs,
        "ca_validity_days",
        "tls.caValidityDays",
    ),
]


def _refusals(raw: dict[str, Any], direct: Callable[[], object]) -> tuple[ConfigError, ArgsError]:
    with pytest.raises(ConfigError) as config:
        parse_settings(raw)
    with pytest.raises(ArgsError) as component:
        direct()
    return config.value, component.value


@pytest.mark.parametrize(("rule", "raw", "direct", "cls", "field", "key"), MOVED, ids=[m[0] for m in MOVED])
def test_a_moved_rule_is_the_components_refusal_under_the_yaml_key(
    rule: str, raw: dict[str, Any], direct: Callable[[], object], cls: type, field: str, key: str
) -> None:
    config, component = _refusals(raw, direct)
    cause = config.__cause__
    # The Args refused it: no config validator re-checks the rule.
    assert isinstance(cause, ArgsError), f"{rule}: refused by the config itself, not by {cls.__name__}"
    assert (cause.args_class, cause.field) == (component.args_class, component.field) == (cls, field)
    # The same accepted form, through the config and through the component.
    assert (cause.expected, cause.why, cause.examples) == (component.expected, component.why, component.examples)
    [line] = [line.strip() for line in str(config).splitlines()[1:]]
    assert line.startswith(f"pgstack:{key}: got "), line
    prefix = key.rsplit(".", 1)[0] + "." if cls is NetworkPolicyPeer else ""
    assert line == config_line(cause, prefix)


def test_args_fields_named_in_a_message_become_yaml_keys() -> None:
    """Another field a message names is renamed too, and examples are shown as YAML reads them."""
    config, _ = _refusals(MOVED[0][1], MOVED[0][2])
    assert str(config).endswith(
        'pgstack:postgres.resources.limits.cpu: got "1"; expected a limit at least postgres.resources.requests.cpu (2), such as "2": '
        "Kubernetes refuses a container whose request is above its limit (or lower postgres.resources.requests.cpu)"
    )
    config, _ = _refusals(MOVED[1][1], MOVED[1][2])
    assert str(config).endswith("pgstack:postgres.service.nodePort: got 30001; expected null unless postgres.service.type is 'NodePort'")
    config, _ = _refusals(MOVED[4][1], MOVED[4][2])
    assert "pgstack:postgres.networkPolicy.allowFrom.1.cidr: got " in str(config)
    assert "either cidr or postgres.networkPolicy.allowFrom.1.podLabels/postgres.networkPolicy.allowFrom.1.namespaceLabels" in str(config)


def test_yaml_keys_name_real_args_fields() -> None:
    """A typo in the table would leave a refusal without its key."""
    for cls, field in YAML_KEYS:
        names = {f.name for f in dataclasses.fields(cls)} | {"<component name>"}
        assert field in names, (cls.__name__, field)
    assert yaml_key(PostgresStatefulSetArgs, "requests['memory']") == "postgres.resources.requests.memory"
    assert yaml_key(DnsEgress, "cidrs[2]") == "postgres.networkPolicy.dns.cidrs.2"
    assert yaml_key(PostgresStatefulSetArgs, "hold") is None


def test_the_components_defaults_are_the_configs() -> None:
    """The resources and DNS peers a stack leaves out are the component's own defaults."""
    args = pg()
    pg_settings = parse_settings({}).postgres
    assert pg_settings.resources.requests.model_dump() == args.requests
    assert pg_settings.resources.limits.model_dump() == args.limits
    dns = pg_settings.networkPolicy.dns
    assert (dict(dns.podLabels), dict(dns.namespaceLabels)) == (DnsEgress().pod_labels, DnsEgress().namespace_labels)
