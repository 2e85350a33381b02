"""The database pods' WAL archiving (components/wal_pod.py, wired by postgres_pod, postgres_statefulset and
postgres_network): archive parameters only when on, rclone copied in, rclone's remote WAL from the Secret."""

from __future__ import annotations

import json
from typing import Any

from pulumi.runtime import rpc

from components import logical_backup_pod, wal_pod
from components.pod_env_contract import POD_ENV
from components.postgres_conf import data_layout
from components.postgres_pod import init_container, postgres_env
from stacks.args import postgres_args, wal_args
from stacks.config import DumpS3Secret, parse_settings
from tests.components.wal_runs import WAL_S3, no_wal, plain_spec, wal_prod
from tools.mock_run import plain

STS = "kubernetes:apps/v1:StatefulSet"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
S3 = {"s3Remote": "bucket/wal"}
ARCHIVE_ARGS = ['archive_command=/scripts/wal-archive.sh "%p" "%f"', "archive_mode=on", "archive_timeout=5min"]


def _pods(run: Any) -> list[dict[str, Any]]:
    return [plain_spec(s)["template"]["spec"] for s in run.of_type(STS)]


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


def test_one_pinned_rclone_image() -> None:
    assert wal_pod.RCLONE_IMAGE == logical_backup_pod.RCLONE_IMAGE and "@sha256:" in wal_pod.RCLONE_IMAGE


def test_every_database_pod_archives_through_wal_archive_sh_with_rclone_copied_in() -> None:
    pods = _pods(wal_prod())
    assert len(pods) == 2, "the primary's set and the standbys': any pod may become the primary"
    for pod in pods:
        assert [c["name"] for c in pod["initContainers"]] == ["rclone-copy", "init"]
        copy = pod["initContainers"][0]
        assert copy["image"] == wal_pod.RCLONE_IMAGE and copy["command"][-1] == 'cp "$(command -v rclone)" /opt/rclone/rclone'
        assert copy["securityContext"]["runAsNonRoot"] and copy["securityContext"]["readOnlyRootFilesystem"]
        assert copy["volumeMounts"] == [{"name": "rclone", "mountPath": "/opt/rclone"}]
        postgres = pod["containers"][0]
        assert [a for a in postgres["args"] if a.startswith("archive_")] == ARCHIVE_ARGS
        assert {"name": "rclone", "mountPath": "/opt/rclone", "readOnly": True} in postgres["volumeMounts"]
        env = _env(postgres)
        assert env["WAL_TARGET"]["value"] == "WAL:pgstack-prod/wal" and env["WAL_RCLONE"]["value"] == wal_pod.RCLONE_PATH
        assert {"name": "rclone", "emptyDir": {"sizeLimit": "128Mi"}} in pod["volumes"]


def test_rclone_reads_its_remote_from_the_secret_as_a_file_and_no_value_is_a_literal() -> None:
    run = wal_prod()
    for pod in _pods(run):
        postgres = pod["containers"][0]
        env = _env(postgres)
        assert env["RCLONE_CONFIG"] == {"name": "RCLONE_CONFIG", "value": "/etc/postgresql/wal-s3/rclone.conf"}
        assert not [n for n in env if n.startswith("RCLONE_CONFIG_")], "no secret in the environment (checkov CKV_K8S_35)"
        assert {"name": "wal-s3", "mountPath": "/etc/postgresql/wal-s3", "readOnly": True} in postgres["volumeMounts"]
        assert {
            "name": "wal-s3",
            "secret": {"secretName": "postgres-wal-s3", "items": [{"key": "rclone.conf", "path": "rclone.conf"}], "defaultMode": 0o440},
        } in pod["volumes"]
        # Only the postgres container runs archive_command: the others carry exactly the contract's variables.
        for other in [*pod["initContainers"][1:], *pod["containers"][1:2]]:
            assert [e["name"] for e in other["env"]] == [v.name for v in POD_ENV.variables if v.set_by_pod]
            assert "wal-s3" not in [m["name"] for m in other["volumeMounts"]]
    rendered = json.dumps([plain(r.inputs) for r in run.resources if r.type != "kubernetes:core/v1:Secret"])
    assert WAL_S3["secretAccessKey"] not in rendered and WAL_S3["accessKeyId"] not in rendered
    secret = run.one("kubernetes:core/v1:Secret", "postgres-wal-s3")
    assert rpc.is_rpc_secret(secret.inputs["stringData"])
    assert secret.options.protect, "protected like the credentials Secret (policy production-protect)"
    assert plain(secret.inputs["stringData"]) == {
        "rclone.conf": "[WAL]\ntype = s3\nprovider = Minio\naccess_key_id = walkey0001\nsecret_access_key = wal-s3cr3t-key\n"
        "endpoint = https://minio.example:9000\n"
    }


def test_without_archiving_no_parameter_no_rclone_and_no_s3_egress() -> None:
    run = no_wal()
    for pod in _pods(run):
        assert [c["name"] for c in pod["initContainers"]] == ["init"]
        postgres = pod["containers"][0]
        assert not [a for a in postgres["args"] if a.startswith("archive_")]
        assert _env(postgres)["WAL_TARGET"]["value"] == "" and not [n for n in _env(postgres) if n.startswith("RCLONE")]
        assert not {"rclone", "wal-s3"} & {v["name"] for v in pod["volumes"]}
    assert not [s for s in run.of_type("kubernetes:core/v1:Secret") if s.name.endswith("wal-s3")]
    egress = plain_spec(run.one(NETPOL, "postgres-netpol"))["egress"]
    assert [sorted(p["port"] for p in rule["ports"]) for rule in egress] == [[53, 53], [5432]]


def test_the_database_policy_opens_the_s3_port_and_admits_the_base_backup_job() -> None:
    spec = plain_spec(wal_prod().one(NETPOL, "postgres-netpol"))
    assert spec["egress"][-1] == {"ports": [{"port": 9000, "protocol": "TCP"}]}, "the endpoint's port, any address"
    sources = [p["podSelector"]["matchLabels"] for p in spec["ingress"][0]["from"] if "podSelector" in p]
    assert {"app.kubernetes.io/name": "postgresql-wal-backup", "app.kubernetes.io/instance": "postgres"} in sources


def test_archive_parameters_are_the_harness_settings() -> None:
    """What tests/components/scripts/pg_harness.py wal_settings() archives real servers with, at the pod's path."""
    assert wal_pod.archive_parameters("/scripts", "5min") == {
        "archive_mode": "on",
        "archive_command": '/scripts/wal-archive.sh "%p" "%f"',
        "archive_timeout": "5min",
    }


def test_a_restore_gives_the_init_container_rclone_its_config_and_the_point() -> None:
    """PITR_FROM and PITR_TARGET in every container's env (the contract), rclone and its config for init.sh's
    wal-pitr.sh; without restoreFrom, init.sh runs initdb (PITR_FROM empty)."""
    wal = {"s3Remote": "bucket/wal", "restoreFrom": {"s3Remote": "old/wal", "time": "2026-12-06 17:00:00+00"}}
    settings = parse_settings({"backup": {"wal": wal}})
    args = postgres_args(settings, "postgres", "fast", wal_args(settings, DumpS3Secret.model_validate(WAL_S3)))
    layout = data_layout(18)
    env = postgres_env("postgres", args, layout, "primary", "peers")
    assert (env["PITR_FROM"], env["PITR_TARGET"]) == ("WAL:old/wal", "2026-12-06 17:00:00+00")
    init = init_container(args, env, layout)
    assert [e.name for e in init.env][-1] == "RCLONE_CONFIG"
    assert {m.name for m in init.volume_mounts} >= {"rclone", "wal-s3"}
    plain_env = postgres_env("postgres", postgres_args(settings, "postgres", "fast"), layout, "primary", "peers")
    assert (plain_env["PITR_FROM"], plain_env["PITR_TARGET"]) == ("", "latest")
    archiving_only = postgres_args(
        settings, "postgres", "fast", wal_args(parse_settings({"backup": {"wal": S3}}), DumpS3Secret.model_validate(WAL_S3))
    )
    assert "wal-s3" not in {m.name for m in init_container(archiving_only, env, layout).volume_mounts}
