"""Every component's Args is a contract: documented field by field, checked at construction.

A wrong argument raises one ValueError naming the field, the value and the accepted form,
before any resource is registered; a valid one still builds.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.headless_service_args import HeadlessServiceArgs, NamedPort
from components.logical_backup_args import DumpS3, LogicalBackupArgs
from components.longhorn_backups_args import LonghornRecurringJobsArgs, Schedule
from components.longhorn_install_args import LonghornInstallArgs
from components.longhorn_storage_class_args import LonghornStorageClassArgs
from components.network_args import DnsEgress, NetworkPolicyPeer
from components.postgres_args import PostgresStatefulSetArgs
from components.postgres_statefulset import PostgresStatefulSet
from tests.conftest import STS, run_component
from tools.mock_run import Run, run_pulumi

COMPONENTS = Path(__file__).resolve().parents[2] / "components"


def pg(**kw: Any) -> PostgresStatefulSetArgs:
    return PostgresStatefulSetArgs(**({"namespace": "db", "storage_class": "fast", "image": "postgres:18.1"} | kw))


def headless(**kw: Any) -> HeadlessServiceArgs:
    return HeadlessServiceArgs(**({"namespace": "db", "selector": {"app": "x"}, "ports": [NamedPort("web", 80)]} | kw))


def dumps(**kw: Any) -> LogicalBackupArgs:
    base: dict[str, Any] = {
        "name": "pg",
        "namespace": "db",
        "image": "postgres:18.1",
        "image_pull_policy": "IfNotPresent",
        "scripts_config_map": "pg-scripts",
        "credentials_secret": "pg-credentials",
        "hosts": ["pg.db.svc.cluster.local"],
        "port": 5432,
        "database_pods": {"app": "pg"},
        "storage_class": "fast",
    }
    return LogicalBackupArgs(**(base | kw))


def longhorn(**kw: Any) -> LonghornInstallArgs:
    return LonghornInstallArgs(**({"chart_version": "1.10.1"} | kw))


def storage_class(**kw: Any) -> LonghornStorageClassArgs:
    return LonghornStorageClassArgs(**({"name": "db-class"} | kw))


def jobs(**kw: Any) -> LonghornRecurringJobsArgs:
    return LonghornRecurringJobsArgs(**({"namespace": "longhorn-system", "group": "db-class", "snapshot": Schedule("@daily", 3)} | kw))


# (build, field given, value, what the message must say it accepts)
REJECTED: list[tuple[Callable[..., object], str, Any, str]] = [
    (pg, "replicas", 0, "an integer from 1 to 15"),
    (pg, "replicas", 16, "an integer from 1 to 15"),
    (pg, "service_type", "Bogus", "one of 'ClusterIP', 'NodePort', 'LoadBalancer'"),
    (pg, "anti_affinity", "hrad", "one of 'soft', 'hard'"),
    (pg, "image_pull_policy", "always", "one of 'Always', 'IfNotPresent', 'Never'"),
    (pg, "image", "postgres@sha256:" + "a" * 64, "a reference whose tag starts with the PostgreSQL major"),
    (pg, "image", "postgres:latest", "a reference whose tag starts with the PostgreSQL major"),
    (pg, "storage_size", "1 Gi", "a Kubernetes quantity of at least 100Mi without spaces"),
    (pg, "storage_size", "0", "a Kubernetes quantity of at least 100Mi"),
    (pg, "storage_size", "1500m", "a whole number of bytes"),
    (pg, "shm_size", "lots", "a Kubernetes quantity"),
    # Drift issue 18 found between stacks/config/ and the Args, now refused by the Args as config refuses it:
    (pg, "image", "postgres:14.5", "the PostgreSQL major (15, 16, 17 or 18)"),
    (pg, "image", "postgres:19", "the PostgreSQL major (15, 16, 17 or 18)"),
    (pg, "image", "postgres:18.1-alpine", "a Debian-based tag"),
    (pg, "storage_size", "99Mi", "a Kubernetes quantity of at least 100Mi"),
    (dumps, "storage_size", "10Mi", "a Kubernetes quantity of at least 100Mi"),
    (jobs, "group", "c", "a group name of at least 2 characters"),
    (lambda **kw: DnsEgress(pod_labels={"k8s-app": "coredns"}, **kw), "any", True, "False when cidrs, pod_labels or namespace_labels"),
    (longhorn, "chart_version", "\u0661.10.1", "digits only"),  # ARABIC-INDIC DIGIT ONE: a digit to Python's \d, not to Helm
    (pg, "limits", {"cpu": "2"}, "(required: 'memory')"),
    (pg, "limits", {"memory": "1Gi", "gpu": "1"}, "keys among 'cpu' and 'memory'"),
    (pg, "limits", {"cpu": "500m", "memory": "1Gi"}, "a limit at least requests['cpu'] (1), such as '1': Kubernetes refuses"),
    (pg, "database", "App-DB", "a PostgreSQL identifier"),
    (pg, "username", "replicator", "a role other than replication_user"),
    # Reserved as stacks/config/ and pod-config.sh reserve them: the init container would die on them.
    (pg, "username", "postgres", "a role name other than postgres (the superuser) and not starting with pg_"),
    (pg, "username", "pg_monitor", "not starting with pg_ (reserved), such as 'orders'"),
    (pg, "replication_user", "postgres", "a role name other than postgres (the superuser)"),
    (pg, "replication_user", "pg_replicator", "not starting with pg_"),
    (pg, "replication_user", "Replicator", "a PostgreSQL identifier"),
    (pg, "service_port", 70000, "an integer from 1 to 65535"),
    (pg, "node_port", 30080, "None unless service_type is 'NodePort'"),
    (pg, "max_lag_bytes", -1, "an integer of at least 0"),
    (pg, "password_rotation", 0, "an integer of at least 1"),
    (pg, "namespace", "Prod_DB", "a DNS name"),
    (pg, "cluster_domain", "-bad", "a DNS name"),
    (headless, "ports", [], "at least one port"),
    (headless, "selector", {}, "at least one label"),
    (headless, "ports", [NamedPort("web", 80), NamedPort("web", 81)], "a name no other port of the Service has"),
    (lambda **kw: NamedPort(**({"name": "web", "port": 80} | kw)), "port", 0, "an integer from 1 to 65535"),
    (lambda **kw: NamedPort(**({"name": "web", "port": 80} | kw)), "name", "Web_Port", "a port name"),
    (longhorn, "chart_version", "latest", "MAJOR.MINOR.PATCH"),
    (longhorn, "default_data_locality", "local", "one of 'disabled', 'best-effort', 'strict-local'"),
    (longhorn, "node_down_pod_deletion_policy", "delete", "one of 'do-nothing'"),
    (longhorn, "default_replica_count", 0, "an integer from 1 to 20"),
    (storage_class, "replicas", 0, "an integer from 1 to 20"),
    (storage_class, "reclaim_policy", "Recycle", "one of 'Retain', 'Delete'"),
    (storage_class, "data_locality", "strict-local", "a locality that allows replicas 3, such as 'best-effort' or 'disabled'"),
    (storage_class, "name", "DB Class", "a DNS name"),
    (jobs, "group", "g" * 32, "at most 31"),  # <group>-snapshot within Longhorn's 40 (NameMaximumLength)
    (lambda **kw: Schedule(**({"cron": "@daily", "retain": 3} | kw)), "cron", "0 3 * * 7", "day of week 0-6"),
    (jobs, "snapshot", None, "a Schedule in snapshot or backup"),
    (lambda **kw: Schedule(**({"cron": "@daily", "retain": 3} | kw)), "cron", "0 3 * *", "a five-field cron schedule"),
    (lambda **kw: Schedule(**({"cron": "@daily", "retain": 3} | kw)), "retain", 0, "an integer from 1 to 100"),
    (dumps, "image_pull_policy", "Sometimes", "one of 'Always', 'IfNotPresent', 'Never'"),
    (dumps, "keep", 0, "at least 1 in keep or keep_days"),
    (dumps, "hosts", [], "at least one host"),
    (dumps, "schedule", "daily", "a five-field cron schedule"),
    (dumps, "storage_size", "5 Gi", "a Kubernetes quantity"),
    (lambda **kw: DnsEgress(**kw), "cidrs", ("10.0.0.0/33",), "an IPv4 or IPv6 network"),
    (lambda **kw: NetworkPolicyPeer(**kw), "cidr", "10.0.0.1/8", "an IPv4 or IPv6 network address"),
]


@pytest.mark.parametrize(("build", "key", "value", "accepted"), REJECTED, ids=[f"{r[1]}={r[2]!r}"[:40] for r in REJECTED])
def test_a_wrong_argument_names_the_field_the_value_and_the_accepted_form(
    build: Callable[..., object], key: str, value: Any, accepted: str
) -> None:
    with pytest.raises(ValueError, match=r"^\w+\.") as err:
        build(**{key: value})
    message = str(err.value)
    field = message.split(":", 1)[0].split(".", 1)[1]
    assert field.split("[")[0] == key, message
    # The value given: the whole argument, or the part of it that is wrong (requests['cpu'], cidrs[0]).
    assert re.search(r": got .+; expected ", message), message
    assert field != key or f"got {value!r}; expected" in message, message
    assert accepted in message, message


@pytest.mark.parametrize("build", [pg, headless, dumps, longhorn, storage_class, jobs])
def test_defaults_and_a_typical_argument_are_accepted(build: Callable[..., object]) -> None:
    assert build() is not None


def test_valid_non_default_values_still_build() -> None:
    args = pg(
        replicas=15,
        service_type="NodePort",
        node_port=30080,
        anti_affinity="hard",
        image="registry.example.com:5000/db/postgres:16.4-trixie@sha256:" + "a" * 64,
        image_pull_policy="Always",
        limits={"memory": "4Gi"},
        requests={"cpu": "500m"},
        username=None,
    )
    run = run_component(lambda: PostgresStatefulSet("pg", args))
    assert {s.name for s in run.of_type(STS)} == {"pg", "pg-standby"}


def test_outputs_are_not_checked_until_they_have_a_value() -> None:
    def program() -> None:
        args = pg(namespace=pulumi.Output.from_input("Not A Label"), storage_class=pulumi.Output.from_input("x"))
        PostgresStatefulSet("pg", args)

    assert run_component(program).of_type(STS)


def test_derived_values_come_from_one_source() -> None:
    assert pg(image="postgres:17.6@sha256:" + "b" * 64).image_major == 17
    assert pg(image="docker.io/library/postgres:18.1-trixie").image_major == 18
    assert pg(limits={"memory": "4Gi"}).memory_limit_bytes == 4 * 1024**3
    fields = {f.name for f in dataclasses.fields(PostgresStatefulSetArgs)}
    assert not fields & {"image_major", "storage_bytes", "memory_limit_bytes"}


def test_a_name_check_fails_before_any_resource_is_registered() -> None:
    run = Run()
    args = pg(replicas=3, primary_pod="pg-standby-7")
    with pytest.raises(ValueError, match=r"primary_pod: got 'pg-standby-7'; expected None or one of .*pg-0, pg-standby-1, pg-standby-2"):
        run_pulumi(lambda: PostgresStatefulSet("pg", args), run=run)
    assert run.resources == []
    with pytest.raises(ValueError, match=r"<component name>: got 'PG'"):
        run_pulumi(lambda: PostgresStatefulSet("PG", pg()), run=run)
    assert run.resources == []
    # Every name made from the component's name must fit its kind's limit (the standby StatefulSet's is 52), checked
    # here as the config checks postgres.name: a program using the component directly meets it before any resource.
    with pytest.raises(ValueError, match=r"<component name>: got 'p{45}'; expected a name of at most 44 characters: it makes the standby"):
        run_pulumi(lambda: PostgresStatefulSet("p" * 45, pg()), run=run)
    assert run.resources == []
    run_pulumi(lambda: PostgresStatefulSet("p" * 44, pg()))
    with pytest.raises(ValueError, match=r"primary_pod: got 'pg-1'; expected None while replication is False"):
        pg(replicas=2, replication=False, primary_pod="pg-1")
    with pytest.raises(ValueError, match=r"accept_wal_loss_up_to: got '0/30001a8'; expected None or a WAL position X/Y in upper-case hex"):
        pg(replicas=2, accept_wal_loss_up_to="0/30001a8")


def _args_classes() -> list[tuple[str, ast.ClassDef]]:
    found = []
    for path in sorted(COMPONENTS.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and (node.name.endswith("Args") or node.name in {"NamedPort", "Schedule", "DumpS3"}):
                found.append((path.name, node))
    return found


def undocumented_fields(cls: ast.ClassDef) -> list[str]:
    """Dataclass fields not followed by a docstring."""
    body = cls.body
    return [
        node.target.id
        for node, after in zip(body, [*body[1:], None], strict=True)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        if not (isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str))
    ]


def test_every_args_field_is_documented() -> None:
    classes = _args_classes()
    assert {c.name for _, c in classes} >= {
        "PostgresStatefulSetArgs",
        "HeadlessServiceArgs",
        "LonghornInstallArgs",
        "LonghornStorageClassArgs",
        "LonghornRecurringJobsArgs",
        "LogicalBackupArgs",
    }
    missing = {f"{path}:{cls.name}": undocumented_fields(cls) for path, cls in classes if undocumented_fields(cls)}
    assert missing == {}
    # The check finds a field without a docstring.
    (probe,) = ast.parse("class XArgs:\n    a: int\n    '''doc'''\n    b: int\n").body
    assert isinstance(probe, ast.ClassDef) and undocumented_fields(probe) == ["b"]


def test_dump_s3_port_and_remote_are_checked() -> None:
    credentials = pulumi.Output.from_input({"provider": "Minio"})
    with pytest.raises(ValueError, match=re.escape("DumpS3.endpoint_port: got 0; expected an integer from 1 to 65535")):
        DumpS3(remote="b/p", credentials=credentials, endpoint_port=0)
    # Drift: config refused a scheme (rclone would read s3: as a remote name), the component took it.
    with pytest.raises(ValueError, match=re.escape("DumpS3.remote: got 's3://bucket'; expected an rclone bucket/prefix without a scheme")):
        DumpS3(remote="s3://bucket", credentials=credentials)
