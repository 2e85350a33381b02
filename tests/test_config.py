"""Config schema: defaults documented in Pulumi.yaml, stack files valid, bad input rejected early."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from stacks.config import CONFIG_KEYS, PROJECT, ConfigError, Settings, parse_settings
from stacks.render import PROJECT_FILE, Run, project_defaults, run_program, stack_config
from tests.conftest import STACKS


def test_pulumi_yaml_declares_every_key_with_the_schema_defaults() -> None:
    declared = yaml.safe_load(PROJECT_FILE.read_text())["config"]
    assert sorted(k.split(":", 1)[1] for k in declared) == sorted(CONFIG_KEYS)
    defaults = Settings().model_dump(mode="json")
    for key, value in project_defaults().items():
        assert value == defaults[key.split(":", 1)[1]], f"Pulumi.yaml default for {key} drifted from stacks/config.py"


def test_pulumi_yaml_uses_python_runtime_with_virtualenv() -> None:
    project = yaml.safe_load(PROJECT_FILE.read_text())
    assert project["name"] == PROJECT
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_validate(stack: str) -> None:
    raw = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items()}
    settings = parse_settings(raw)
    assert settings.postgres.replicas >= 1


def test_dev_and_prod_sizes() -> None:
    dev = parse_settings({k.split(":", 1)[1]: v for k, v in stack_config("dev").items()})
    prod = parse_settings({k.split(":", 1)[1]: v for k, v in stack_config("prod").items()})
    assert (dev.postgres.replicas, dev.storage.numberOfReplicas, dev.postgres.storageSize) == (1, 1, "1Gi")
    assert (prod.postgres.replicas, prod.storage.numberOfReplicas) == (3, 3)
    assert prod.postgres.storageSize != dev.postgres.storageSize


# (top-level key, value, key path named in the error, value named, words of the accepted form)
BAD: list[tuple[str, Any, str, str, str]] = [
    ("postgres", {"replicas": 0}, "postgres.replicas", "0", "greater than or equal to 1"),
    ("postgres", {"replicas": -2}, "postgres.replicas", "-2", "greater than or equal to 1"),
    ("postgres", {"replicas": "3"}, "postgres.replicas", '"3"', "valid integer"),
    ("postgres", {"storageSize": "1GB"}, "postgres.storageSize", '"1GB"', "Kubernetes quantity"),
    ("postgres", {"storageSize": "-1Gi"}, "postgres.storageSize", '"-1Gi"', "at least 100Mi"),
    ("postgres", {"name": "Postgres_DB"}, "postgres.name", '"Postgres_DB"', "DNS-1123 label"),
    ("postgres", {"name": "p" * 41}, "postgres.name", "p" * 41, "at most 40 characters"),
    ("namespace", "Bad.Namespace", "namespace", '"Bad.Namespace"', "DNS-1123 label"),
    ("storage", {"className": "UPPER"}, "storage.className", '"UPPER"', "DNS-1123 subdomain"),
    (
        "postgres",
        {"resources": {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
        "postgres.resources.limits.cpu",
        '"1"',
        "at least requests.cpu (2)",
    ),
    (
        "postgres",
        {"resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
        "postgres.resources.limits.memory",
        '"1Gi"',
        "at least requests.memory (2Gi)",
    ),
    ("postgres", {"replicass": 2}, "postgres.replicass", "2", "unknown key"),
    ("postgres", {"image": {"tga": "18"}}, "postgres.image.tga", '"18"', "unknown key"),
    ("namespace", "longhorn-system", "namespace", '"longhorn-system"', "other than longhorn.namespace (longhorn-system)"),
    ("namespace", "kube-system", "namespace", '"kube-system"', "not one of default, kube-system"),
    ("namespace", "default", "namespace", '"default"', "a namespace of its own"),
    ("protect", "yes", "protect", '"yes"', "valid boolean"),
    ("backup", {"snapshots": {"schedule": "0 3 * *", "retain": 3}}, "backup.snapshots.schedule", '"0 3 * *"', "five-field cron"),
    ("backup", {"snapshots": {"schedule": "0 0 3 * * *", "retain": 3}}, "backup.snapshots.schedule", '"0 0 3 * * *"', "five-field"),
    ("backup", {"volumeBackups": {"schedule": "@daily", "retain": 0}}, "backup.volumeBackups.retain", "0", "greater than or equal to 1"),
    ("backup", {"dumps": {"keep": 0, "keepDays": 0}}, "backup.dumps.keep", "0", "at least 1 in keep or keepDays"),
    ("backup", {"dumps": {"storageSize": "5GB"}}, "backup.dumps.storageSize", '"5GB"', "Kubernetes quantity"),
    ("backup", {"dumps": {"s3Remote": "s3://bucket"}}, "backup.dumps.s3Remote", '"s3://bucket"', "a string matching"),
    ("longhorn", {"deleteAllVolumesOnUninstall": "true"}, "longhorn.deleteAllVolumesOnUninstall", '"true"', "valid boolean"),
    ("postgres", {"image": {"tag": "14.5"}}, "postgres.image.tag", '"14.5"', "16, 17, 18"),
    ("postgres", {"image": {"tag": "latest"}}, "postgres.image.tag", '"latest"', "16, 17, 18"),
    ("postgres", {"image": {"digest": "sha256:xyz"}}, "postgres.image.digest", '"sha256:xyz"', "64 lowercase hex"),
    ("postgres", {"service": {"type": "Ingress"}}, "postgres.service.type", '"Ingress"', "'NodePort'"),
    ("postgres", {"service": {"nodePort": 30001}}, "postgres.service.nodePort", "30001", "unless type is NodePort"),
    ("postgres", {"database": "My-DB"}, "postgres.database", '"My-DB"', "PostgreSQL identifier"),
    ("postgres", {"replication": {"enabled": "yes"}}, "postgres.replication.enabled", '"yes"', "valid boolean"),
    ("postgres", 3, "postgres", "3", "an object"),
    ("longhorn", {"nodeDownPodDeletionPolicy": "delete"}, "longhorn.nodeDownPodDeletionPolicy", '"delete"', "do-nothing"),
    ("storage", {"reclaimPolicy": "Recycle"}, "storage.reclaimPolicy", '"Recycle"', "'Retain'"),
    ("postgres", {"username": "postgres"}, "postgres.username", '"postgres"', "other than postgres"),
    ("postgres", {"username": "pg_app"}, "postgres.username", '"pg_app"', "not starting with pg_"),
    ("postgres", {"username": "replicator"}, "postgres.username", '"replicator"', "different from replication.user"),
    (
        "postgres",
        {"replicas": 3, "replication": {"primary": "postgres-standby-5"}},
        "postgres.replication.primary",
        '"postgres-standby-5"',
        "postgres-0, postgres-standby-1, postgres-standby-2",
    ),
]


@pytest.mark.parametrize(("key", "value", "path", "shown", "accepted"), BAD, ids=[f"{b[2]}={b[3]}" for b in BAD])
def test_bad_input_fails_before_any_resource(key: str, value: Any, path: str, shown: str, accepted: str) -> None:
    config = stack_config("dev")
    config[f"{PROJECT}:{key}"] = value if not isinstance(value, dict) else {**(config.get(f"{PROJECT}:{key}") or {}), **value}
    run = Run()
    with pytest.raises(ConfigError) as err:
        run_program(config, run=run)
    message = str(err.value)
    assert f"{PROJECT}:{path}" in message
    assert shown in message
    assert accepted in message
    assert "Traceback" not in message
    assert run.resources == [], "nothing may be registered when config is invalid"


def test_unknown_top_level_key_is_rejected() -> None:
    config = stack_config("dev") | {f"{PROJECT}:postgress": {"replicas": 2}}
    run = Run()
    with pytest.raises(ConfigError, match=r"pgstack:postgress: unknown key; expected one of"):
        run_program(config, run=run)
    assert run.resources == []


def test_existing_storage_class_path_is_valid() -> None:
    settings = parse_settings({"longhorn": {"install": False}, "storage": {"existingClass": "csi-disk"}})
    assert settings.storage_class == "csi-disk"
    with pytest.raises(ConfigError, match=r"unset while longhorn\.install is true"):
        parse_settings({"storage": {"existingClass": "standard"}})
    with pytest.raises(ConfigError, match=r"backup\.snapshots: got \"an object\"; expected null with storage\.existingClass"):
        parse_settings(
            {
                "longhorn": {"install": False},
                "storage": {"existingClass": "csi-disk"},
                "backup": {"snapshots": {"schedule": "@hourly", "retain": 3}},
            }
        )
    # Longhorn installed by another stack: this stack still creates its own tuned class.
    shared = parse_settings({"longhorn": {"install": False}, "storage": {"className": "longhorn-postgres-staging"}})
    assert shared.storage_class == "longhorn-postgres-staging"
