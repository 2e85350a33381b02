"""The whole program under postgres.engine cloudnative-pg: the tests' fixed dev and prod with the engine switched
(a config variant, not a stack file: tests/conftest.py program_run caches each run once per worker)."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest

from components.cnpg_operator_args import CNPG_CHART_VERSION
from components.logical_backup_args import backup_labels
from components.postgres_cluster_args import CNPG_API
from stacks.config import ConfigError, parse_settings
from tests.conftest import STS, fixed_config, program_run
from tests.tools.test_render import crd_schemas
from tools.mock_run import Run, plain

CLUSTER = f"kubernetes:{CNPG_API}:Cluster"
RELEASE = "kubernetes:helm.sh/v3:Release"
STACKS = ("dev", "prod")
OUTPUTS = {"namespace", "storageClass", "host", "readOnlyHost", "port", "database", "user", "secretName", "connectionUri"}


def cnpg_config(stack: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A fixed configuration with postgres.engine cloudnative-pg, and extra top-level keys merged one level deep."""
    config = fixed_config(stack)
    config["pgstack:postgres"] = {**config.get("pgstack:postgres", {}), "engine": "cloudnative-pg"}
    for key, value in (extra or {}).items():
        full = f"pgstack:{key}"
        config[full] = {**config.get(full, {}), **value} if isinstance(value, dict) else value
    return config


def cnpg_run(stack: str, extra: dict[str, Any] | None = None) -> Run:
    return program_run(cnpg_config(stack, extra), stack)


def cluster_of(run: Run) -> dict[str, Any]:
    (cluster,) = run.of_type(CLUSTER)
    return dict(plain(cluster.inputs))


# Ids that name no stack file: these run the tests' fixed configurations, not Pulumi.<stack>.yaml (a new stack
# file gets no copy of them: tests/stacks/test_new_stacks.py).
@pytest.fixture(params=STACKS, ids=[f"fixed_{s}" for s in STACKS])
def cnpg_stack_run(request: pytest.FixtureRequest) -> tuple[str, Run]:
    return request.param, cnpg_run(request.param)


def test_no_statefulset_one_cluster_protected_and_retained(cnpg_stack_run: tuple[str, Run]) -> None:
    stack, run = cnpg_stack_run
    assert run.of_type(STS) == []
    (cluster,) = run.of_type(CLUSTER)
    protect = stack != "dev"  # the fixed dev says protect: false
    assert cluster.options.retain_on_delete is True
    assert cluster.options.protect is protect
    # The operator's release is pinned, awaited and retained.
    release = run.one(RELEASE, "cnpg-release")
    inputs = plain(release.inputs)
    assert (inputs["chart"], inputs["version"]) == ("cloudnative-pg", CNPG_CHART_VERSION)
    assert inputs["repositoryOpts"]["repo"] == "https://cloudnative-pg.github.io/charts"
    assert inputs["skipAwait"] is False
    assert release.options.retain_on_delete is True
    # The Cluster waits for the operator (its CRDs and webhook) and for the StorageClass.
    component = run.one("pgstack:index:CnpgOperator", "cnpg")
    assert component.urn in cluster.dependencies or release.urn in cluster.dependencies
    assert run.one("kubernetes:storage.k8s.io/v1:StorageClass", "longhorn-sc").urn in cluster.dependencies


def test_the_same_outputs_as_the_statefulset_engine(cnpg_stack_run: tuple[str, Run]) -> None:
    stack, run = cnpg_stack_run
    sts = program_run(fixed_config(stack), stack)
    assert set(run.outputs) >= OUTPUTS
    assert set(run.outputs) - OUTPUTS == set()
    assert set(sts.outputs) - set(run.outputs) == {"headlessService"}
    namespace = sts.outputs["namespace"]
    assert run.outputs["host"] == f"postgres-rw.{namespace}.svc.cluster.local"
    instances = cluster_of(run)["spec"]["instances"]
    assert run.outputs["readOnlyHost"] == (f"postgres-ro.{namespace}.svc.cluster.local" if instances > 1 else None)
    for key in ("port", "database", "user", "secretName", "namespace", "storageClass"):
        assert run.outputs[key] == sts.outputs[key], key
    assert "connectionUri" in run.secret_outputs
    assert run.outputs["connectionUri"].startswith("postgresql://app:")
    assert run.outputs["connectionUri"].endswith(f"@postgres-rw.{namespace}.svc.cluster.local:5432/app")


def test_no_password_outside_secrets(cnpg_stack_run: tuple[str, Run]) -> None:
    _, run = cnpg_stack_run
    assert run.generated
    for r in run.resources:
        if r.type == "kubernetes:core/v1:Secret":
            continue
        text = repr(plain(r.inputs))
        for password in run.generated:
            assert password not in text, r.name


def test_dumps_read_the_cluster_services_with_the_operator_ca() -> None:
    run = cnpg_run("prod")
    (cron,) = run.of_type("kubernetes:batch/v1:CronJob")
    pod = plain(cron.inputs)["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for c in pod.get("initContainers", []) + pod["containers"] for e in c.get("env", [])}
    assert env["BACKUP_HOSTS"] == "postgres-ro.postgres-prod.svc.cluster.local postgres-rw.postgres-prod.svc.cluster.local"
    assert env["PGSSLMODE"] == "verify-full"
    tls = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == "postgres-ca"
    assert tls["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    # The Cluster's NetworkPolicy admits the dump job.
    policy = plain(run.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "postgres-netpol").inputs)["spec"]
    peers = [p for rule in policy["ingress"] for p in rule["from"]]
    assert {"podSelector": {"matchLabels": backup_labels("postgres")}} in peers


def test_monitoring_is_a_pod_monitor_on_the_operator_exporter() -> None:
    run = cnpg_run("dev", {"metrics": {"enabled": True, "podMonitor": True, "prometheusRule": True}})
    (monitor,) = run.of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")
    spec = plain(monitor.inputs)["spec"]
    assert spec["selector"] == {"matchLabels": {"cnpg.io/cluster": "postgres"}}
    assert spec["podMetricsEndpoints"][0]["port"] == "metrics"
    # pgstack's rules read postgres_exporter's metrics: none on this engine.
    assert run.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule") == []
    assert "monitoring" not in cluster_of(run)["spec"]


def test_operator_not_installed_when_the_cluster_has_one() -> None:
    run = cnpg_run("dev", {"cnpg": {"install": False}})
    assert run.of_type(RELEASE) == [r for r in run.of_type(RELEASE) if plain(r.inputs)["chart"] == "longhorn"]
    assert len(run.of_type(CLUSTER)) == 1


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"postgres": {"service": {"port": 5433}}}, "postgres.service.port"),
        ({"postgres": {"service": {"type": "LoadBalancer"}}}, "postgres.service.type"),
        ({"postgres": {"replication": {"primary": "postgres-standby-1"}, "replicas": 2}}, "postgres.replication.primary"),
        ({"holdDatabase": True}, "holdDatabase"),
        ({"postgres": {"username": None}}, "postgres.username"),
        ({"namespace": "cnpg-system"}, "namespace"),
        ({"postgres": {"name": "a" * 51}}, "postgres.name"),
    ],
)
def test_what_a_cluster_cannot_do_is_refused_under_its_key(overrides: dict[str, Any], key: str) -> None:
    raw = copy.deepcopy(overrides)
    raw.setdefault("postgres", {})["engine"] = "cloudnative-pg"
    with pytest.raises(ConfigError, match=rf"pgstack:{key}: got"):
        parse_settings(raw, "dev")


def test_wal_archiving_goes_through_the_barman_cloud_plugin() -> None:
    # backup.wal under this engine: the plugin archives to the same bucket with the same S3 account as the
    # StatefulSet engine would (pgstack:dumpS3), whose keys live only in a protected Secret.
    from tests.components.wal_runs import WAL_S3

    config = cnpg_config("prod", {"backup": {"wal": {"s3Remote": "backups/orders-wal"}}}) | {"pgstack:dumpS3": WAL_S3}
    run = program_run(config, "prod", ["pgstack:dumpS3"])
    name = parse_settings({}).postgres.name
    plugins = cluster_of(run)["spec"]["plugins"]
    assert plugins == [{"name": "barman-cloud.cloudnative-pg.io", "isWALArchiver": True, "parameters": {"barmanObjectName": f"{name}-wal"}}]
    (store,) = run.of_type("kubernetes:barmancloud.cnpg.io/v1:ObjectStore")
    configuration = plain(store.inputs["spec"])["configuration"]
    assert configuration["destinationPath"] == "s3://backups/orders-wal"
    assert configuration["endpointURL"] == WAL_S3["endpoint"]
    assert configuration["s3Credentials"]["accessKeyId"] == {"name": f"{name}-wal-s3", "key": "access_key_id"}
    (secret,) = [s for s in run.of_type(STS.replace("apps/v1:StatefulSet", "core/v1:Secret")) if s.name == f"{name}-wal-s3"]
    assert secret.options.protect
    assert WAL_S3["secretAccessKey"] not in json.dumps(plain(store.inputs)) + json.dumps(cluster_of(run))
    # Base backups on the archive's schedule (@daily by default), through the plugin; valid against the 1.30.0 CRD.
    (scheduled,) = run.of_type(f"kubernetes:{CNPG_API}:ScheduledBackup")
    obj = plain(scheduled.inputs)
    assert obj["spec"]["cluster"] == {"name": name} and obj["spec"]["schedule"] == "@daily" and obj["spec"]["method"] == "plugin"
    schema = crd_schemas()[(CNPG_API, "ScheduledBackup")]
    jsonschema.validators.validator_for(schema)(schema).validate(obj)
    # Without the account nothing archives (the config warns, as for the StatefulSet engine).
    bare = program_run(cnpg_config("prod", {"backup": {"wal": {"s3Remote": "backups/orders-wal"}}}), "prod")
    assert "plugins" not in cluster_of(bare)["spec"] or cluster_of(bare)["spec"]["plugins"] == []
    # A restore from an archive is the operator's bootstrap.recovery, not rendered yet: refused under its key.
    wal = {"s3Remote": "b/p", "restoreFrom": {"s3Remote": "b/q", "latest": True}}
    with pytest.raises(ConfigError, match=r"pgstack:backup\.wal\.restoreFrom: .*bootstrap\.recovery"):
        parse_settings({"postgres": {"engine": "cloudnative-pg"}, "backup": {"wal": wal}})
