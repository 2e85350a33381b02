"""Config rules that accept: grammars the cluster uses, per-field defaults, names at their limits, majors, and
warnings for config the program never reads. The refusals are the BAD table in tests/stacks/test_config.py."""

from __future__ import annotations

import logging
import re
from datetime import date
from decimal import Decimal
from typing import Any

import pulumi
import pytest

from components.quantity import quantity
from stacks.config import (
    CONFIG_KEYS,
    PG_END_OF_LIFE,
    PROJECT,
    SECRET_KEYS,
    SUPPORTED_PG_MAJORS,
    ConfigError,
    edit_distance,
    end_of_life_warning,
    ignored_settings_warnings,
    parse_settings,
    unread_config_keys,
)
from tests.conftest import STS, program_run
from tools.mock_run import Run, run_program
from tools.mock_run import plain as _plain
from tools.render import kubernetes_objects
from tools.stack_files import stack_config

# ------------------------------------------------------------------ quantities

# (quantity, its value or None when the API server's grammar refuses it)
QUANTITIES: list[tuple[str, Decimal | None]] = [
    ("1Gi", Decimal(2**30)),
    ("500m", Decimal("0.5")),
    ("2", Decimal(2)),
    ("1.5", Decimal("1.5")),
    (".5", Decimal("0.5")),
    ("1.", Decimal(1)),
    ("+1k", Decimal(1000)),
    ("1e3", Decimal(1000)),
    ("1E-3", Decimal("0.001")),
    ("1E", Decimal(10**18)),  # the exa suffix, not an exponent
    ("100n", Decimal("1E-7")),
    ("5u", Decimal("0.000005")),
    ("1 Gi", None),
    ("500 m", None),
    (" 1Gi", None),
    ("1Gi ", None),
    ("1Gi\n", None),
    ("1GB", None),
    ("1ki", None),  # binary suffixes are capitalised: Ki
    ("1K", None),  # decimal kilo is k
    ("1e", None),
    ("1e1.5", None),
    ("1,5", None),
    ("0x10", None),
    ("1_000", None),
    ("\u0661", None),  # ARABIC-INDIC DIGIT ONE: a digit, but not an ASCII one
    ("", None),
]


@pytest.mark.parametrize(("text", "value"), QUANTITIES, ids=[repr(q[0]) for q in QUANTITIES])
def test_quantity_grammar_is_the_api_servers(text: str, value: Decimal | None) -> None:
    if value is None:
        with pytest.raises(ValueError, match="not a Kubernetes quantity"):
            quantity(text)
    else:
        assert quantity(text) == value


# (resources as the stack writes them, the completed requests and limits)
RESOURCES: list[tuple[dict[str, Any], dict[str, dict[str, str]]]] = [
    ({}, {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}),
    ({"limits": {"memory": "2Gi"}}, {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}),
    ({"limits": {"memory": "512Mi"}}, {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "512Mi"}}),
    ({"requests": {"cpu": "500m"}}, {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}),
    ({"requests": {"cpu": 4}}, {"requests": {"cpu": "4", "memory": "1Gi"}, "limits": {"cpu": "4", "memory": "1Gi"}}),
    ({"limits": {"cpu": "500m"}}, {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "1Gi"}}),
    (
        {"requests": {"memory": "4Gi"}, "limits": {"cpu": 8}},
        {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "8", "memory": "4Gi"}},
    ),
    ({"requests": {}, "limits": {}}, {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}),
    (
        {"requests": {"cpu": 0.25, "memory": 536870912}},
        {"requests": {"cpu": "0.25", "memory": "536870912"}, "limits": {"cpu": "2", "memory": "1Gi"}},
    ),
    (
        {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}},
        {"requests": {"cpu": "2", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
    ),
]


@pytest.mark.parametrize(("given", "completed"), RESOURCES, ids=[str(r[0]) for r in RESOURCES])
def test_resources_default_per_field_and_keep_limits_above_requests(given: dict[str, Any], completed: dict[str, dict[str, str]]) -> None:
    assert parse_settings({"postgres": {"resources": given}}).postgres.resources.model_dump() == completed


def test_numbers_reach_the_cluster_as_quantity_strings() -> None:
    config = stack_config("dev") | {
        f"{PROJECT}:postgres": {
            "storageSize": 2147483648,
            "shmSize": 268435456,
            "resources": {"requests": {"cpu": 0.5}, "limits": {"cpu": 2}},
        }
    }
    run = program_run(config, "dev")
    sts = _plain(run.one(STS, "postgres").inputs["spec"])
    [pg] = [c for c in sts["template"]["spec"]["containers"] if c["name"] == "postgres"]
    assert pg["resources"] == {"requests": {"cpu": "0.5", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    claims = [o for o in kubernetes_objects(run) if o["kind"] == "PersistentVolumeClaim"]
    assert claims and all(c["spec"]["resources"]["requests"]["storage"] == "2147483648" for c in claims)
    shm = next(v for v in sts["template"]["spec"]["volumes"] if "emptyDir" in v and v["emptyDir"].get("medium") == "Memory")
    assert shm["emptyDir"]["sizeLimit"] == "268435456"


def test_the_smallest_volume_is_accepted() -> None:
    assert parse_settings({"postgres": {"storageSize": "100Mi"}}).postgres.storageSize == "100Mi"
    assert parse_settings({"postgres": {"storageSize": 104857600}}).postgres.storageSize == "104857600"
    assert parse_settings({"backup": {"dumps": {"storageSize": "100Mi"}}}).backup.dumps is not None
    with pytest.raises(ConfigError, match="at least 100Mi"):
        parse_settings({"postgres": {"storageSize": 104857599}})


# ------------------------------------------------------------------ formats that are accepted

ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("short repository", {"postgres": {"image": {"repository": "postgres"}}}),
    ("repository with a namespace", {"postgres": {"image": {"repository": "library/postgres"}}}),
    ("registry with a port", {"postgres": {"image": {"repository": "registry.example.com:5000/db/postgres"}}}),
    ("localhost registry", {"postgres": {"image": {"repository": "localhost:5000/postgres"}}}),
    ("IPv6 registry", {"postgres": {"image": {"repository": "[fd00::1]:5000/postgres"}}}),
    ("uppercase domain", {"postgres": {"image": {"repository": "Registry.Example.com/postgres"}}}),
    ("separators", {"postgres": {"image": {"repository": "ghcr.io/my-org/pg__images/postgres.db--x"}}}),
    ("major 15", {"postgres": {"image": {"tag": "15"}}}),
    ("15 minor on trixie", {"postgres": {"image": {"tag": "15.15-trixie"}}}),
    ("16 on bookworm", {"postgres": {"image": {"tag": "16.11-bookworm"}}}),
    ("17", {"postgres": {"image": {"tag": "17.7"}}}),
    ("IPv4 network", {"postgres": {"networkPolicy": {"allowFrom": [{"cidr": "10.20.0.0/16"}]}}}),
    ("IPv4 host", {"postgres": {"networkPolicy": {"allowFrom": [{"cidr": "192.168.1.7/32"}]}}}),
    ("IPv6 network", {"postgres": {"networkPolicy": {"allowFrom": [{"cidr": "fd00:10::/64"}]}}}),
    ("everything", {"postgres": {"networkPolicy": {"allowFrom": [{"cidr": "0.0.0.0/0"}]}}}),
    (
        "labels",
        {
            "postgres": {
                "networkPolicy": {
                    "allowFrom": [
                        {
                            "podLabels": {"app.kubernetes.io/name": "api", "Tier_2": "Back.End", "empty": ""},
                            "namespaceLabels": {"kubernetes.io/metadata.name": "payments"},
                        }
                    ]
                }
            }
        },
    ),
    ("strict-local on one replica", {"storage": {"dataLocality": "strict-local", "numberOfReplicas": 1}}),
    ("Longhorn default strict-local on one replica", {"longhorn": {"defaultDataLocality": "strict-local", "defaultReplicaCount": 1}}),
    ("existing class alone", {"longhorn": {"install": False}, "storage": {"existingClass": "csi-disk"}}),
    ("name at its limit", {"postgres": {"name": "p" * 44}}),
    (
        "class name at its limit with snapshots",
        {"storage": {"className": "c" * 31}, "backup": {"snapshots": {"schedule": "@daily", "retain": 3}}},
    ),
    ("long class name without Longhorn jobs", {"storage": {"className": "c" * 60}}),
    (
        "requests exactly the largest node",
        {"postgres": {"largestNode": {"cpu": 4, "memory": "16Gi"}, "resources": {"requests": {"cpu": "4", "memory": "16Gi"}}}},
    ),
]


@pytest.mark.parametrize(("what", "raw"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted(what: str, raw: dict[str, Any]) -> None:
    parse_settings(raw)


# Schedules robfig/cron's ParseStandard accepts in both versions (Longhorn's v1.2.0, Kubernetes' v3.0.1) and the
# API server lets through: components/cron.py. The refusals are BAD rows in tests/stacks/test_config.py.
SCHEDULES = [
    "0 3 * * *",
    "*/15 * * * *",
    "5/20 1-5 * * *",  # N/step is N-max/step
    "0 3 * * mon-FRI",
    "0 3 1 jan,Jul ?",
    "0 0 1-7 * 0",
    "0 3 * * 6",
    "59 23 31 12 *",
    "0 3 1,,15 * *",  # empty list items are dropped (strings.FieldsFunc)
    "+5 3 * * *",  # Go's strconv.Atoi takes a sign
    "@daily",
    "@midnight",
    "@annually",
]


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_schedules_kubernetes_and_longhorn_accept_are_accepted(schedule: str) -> None:
    job = {"schedule": schedule, "retain": 3}
    backup = parse_settings({"backup": {"snapshots": job, "volumeBackups": job, "dumps": {"schedule": schedule}}}).backup
    assert backup.snapshots is not None and backup.dumps is not None
    assert (backup.snapshots.schedule, backup.dumps.schedule) == (schedule, schedule)


# ------------------------------------------------------------------ names, checked against what is rendered

# apimachinery's rules for the kinds the program names after postgres.name (pkg/util/validation).
_DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def test_the_longest_name_makes_only_objects_the_cluster_accepts() -> None:
    """With the longest postgres.name, the most replicas and dumps on, every rendered name passes its kind's rule."""
    name = "p" * 44
    config = stack_config("dev") | {
        f"{PROJECT}:postgres": {"name": name, "replicas": 15},
        f"{PROJECT}:backup": {"dumps": {"keep": 3}},
    }
    objects = kubernetes_objects(program_run(config, "dev"))
    assert any(o["kind"] == "StatefulSet" and o["metadata"]["name"] == f"{name}-standby" for o in objects)
    for obj in objects:
        kind, object_name = obj["kind"], obj["metadata"]["name"]
        assert len(object_name) <= 253 and _DNS_1123_SUBDOMAIN.fullmatch(object_name), (kind, object_name)
        if kind == "Service":
            assert len(object_name) <= 63 and _DNS_1035.fullmatch(object_name), object_name
        if kind == "CronJob":
            assert len(object_name) <= 52, object_name
        if kind == "StatefulSet":
            # controller-revision-hash=<name>-<up to 10 characters> on every pod; pod names are hostnames.
            assert len(object_name) + 1 + 10 <= 63, object_name
            for ordinal in range(obj["spec"].get("ordinals", {}).get("start", 0), 15):
                assert len(pod := f"{object_name}-{ordinal}") <= 63 and _DNS_1123_LABEL.fullmatch(pod), pod
        for label in (obj["metadata"].get("labels") or {}).values():
            assert len(label) <= 63, (kind, object_name, label)


def test_a_name_one_character_longer_is_refused_before_any_resource() -> None:
    run = Run()
    with pytest.raises(pulumi.RunError, match="at most 44 characters"):
        run_program(stack_config("dev") | {f"{PROJECT}:postgres": {"name": "p" * 45}}, run=run)
    assert run.resources == []


# ------------------------------------------------------------------ PostgreSQL majors


def test_postgres_15_deploys_with_the_pre_18_layout() -> None:
    config = stack_config("dev") | {f"{PROJECT}:postgres": {"image": {"tag": "15"}}}
    sts = _plain(program_run(config, "dev").one(STS, "postgres").inputs["spec"])
    [pg] = [c for c in sts["template"]["spec"]["containers"] if c["name"] == "postgres"]
    env = {e["name"]: e.get("value") for e in pg["env"]}
    assert pg["image"] == "docker.io/library/postgres:15"
    assert env["PGDATA"] == "/var/lib/postgresql/data/pgdata"


def test_end_of_life_dates_live_in_one_table() -> None:
    """Every supported major has its date there, and every major refused for its age ended before the oldest one supported."""
    assert set(SUPPORTED_PG_MAJORS) <= set(PG_END_OF_LIFE)
    oldest = PG_END_OF_LIFE[min(SUPPORTED_PG_MAJORS)]
    assert all(ended < oldest for major, ended in PG_END_OF_LIFE.items() if major < min(SUPPORTED_PG_MAJORS))
    assert PG_END_OF_LIFE[14] == date(2026, 11, 12) and PG_END_OF_LIFE[15] == date(2027, 11, 11)


# (tag, today, words of the warning or None)
END_OF_LIFE: list[tuple[str, date, str | None]] = [
    ("15", date(2027, 11, 11), None),
    ("15", date(2027, 11, 12), "PostgreSQL 15 reached end of life on 2027-11-11"),
    ("18.1", date(2027, 11, 12), None),
    ("16", date(2028, 11, 10), "dump and restore into a newer major"),
]


@pytest.mark.parametrize(("tag", "today", "words"), END_OF_LIFE)
def test_a_supported_major_past_its_end_of_life_warns(tag: str, today: date, words: str | None) -> None:
    warning = end_of_life_warning(parse_settings({"postgres": {"image": {"tag": tag}}}), today)
    assert (warning is None) if words is None else (words in (warning or ""))


# ------------------------------------------------------------------ config the program never reads

# (config key as the program receives it, warns?)
UNREAD: list[tuple[str, bool]] = [
    ("pgstack:postgres", False),
    ("pgstack:backupTarget", False),
    ("kubernetes:context", False),
    ("kubernetes:namespace", False),  # the provider's own setting, not ours
    ("random:anything", False),
    ("pulumi:tags", False),
    ("aws:region", False),
    ("app:replicas", False),
    ("pgstak:postgres", True),  # one edit from pgstack
    ("pgstacks:storage", True),
    ("pgsatck:foo", True),  # two edits
    ("pgstk:foo", True),
    ("pgs:foo", False),  # four edits, and foo is not ours
    ("confg:postgres", True),  # postgres is one of our keys
    ("myproject:namespace", True),
    ("postgres:replicas", True),  # the namespace is one of our keys
    ("postgres", True),  # no namespace: only a runner that skipped Pulumi's namespacing hands over such a key
    ("storage.className", True),
    ("PGSTACK:foo", True),  # the project's namespace in another case
    ("app:Postgres", True),  # one of our keys in another case
]


@pytest.mark.parametrize(("key", "warns"), UNREAD)
def test_config_keys_that_look_like_ours_are_named(key: str, warns: bool) -> None:
    warnings = unread_config_keys([key])
    assert bool(warnings) == warns
    if warns:
        assert f"config key {key} " in warnings[0] and "is never read" in warnings[0]


@pytest.mark.parametrize("key", [k for k, warns in UNREAD if warns])
def test_the_key_a_warning_suggests_is_one_the_program_reads(key: str) -> None:
    [warning] = unread_config_keys([key])
    meant = re.search(r"Did you mean pgstack:(\w+|<key> \()", warning)
    assert meant is not None and meant[1] in (*CONFIG_KEYS, *SECRET_KEYS, "<key> ("), warning


def test_edit_distance() -> None:
    assert [edit_distance(a, "pgstack") for a in ("pgstack", "pgstak", "pgsatck", "pgstack-x", "", "kubernetes")] == [0, 1, 2, 2, 7, 10]


def test_the_program_warns_about_unread_keys_and_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    config = stack_config("dev") | {"pgstak:postgres": {"replicas": 2}, "kubernetes:namespace": "db", "kubernetes:context": "lab"}
    with caplog.at_level(logging.WARNING):
        run = program_run(config, "dev")
    warned = [r.getMessage() for r in caplog.records if "is never read" in r.getMessage()]
    assert len(warned) == 1 and "pgstak:postgres" in warned[0] and "Did you mean pgstack:postgres?" in warned[0]
    assert run.resources


def test_longhorn_settings_of_a_stack_that_does_not_install_it_warn(caplog: pytest.LogCaptureFixture) -> None:
    settings = parse_settings({"longhorn": {"install": False, "defaultReplicaCount": 2, "chartVersion": "1.10.1", "namespace": "lh"}})
    [warning] = ignored_settings_warnings(settings)
    assert "longhorn.chartVersion, longhorn.defaultReplicaCount: never applied" in warning and "namespace" not in warning.split(":")[1]
    assert ignored_settings_warnings(parse_settings({"longhorn": {"install": False, "namespace": "lh"}})) == []
    assert ignored_settings_warnings(parse_settings({"longhorn": {"defaultReplicaCount": 2}})) == []
    with caplog.at_level(logging.WARNING):
        run_program(stack_config("dev") | {f"{PROJECT}:longhorn": {"install": False, "defaultReplicaCount": 1}}, stack="dev")
    assert any("longhorn.defaultReplicaCount: never applied" in r.getMessage() for r in caplog.records)
