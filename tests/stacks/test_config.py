"""Config schema: defaults documented in Pulumi.yaml, stack files valid, bad input rejected early."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pulumi
import pytest
import yaml

from stacks.config import CONFIG_KEYS, PROJECT, SECRET_FORMS, ConfigError, Settings, parse_secrets, parse_settings
from tests.conftest import STACKS, fixed_settings, settings_of, stack_file_problem
from tools.mock_run import Run, run_program
from tools.stack_files import PROJECT_FILE, project_defaults, stack_config


def test_pulumi_yaml_declares_every_key_with_the_schema_defaults() -> None:
    declared = yaml.safe_load(PROJECT_FILE.read_text())["config"]
    ours = [k for k in declared if k.startswith(f"{PROJECT}:")]
    assert sorted(k.split(":", 1)[1] for k in ours) == sorted(CONFIG_KEYS)
    defaults = Settings().model_dump(mode="json")
    for key, value in project_defaults().items():
        if key.startswith(f"{PROJECT}:"):
            assert value == defaults[key.split(":", 1)[1]], f"Pulumi.yaml default for {key} drifted from stacks/config/"


def test_pulumi_yaml_makes_secret_and_configmap_content_mutable() -> None:
    """Project config for the kubernetes provider: a value only (no type, no default), as
    sdk/go/common/workspace/project.go requires of another namespace's key; every stack gets it."""
    declared = yaml.safe_load(PROJECT_FILE.read_text())["config"]
    others = {k: v for k, v in declared.items() if not k.startswith(f"{PROJECT}:")}
    assert others == {"kubernetes:enableSecretMutable": {"value": True}, "kubernetes:enableConfigMapMutable": {"value": True}}
    for stack in (s for s in STACKS if stack_file_problem(s) is None):  # a refused file fails once on its own
        config = stack_config(stack)
        assert config["kubernetes:enableSecretMutable"] is True and config["kubernetes:enableConfigMapMutable"] is True


def test_pulumi_yaml_uses_python_runtime_with_virtualenv() -> None:
    project = yaml.safe_load(PROJECT_FILE.read_text())
    assert project["name"] == PROJECT
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_validate(stack: str) -> None:
    settings = settings_of(stack)  # the settings keys only: the secret keys are load_secrets'
    assert settings.postgres.replicas >= 1


def test_dev_and_prod_sizes() -> None:
    # The tests' own dev and prod (tests/conftest.py fixed_config): a user may resize theirs.
    dev, prod = fixed_settings("dev"), fixed_settings("prod")
    assert (dev.postgres.replicas, dev.storage.numberOfReplicas, dev.postgres.storageSize) == (1, 1, "4Gi")
    assert (prod.postgres.replicas, prod.storage.numberOfReplicas) == (3, 3)
    assert prod.postgres.storageSize != dev.postgres.storageSize


# The 18.6 image the stacks pin, and 17.11's linux/amd64 image (docker-library/repo-info, stacks/config/majors.py KNOWN_DIGESTS).
DIGEST_18 = "sha256:86c951e05bf56c93d95d397747fb8820ac76cc3bedb78f43abd83eedbe3666ae"
DIGEST_17_AMD64 = "sha256:e31e3d5327d1806f6177827c9710643e4f35f7ab3f14d26d05332753d3e95ee0"

# (top-level key, value, key path named in the error, value named, words of the accepted form). The value is merged
# into the dev stack's object for that key; key "*" takes a mapping of several top-level keys at once.
BAD: list[tuple[str, Any, str, str, str]] = [
    ("postgres", {"replicas": 0}, "postgres.replicas", "0", "greater than or equal to 1"),
    ("postgres", {"replicas": -2}, "postgres.replicas", "-2", "greater than or equal to 1"),
    ("postgres", {"replicas": "3"}, "postgres.replicas", '"3"', "whole number without quotes (YAML reads quoted text as text), such as 3"),
    ("postgres", {"replicas": "0"}, "postgres.replicas", '"0"', "without quotes"),  # 0 is refused too: no suggestion
    ("postgres", {"passwordRotation": "2"}, "postgres.passwordRotation", '"2"', "such as 2"),
    # a key in the wrong case or misspelt: the key meant
    ("postgres", {"Replicas": 2}, "postgres.Replicas", "2", "did you mean postgres.replicas? (keys are case-sensitive)"),
    ("postgres", {"image": {"Tag": "18.6"}}, "postgres.image.Tag", '"18.6"', "did you mean postgres.image.tag?"),
    (
        "postgres",
        {"networkPolicy": {"allowFrom": [{"podLabel": {"app": "web"}}]}},
        "postgres.networkPolicy.allowFrom.0.podLabel",
        "an object",
        "podLabels?",
    ),
    ("storage", {"classname": "x"}, "storage.classname", '"x"', "did you mean storage.className?"),
    ("longhorn", {"chartVersion": "v1.10.1"}, "longhorn.chartVersion", '"v1.10.1"', 'such as "1.10.1"'),
    # what a stack file's unquoted date becomes (Pulumi's YAML keeps it as text: tests/tools/test_stack_files.py)
    ("longhorn", {"chartVersion": "2024-01-01"}, "longhorn.chartVersion", '"2024-01-01"', "MAJOR.MINOR.PATCH"),
    ("postgres", {"image": {"tag": "2025-10-01"}}, "postgres.image.tag", '"2025-10-01"', "one of 15, 16, 17 or 18"),
    # quantities: the API server's grammar, then each field's range
    ("postgres", {"storageSize": "1GB"}, "postgres.storageSize", '"1GB"', "Kubernetes quantity"),
    ("postgres", {"storageSize": "1 Gi"}, "postgres.storageSize", '"1 Gi"', "written without spaces; suffixes are"),
    ("postgres", {"storageSize": "1 Gi"}, "postgres.storageSize", '"1 Gi"', 'such as "1Gi"'),
    # units people write: each message suggests the quantity meant (and the example test feeds it back)
    ("postgres", {"storageSize": "10 GB"}, "postgres.storageSize", '"10 GB"', 'no B or unit words; such as "10G" or "10Gi"'),
    ("postgres", {"storageSize": "10GB"}, "postgres.storageSize", '"10GB"', 'such as "10G" or "10Gi"'),
    ("postgres", {"storageSize": "10 MB"}, "postgres.storageSize", '"10 MB"', 'such as "100Mi"'),  # 10M is below the minimum
    ("postgres", {"resources": {"limits": {"memory": "4 GiB"}}}, "postgres.resources.limits.memory", '"4 GiB"', 'such as "4Gi"'),
    ("postgres", {"resources": {"requests": {"cpu": "2 cores"}}}, "postgres.resources.requests.cpu", '"2 cores"', 'such as "2"'),
    ("postgres", {"resources": {"limits": {"cpu": "500 millicores"}}}, "postgres.resources.limits.cpu", "500 millicores", '"500m"'),
    ("postgres", {"shmSize": "256 mi"}, "postgres.shmSize", '"256 mi"', 'such as "256Mi"'),
    ("postgres", {"storageSize": "-1Gi"}, "postgres.storageSize", '"-1Gi"', "at least 100Mi (104857600 bytes; 100Mi itself is accepted)"),
    ("postgres", {"storageSize": "99Mi"}, "postgres.storageSize", '"99Mi"', "at least 100Mi"),
    ("postgres", {"storageSize": "107374182400m"}, "postgres.storageSize", '"107374182400m"', "whole number of bytes"),
    ("postgres", {"storageSize": "1e40"}, "postgres.storageSize", '"1e40"', "at most 2^63-1"),
    ("postgres", {"storageSize": "9Ei"}, "postgres.storageSize", '"9Ei"', "the API server caps larger ones"),
    ("postgres", {"storageSize": True}, "postgres.storageSize", "true", "as a string or a plain number"),
    ("postgres", {"resources": {"requests": {"cpu": "500 m"}}}, "postgres.resources.requests.cpu", '"500 m"', 'such as "500m"'),
    ("postgres", {"resources": {"requests": {"cpu": "1,5"}}}, "postgres.resources.requests.cpu", '"1,5"', "Kubernetes quantity"),
    ("postgres", {"resources": {"requests": {"cpu": "0"}}}, "postgres.resources.requests.cpu", '"0"', "above zero"),
    ("postgres", {"resources": {"limits": {"memory": "1 Gi"}}}, "postgres.resources.limits.memory", '"1 Gi"', "without spaces"),
    ("postgres", {"resources": {"limits": {"memory": "512m"}}}, "postgres.resources.limits.memory", '"512m"', "0.512 bytes"),
    ("postgres", {"shmSize": "256 Mi"}, "postgres.shmSize", '"256 Mi"', "without spaces"),
    ("postgres", {"shmSize": "64k i"}, "postgres.shmSize", '"64k i"', "Kubernetes quantity"),
    # resources: a request above a limit the stack set itself is just that
    (
        "postgres",
        {"resources": {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}},
        "postgres.resources.limits.cpu",
        '"1"',
        "a limit at least postgres.resources.requests.cpu (2)",
    ),
    (
        "postgres",
        {"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}},
        "postgres.resources.limits.memory",
        '"1Gi"',
        "request is above its limit",
    ),
    ("postgres", {"resources": {"requests": {"cpu": 3}, "limits": {"cpu": 2}}}, "postgres.resources.limits.cpu", '"2"', "requests.cpu (3)"),
    # a pod no node can take: Pending for good, and the primary's rollout stops at it
    (
        "postgres",
        {"largestNode": {"cpu": "2", "memory": "8Gi"}, "resources": {"requests": {"cpu": "4"}, "limits": {"cpu": "4"}}},
        "postgres.resources.requests.cpu",
        '"4"',
        "a request at most largestNode.cpu (2)",
    ),
    (
        "postgres",
        {"largestNode": {"cpu": "8", "memory": "512Mi"}},
        "postgres.resources.requests.memory",
        '"1Gi"',  # the default request
        "never places a pod on a node whose allocatable memory is below its request",
    ),
    # names, for every object they become
    ("postgres", {"name": "Postgres_DB"}, "postgres.name", '"Postgres_DB"', "DNS-1035 label"),
    ("postgres", {"name": "1db"}, "postgres.name", '"1db"', "starting with a letter"),
    (
        "postgres",
        {"name": "p" * 45},
        "postgres.name",
        "p" * 45,
        f"at most 44 characters: it makes the standby StatefulSet {'p' * 45}-standby",
    ),
    ("postgres", {"name": "p" * 64}, "postgres.name", "p" * 64, "controller-revision-hash"),
    ("namespace", "Bad.Namespace", "namespace", '"Bad.Namespace"', "DNS-1123 label"),
    ("storage", {"className": "UPPER"}, "storage.className", '"UPPER"', "DNS-1123 subdomain"),
    (
        "*",
        {"storage": {"className": "c" * 32}, "backup": {"snapshots": {"schedule": "@daily", "retain": 3}}},
        "storage.className",
        "c" * 32,
        'a group name of at most 31 characters, such as "longhorn-postgres": it names the Longhorn recurring job',
    ),
    (
        "*",
        {"storage": {"className": "c" * 34}, "backup": {"volumeBackups": {"schedule": "@daily", "retain": 3}}},
        "storage.className",
        "c" * 34,
        "Longhorn refuses a job name over 40 (longhorn-manager NameMaximumLength)",
    ),
    (
        "*",
        {"storage": {"className": "c"}, "backup": {"snapshots": {"schedule": "@daily", "retain": 3}}},
        "storage.className",
        '"c"',
        "Longhorn refuses a one-character group",
    ),
    (
        "postgres",
        {"replicas": 2, "replication": {"acceptWalLossUpTo": "0/30001a8"}},
        "postgres.replication.acceptWalLossUpTo",
        '"0/30001a8"',
        "a WAL position X/Y in upper-case hex",
    ),
    (
        "postgres",
        {"replicas": 3, "replication": {"primary": "Postgres-0"}},
        "postgres.replication.primary",
        '"Postgres-0"',
        "DNS-1123 label",
    ),
    ("postgres", {"database": "My-DB"}, "postgres.database", '"My-DB"', "PostgreSQL identifier"),
    ("postgres", {"replicass": 2}, "postgres.replicass", "2", "unknown key"),
    ("postgres", {"image": {"tga": "18"}}, "postgres.image.tga", '"18"', "unknown key"),
    # images: the OCI reference grammar, supported majors, the pods' uid
    (
        "postgres",
        {"image": {"repository": "https://docker.io/library/postgres"}},
        "postgres.image.repository",
        "https://",
        "without a URL scheme",
    ),
    ("postgres", {"image": {"repository": "docker.io/library/postgres:18"}}, "postgres.image.repository", "postgres:18", "without a tag"),
    ("postgres", {"image": {"repository": "postgres:18.1"}}, "postgres.image.repository", '"postgres:18.1"', "put the tag in image.tag"),
    (
        "postgres",
        {"image": {"repository": "postgres@sha256:" + "a" * 64}},
        "postgres.image.repository",
        "postgres@sha256",
        "without a digest",
    ),
    ("postgres", {"image": {"repository": "docker.io/Library/Postgres"}}, "postgres.image.repository", "Library", "must be lowercase"),
    ("postgres", {"image": {"repository": "docker.io/library//postgres"}}, "postgres.image.repository", "//", "OCI reference grammar"),
    ("postgres", {"image": {"repository": "a/" + "b" * 256}}, "postgres.image.repository", "bbbb", "at most 255 characters"),
    ("postgres", {"image": {"tag": 18.1}}, "postgres.image.tag", "18.1", "a quoted string: YAML reads 18.1 as a number"),
    ("postgres", {"image": {"tag": "18 .1"}}, "postgres.image.tag", '"18 .1"', "an image tag"),
    ("postgres", {"image": {"tag": "-18"}}, "postgres.image.tag", '"-18"', "not starting with '.' or '-'"),
    ("postgres", {"image": {"tag": "14.5"}}, "postgres.image.tag", '"14.5"', "PostgreSQL 14 reached end of life on 2026-11-12"),
    ("postgres", {"image": {"tag": "14.5"}}, "postgres.image.tag", '"14.5"', "dump and restore into a stack at 15 or newer"),
    ("postgres", {"image": {"tag": "13"}}, "postgres.image.tag", '"13"', "2025-11-13"),
    ("postgres", {"image": {"tag": "12.22-bookworm"}}, "postgres.image.tag", '"12.22-bookworm"', "2024-11-21"),
    ("postgres", {"image": {"tag": "9.6.24"}}, "postgres.image.tag", '"9.6.24"', "9.6 (the last 9.x) reached end of life on 2021-11-11"),
    ("postgres", {"image": {"tag": "latest"}}, "postgres.image.tag", '"latest"', "one of 15, 16, 17 or 18"),
    ("postgres", {"image": {"tag": "19"}}, "postgres.image.tag", '"19"', "one of 15, 16, 17 or 18"),
    ("postgres", {"image": {"tag": "18.1-alpine"}}, "postgres.image.tag", '"18.1-alpine"', "uid 70, and these pods run as uid 999"),
    ("postgres", {"image": {"tag": "16-alpine3.22"}}, "postgres.image.tag", '"16-alpine3.22"', "Debian-based tag"),
    ("postgres", {"image": {"digest": "sha256:xyz"}}, "postgres.image.digest", '"sha256:xyz"', "64 lowercase hex"),
    # a digest the table knows (stacks/config/majors.py KNOWN_DIGESTS) runs its own version, whatever the tag says
    ("postgres", {"image": {"tag": "17.6", "digest": DIGEST_18}}, "postgres.image.tag", '"17.6"', f"{DIGEST_18} is postgres:18.6"),
    ("postgres", {"image": {"tag": "18.5", "digest": DIGEST_18}}, "postgres.image.tag", '"18.5"', 'such as "18.6" or "18"'),
    ("postgres", {"image": {"tag": "18", "digest": DIGEST_17_AMD64}}, "postgres.image.tag", '"18"', 'such as "17.11" or "17"'),
    # network policy peers: CIDRs with ipaddress, labels with the Kubernetes rules
    (
        "postgres",
        {"networkPolicy": {"allowFrom": [{"cidr": "10.0.0.0/33"}]}},
        "postgres.networkPolicy.allowFrom.0.cidr",
        "/33",
        "CIDR form",
    ),
    (
        "postgres",
        {"networkPolicy": {"allowFrom": [{"cidr": "10.0.256.0/24"}]}},
        "postgres.networkPolicy.allowFrom.0.cidr",
        "256",
        "octets 0-255",
    ),
    (
        "postgres",
        {"networkPolicy": {"allowFrom": [{"cidr": "10.1.2.3/8"}]}},
        "postgres.networkPolicy.allowFrom.0.cidr",
        "10.1.2.3/8",
        "host bits set",
    ),
    (
        "postgres",
        {"networkPolicy": {"allowFrom": [{"cidr": "fd00::1/8"}]}},
        "postgres.networkPolicy.allowFrom.0.cidr",
        "fd00::1/8",
        '"fd00::/8"',
    ),
    (
        "postgres",
        {"networkPolicy": {"allowFrom": [{"cidr": "10.0.0.0"}]}},
        "postgres.networkPolicy.allowFrom.0.cidr",
        '"10.0.0.0"',
        "prefix length",
    ),
    (
        "postgres",
        {"networkPolicy": {"allowFrom": [{"podLabels": {"app": "my api"}}]}},
        "postgres.networkPolicy.allowFrom.0.podLabels.app",
        '"my api"',
        "pod label value",
    ),
    (
        "postgres",
        {"networkPolicy": {"allowFrom": [{"podLabels": {"app": "a" * 64}}]}},
        "postgres.networkPolicy.allowFrom.0.podLabels.app",
        "a" * 64,
        "at most 63",
    ),
    (
        "postgres",
        {"networkPolicy": {"allowFrom": [{"podLabels": {"my app": "api"}}]}},
        "postgres.networkPolicy.allowFrom.0.podLabels",
        '"my app"',
        "pod label key",
    ),
    (
        "postgres",
        {"networkPolicy": {"allowFrom": [{"namespaceLabels": {"Example.COM/team": "payments"}}]}},
        "postgres.networkPolicy.allowFrom.0.namespaceLabels",
        '"Example.COM/team"',
        "DNS-1123 subdomain prefix",
    ),
    (
        "postgres",
        {"networkPolicy": {"allowFrom": [{"namespaceLabels": {"team": "pay ments"}}]}},
        "postgres.networkPolicy.allowFrom.0.namespaceLabels.team",
        '"pay ments"',
        "namespace label value",
    ),
    # namespaces
    ("namespace", "longhorn-system", "namespace", '"longhorn-system"', "other than longhorn.namespace (longhorn-system)"),
    ("namespace", "kube-system", "namespace", '"kube-system"', "not one of default, kube-system"),
    ("namespace", "default", "namespace", '"default"', "a namespace of its own"),
    # Longhorn: what its webhook refuses, and settings an existing class never reads
    (
        "storage",
        {"dataLocality": "strict-local", "numberOfReplicas": 3},
        "storage.dataLocality",
        '"strict-local"',
        "refuses it with more than one",
    ),
    ("storage", {"dataLocality": "strict-local", "numberOfReplicas": 2}, "storage.dataLocality", '"strict-local"', "numberOfReplicas 2"),
    (
        "longhorn",
        {"defaultDataLocality": "strict-local", "defaultReplicaCount": 2},
        "longhorn.defaultDataLocality",
        "strict-local",
        "more than one",
    ),
    (
        "*",
        {"longhorn": {"install": False}, "storage": {"existingClass": "csi-disk", "numberOfReplicas": 2, "dataLocality": "disabled"}},
        "storage.numberOfReplicas",
        "2",
        "unset with storage.existingClass (csi-disk): storage.numberOfReplicas and storage.dataLocality configure",
    ),
    (
        "*",
        {"longhorn": {"install": False}, "storage": {"existingClass": "csi-disk", "className": "mine", "reclaimPolicy": "Delete"}},
        "storage.className",
        '"mine"',
        "storage.className, storage.numberOfReplicas and storage.reclaimPolicy configure",
    ),
    ("storage", {"existingClass": "standard"}, "storage.existingClass", '"standard"', "unset while longhorn.install is true"),
    ("storage", {"reclaimPolicy": "Recycle"}, "storage.reclaimPolicy", '"Recycle"', "'Retain'"),
    ("protect", "yes", "protect", '"yes"', "true or false without quotes (YAML reads quoted text as text)"),
    (
        "postgres",
        {"networkPolicy": {"dns": {"cidrs": ["169.254.20.10/32"], "any": True}}},
        "postgres.networkPolicy.dns.any",
        "true",
        "any allows every address",
    ),
    (
        "postgres",
        {"networkPolicy": {"dns": {"any": True, "podLabels": {"a": "b"}}}},
        "postgres.networkPolicy.dns.any",
        "true",
        "any allows every address",
    ),
    ("postgres", {"networkPolicy": {"dns": {"cidrs": ["10.0.0.10/33"]}}}, "postgres.networkPolicy.dns.cidrs.0", "10.0.0.10/33", "prefix"),
    ("backup", {"snapshots": {"schedule": "0 3 * *", "retain": 3}}, "backup.snapshots.schedule", '"0 3 * *"', "five-field cron"),
    ("backup", {"snapshots": {"schedule": "0 0 3 * * *", "retain": 3}}, "backup.snapshots.schedule", '"0 0 3 * * *"', "five-field"),
    # croniter accepts these; robfig/cron (Longhorn's v1, Kubernetes' v3) and the API server refuse them
    ("backup", {"snapshots": {"schedule": "0 3 L * *", "retain": 3}}, "backup.snapshots.schedule", '"0 3 L * *"', "not a number"),
    ("backup", {"volumeBackups": {"schedule": "0 3 * * 1#2", "retain": 3}}, "backup.volumeBackups.schedule", "1#2", "No L, W, #"),
    ("backup", {"snapshots": {"schedule": "0 3 * * 7", "retain": 3}}, "backup.snapshots.schedule", '"0 3 * * 7"', "leaves 0-6"),
    ("backup", {"dumps": {"schedule": "0 3 * * 5L"}}, "backup.dumps.schedule", '"0 3 * * 5L"', "day of week"),
    ("backup", {"dumps": {"schedule": "0 3 15W * *"}}, "backup.dumps.schedule", '"0 3 15W * *"', "day of month"),
    ("backup", {"dumps": {"schedule": "H 3 * * *"}}, "backup.dumps.schedule", '"H 3 * * *"', "minute field"),
    ("backup", {"dumps": {"schedule": "CRON_TZ=UTC 0 3 * * *"}}, "backup.dumps.schedule", "CRON_TZ=UTC", "Kubernetes refuses it"),
    ("backup", {"snapshots": {"schedule": "TZ=UTC 0 3 * * *", "retain": 3}}, "backup.snapshots.schedule", "TZ=UTC", "no TZ="),
    ("backup", {"dumps": {"schedule": "@every 6h"}}, "backup.dumps.schedule", '"@every 6h"', "use a five-field schedule"),
    ("backup", {"dumps": {"schedule": "@reboot"}}, "backup.dumps.schedule", '"@reboot"', "is not one of @yearly"),
    ("backup", {"dumps": {"schedule": "0 3 * * mon-fry"}}, "backup.dumps.schedule", "mon-fry", "not a number or a name"),
    ("backup", {"dumps": {"schedule": "*/0 3 * * *"}}, "backup.dumps.schedule", "*/0", "step 0"),
    ("backup", {"dumps": {"schedule": "30-10 3 * * *"}}, "backup.dumps.schedule", "30-10", "starts after it ends"),
    ("backup", {"dumps": {"schedule": ", 3 * * *"}}, "backup.dumps.schedule", '", 3 * * *"', "would never run"),
    ("backup", {"volumeBackups": {"schedule": "@daily", "retain": 0}}, "backup.volumeBackups.retain", "0", "greater than or equal to 1"),
    ("backup", {"dumps": {"keep": 0, "keepDays": 0}}, "backup.dumps.keep", "0", "backup.dumps.keep or backup.dumps.keepDays, such as 7"),
    ("backup", {"dumps": {"storageSize": "5GB"}}, "backup.dumps.storageSize", '"5GB"', "Kubernetes quantity"),
    ("backup", {"dumps": {"storageSize": "5 Gi"}}, "backup.dumps.storageSize", '"5 Gi"', "without spaces"),
    ("backup", {"dumps": {"s3Remote": "s3://bucket"}}, "backup.dumps.s3Remote", '"s3://bucket"', "bucket/prefix without a scheme"),
    ("longhorn", {"deleteAllVolumesOnUninstall": "true"}, "longhorn.deleteAllVolumesOnUninstall", '"true"', "quotes"),
    ("postgres", {"service": {"type": "Ingress"}}, "postgres.service.type", '"Ingress"', "'NodePort'"),
    ("postgres", {"service": {"nodePort": 30001}}, "postgres.service.nodePort", "30001", "null unless postgres.service.type is 'NodePort'"),
    ("postgres", {"replication": {"enabled": "yes"}}, "postgres.replication.enabled", '"yes"', "true or false"),
    ("postgres", 3, "postgres", "3", "an object"),
    ("longhorn", {"nodeDownPodDeletionPolicy": "delete"}, "longhorn.nodeDownPodDeletionPolicy", '"delete"', "do-nothing"),
    ("postgres", {"username": "postgres"}, "postgres.username", '"postgres"', "other than postgres"),
    ("postgres", {"username": "pg_app"}, "postgres.username", '"pg_app"', "not starting with pg_"),
    ("postgres", {"username": "replicator"}, "postgres.username", '"replicator"', "other than postgres.replication.user (replicator)"),
    ("postgres", {"replication": {"user": "pg_replication"}}, "postgres.replication.user", '"pg_replication"', "not starting with pg_"),
    ("postgres", {"replication": {"user": "Replicator"}}, "postgres.replication.user", '"Replicator"', "PostgreSQL identifier"),
    (
        "postgres",
        {"replicas": 3, "replication": {"primary": "postgres-standby-5"}},
        "postgres.replication.primary",
        '"postgres-standby-5"',
        "postgres-0, postgres-standby-1, postgres-standby-2",
    ),
]


def bad_config(key: str, value: Any) -> dict[str, Any]:
    """The dev stack's config with one BAD row's value merged in (as the row's comment says)."""
    config = stack_config("dev")
    overrides = copy.deepcopy(value if key == "*" else {key: value})
    for top, val in overrides.items():
        config[f"{PROJECT}:{top}"] = val if not isinstance(val, dict) else {**(config.get(f"{PROJECT}:{top}") or {}), **val}
    return config


@pytest.mark.parametrize(("key", "value", "path", "shown", "accepted"), BAD, ids=[f"{b[2]}={b[3][:40]}" for b in BAD])
def test_bad_input_fails_before_any_resource(key: str, value: Any, path: str, shown: str, accepted: str) -> None:
    run = Run()
    with pytest.raises(pulumi.RunError) as err:
        run_program(bad_config(key, value), run=run)
    message = str(err.value)
    [line] = [line for line in message.splitlines() if line.strip().startswith(f"{PROJECT}:{path}:")]
    assert shown in line
    assert accepted in line
    assert "Traceback" not in message
    assert run.resources == [], "nothing may be registered when config is invalid"


# ------------------------------------------------------------------ every example a message gives is accepted

# A JSON scalar, as messages quote examples ('such as "1Gi", "20Gi" or 2'): YAML reads them the same way.
_SCALAR = r'"(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?|null|true|false'
_SUCH_AS = re.compile(rf"such as ((?:{_SCALAR})(?:(?:, | or )(?:{_SCALAR}))*)")


def examples_in(line: str) -> list[Any]:
    return [json.loads(m) for group in _SUCH_AS.findall(line) for m in re.findall(_SCALAR, group)]


def _raw(config: dict[str, Any]) -> dict[str, Any]:
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("pgstack:")}


def _put(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted key path (list indices as numbers) in raw config, creating objects on the way."""
    *parents, last = path.split(".")
    node: Any = raw
    for part in parents:
        child = node[int(part)] if isinstance(node, list) else node.get(part)
        if not isinstance(child, dict | list):
            child = {}
            node[part] = child
        node = child
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def _message_line(raw: dict[str, Any], path: str) -> str:
    """The message line for `path` (empty when the config is accepted: the BAD row's own test reports that)."""
    try:
        parse_settings(raw)
    except ConfigError as err:
        return next((line.strip() for line in str(err).splitlines() if line.strip().startswith(f"{PROJECT}:{path}:")), "")
    return ""


# Rows whose message is pydantic's own (types, bounds, literals, unknown keys) or asks for a key to be unset:
# they name the accepted form without examples.
WITHOUT_EXAMPLES = ("without quotes", "greater than", "unknown key", "'", "unset", "an object")
EXAMPLE_CASES = [
    pytest.param(b, example, id=f"{b[2]}={b[3][:20]} -> {json.dumps(example)}")
    for b in BAD
    for example in examples_in(_message_line(_raw(bad_config(b[0], b[1])), b[2]))
]


@pytest.mark.parametrize(("row", "example"), EXAMPLE_CASES)
def test_every_example_in_a_message_is_accepted_where_it_was_given(row: tuple[str, Any, str, str, str], example: Any) -> None:
    key, value, path = row[0], row[1], row[2]
    raw = _raw(bad_config(key, value))
    if path.endswith("Labels"):  # the bad part was a label key: the example is a key
        _put(raw, path, {example: "x"})
    else:
        _put(raw, path, example)
    parse_settings(raw)


def test_messages_of_our_own_rules_give_examples() -> None:
    """Every BAD row gives examples unless its message is a type, bound, literal, unknown-key or 'unset' one."""
    missing = []
    for key, value, path, _, _ in BAD:
        line = _message_line(_raw(bad_config(key, value)), path)
        if not examples_in(line) and not any(w in line for w in WITHOUT_EXAMPLES):
            missing.append(line)
    assert missing == []
    assert len(EXAMPLE_CASES) >= 100


_DID_YOU_MEAN = re.compile(r"did you mean ([\w.]+)\?")
KEY_CASES = [b for b in BAD if _DID_YOU_MEAN.search(_message_line(_raw(bad_config(b[0], b[1])), b[2]))]


@pytest.mark.parametrize("row", KEY_CASES, ids=[b[2] for b in KEY_CASES])
def test_every_key_a_message_suggests_is_accepted_with_the_value(row: tuple[str, Any, str, str, str]) -> None:
    key, value, path = row[0], row[1], row[2]
    raw = _raw(bad_config(key, value))
    match = _DID_YOU_MEAN.search(_message_line(raw, path))
    assert match is not None
    *parents, wrong = path.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[match[1].rsplit(".", 1)[-1]] = node.pop(wrong)
    parse_settings(raw)


def test_a_top_level_key_in_the_wrong_case_names_the_key() -> None:
    config = stack_config("dev")
    config[f"{PROJECT}:Postgres"] = config.pop(f"{PROJECT}:postgres")
    meant = r"pgstack:Postgres: unknown key; did you mean pgstack:postgres\? \(keys are case-sensitive\)$"
    with pytest.raises(pulumi.RunError, match=meant):
        run_program(config)


def test_unknown_top_level_key_is_rejected() -> None:
    config = stack_config("dev") | {f"{PROJECT}:postgress": {"replicas": 2}}
    run = Run()
    with pytest.raises(pulumi.RunError, match=r"pgstack:postgress: unknown key; did you mean pgstack:postgres\?$"):
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


@pytest.mark.parametrize("key", ["kubernetes:enableSecretMutable", "kubernetes:enableConfigMapMutable"])
def test_a_stack_cannot_turn_the_mutable_content_flags_off(key: str) -> None:
    """Off, a rotation or a new pgstack version is refused on a protected stack: one line naming the key,
    the value and the accepted form, before any resource is registered."""
    run = Run()
    with pytest.raises(pulumi.RunError, match=rf"{key}: 'false'; expected true \(set in Pulumi.yaml"):
        run_program(stack_config("prod") | {key: False}, run=run)
    assert run.resources == []


# ------------------------------------------------------------------ secret config: readable forms, accepted examples

_SECRET_BASE: dict[str, dict[str, Any]] = {
    "backupTarget": {"url": "s3://b@r/", "credentials": {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}},
    "dumpS3": {"accessKeyId": "k", "secretAccessKey": "s"},
}
_SECRET_SETTINGS = parse_settings({"backup": {"dumps": {"s3Remote": "bucket/prefix"}}})


@pytest.mark.parametrize("loc", list(SECRET_FORMS), ids=[".".join(k) for k in SECRET_FORMS])
def test_a_secret_fields_form_is_words_and_its_examples_are_accepted(loc: tuple[str, str]) -> None:
    top, field = loc
    raw = copy.deepcopy(_SECRET_BASE)
    raw[top][field] = "no way!"
    with pytest.raises(ConfigError) as caught:
        parse_secrets(raw, _SECRET_SETTINGS)
    [line] = [line.strip() for line in str(caught.value).splitlines() if line.strip().startswith(f"{PROJECT}:{top}.{field}:")]
    assert line == f"{PROJECT}:{top}.{field}: invalid (value hidden: secret); expected {SECRET_FORMS[loc]}"
    assert "no way" not in str(caught.value) and "pattern" not in line
    examples = examples_in(line)
    assert examples
    for example in examples:
        raw[top][field] = example
        parse_secrets(raw, _SECRET_SETTINGS)
