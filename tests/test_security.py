"""Secure by default: restricted Pod Security field by field, NetworkPolicy, checkov, and no leaked values."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.postgres_statefulset import SKIP_HIGH_UID, SKIP_PULL_ALWAYS, SKIP_SIDECAR_READINESS
from stacks.render import ROOT, Run, _plain, kubernetes_objects, render
from tests.conftest import STS, run_with, settings_of

# Volume types the restricted profile admits (Pod Security Standards, v1.33).
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def _pod_templates(run: Run) -> list[tuple[str, dict[str, Any]]]:
    return [(sts.name, dict(_plain(sts.inputs["spec"]["template"]["spec"]))) for sts in run.of_type(STS)]


def test_database_namespace_enforces_restricted(stack_run: Run) -> None:
    labels = stack_run.one("kubernetes:core/v1:Namespace", "database-ns").inputs["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_every_pod_template_passes_restricted(stack_run: Run, stack: str) -> None:
    templates = _pod_templates(stack_run)
    assert templates
    for name, pod in templates:
        ctx = pod["securityContext"]
        assert ctx["runAsNonRoot"] is True, name
        assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (999, 999, 999), name
        assert ctx["fsGroupChangePolicy"] == "OnRootMismatch", name
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for forbidden in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
            assert not pod.get(forbidden), f"{name}: {forbidden}"
        assert pod["automountServiceAccountToken"] is False
        assert pod["serviceAccountName"] == settings_of(stack).postgres.name
        for volume in pod["volumes"]:
            kinds = set(volume) - {"name"}
            assert kinds <= RESTRICTED_VOLUMES, f"{name}: volume {volume['name']} uses {kinds}"
        for c in pod["containers"] + pod["initContainers"]:
            sc = c["securityContext"]
            where = f"{name}/{c['name']}"
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert not sc.get("privileged"), where
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0, where
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert not any(p.get("hostPort") for p in c.get("ports", [])), where
            assert c["imagePullPolicy"] in ("IfNotPresent", "Always"), where


def test_writable_paths_are_only_what_postgres_needs(stack_run: Run, stack: str) -> None:
    for name, pod in _pod_templates(stack_run):
        empty_dirs = {v["name"]: v["emptyDir"] for v in pod["volumes"] if "emptyDir" in v}
        assert set(empty_dirs) == {"run", "tmp", "shm"}, name
        assert empty_dirs["shm"] == {"medium": "Memory", "sizeLimit": settings_of(stack).postgres.shmSize}
        postgres = next(c for c in pod["containers"] if c["name"] == "postgres")
        mounts = {m["mountPath"]: m for m in postgres["volumeMounts"]}
        assert mounts["/dev/shm"]["name"] == "shm"
        assert mounts["/tmp"]["name"] == "tmp"
        assert mounts["/var/run/postgresql"]["name"] == "run"
        assert mounts["/etc/postgresql/secrets"]["readOnly"] is True


def test_shm_size_comes_from_config() -> None:
    run = run_with({"pgstack:postgres": {"shmSize": "1Gi"}})
    pod = _pod_templates(run)[0][1]
    assert next(v for v in pod["volumes"] if v["name"] == "shm")["emptyDir"]["sizeLimit"] == "1Gi"


def test_passwords_reach_pods_only_as_files(stack_run: Run, stack: str) -> None:
    for name, pod in _pod_templates(stack_run):
        secrets = next(v for v in pod["volumes"] if v["name"] == "secrets")
        assert secrets["secret"] == {"secretName": f"{settings_of(stack).postgres.name}-credentials", "defaultMode": 0o440}
        for c in pod["containers"] + pod["initContainers"]:
            for env in c["env"]:
                assert "secretKeyRef" not in (env.get("valueFrom") or {}), f"{name}/{c['name']}: {env['name']}"
                assert "PASSWORD" not in env["name"] or env["name"].endswith("_FILE"), env["name"]
            assert not c.get("envFrom")


def test_image_is_the_configured_one_pinned_when_a_digest_is_set(stack_run: Run, stack: str) -> None:
    image = settings_of(stack).postgres.image
    expected = f"{image.repository}:{image.tag}" + (f"@{image.digest}" if image.digest else "")
    for _, pod in _pod_templates(stack_run):
        for c in pod["containers"] + pod["initContainers"]:
            assert c["image"] == expected
            assert bool(re.search(r"@sha256:[0-9a-f]{64}$", c["image"])) == (image.digest is not None), c["image"]
            assert c["imagePullPolicy"] == image.pullPolicy


def test_network_policy(stack_run: Run, stack: str) -> None:
    pg = settings_of(stack).postgres
    policies = stack_run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    if not pg.networkPolicy.enabled:
        assert not policies
        return
    policy = _plain(stack_run.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", f"{pg.name}-netpol").inputs["spec"])
    instance = {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": pg.name}
    assert policy["podSelector"] == {"matchLabels": instance}
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    [ingress] = policy["ingress"]
    assert ingress["ports"] == [{"port": 5432, "protocol": "TCP"}]  # the container's port, whatever the Service's
    assert {"podSelector": {"matchLabels": instance}} in ingress["from"]
    # The peers and every allowFrom entry (by default one: the pods of the database's namespace).
    for client in pg.networkPolicy.allowFrom:
        if client.cidr is not None:
            assert {"ipBlock": {"cidr": client.cidr}} in ingress["from"]
        else:
            namespaces = {} if client.namespaceLabels is None else {"namespaceSelector": {"matchLabels": client.namespaceLabels}}
            assert {"podSelector": {"matchLabels": client.podLabels}, **namespaces} in ingress["from"]
    # Nothing else but the dump job's pods, when the stack has dumps.
    dumps = settings_of(stack).backup.dumps is not None
    assert len(ingress["from"]) == 1 + len(pg.networkPolicy.allowFrom) + dumps
    dns, peers = policy["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    # The stack's DNS form (default: kube-dns in kube-system).
    form = pg.networkPolicy.dns
    if form.any:
        assert "to" not in dns
    else:
        selector = {"namespaceSelector": {"matchLabels": form.namespaceLabels}, "podSelector": {"matchLabels": form.podLabels}}
        assert dns["to"] == [selector] + [{"ipBlock": {"cidr": c}} for c in form.cidrs]
    assert peers == {"to": [{"podSelector": {"matchLabels": instance}}], "ports": [{"port": 5432, "protocol": "TCP"}]}


def test_network_policy_clients_from_config_and_off_switch() -> None:
    run = run_with(
        {
            "pgstack:postgres": {
                "networkPolicy": {
                    "allowFrom": [
                        {"podLabels": {"app": "api"}, "namespaceLabels": {"team": "payments"}},
                        {"cidr": "10.20.0.0/16"},
                    ]
                }
            }
        }
    )
    ingress = _plain(run.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "postgres-netpol").inputs["spec"])["ingress"][0]
    assert {"podSelector": {"matchLabels": {"app": "api"}}, "namespaceSelector": {"matchLabels": {"team": "payments"}}} in ingress["from"]
    assert {"ipBlock": {"cidr": "10.20.0.0/16"}} in ingress["from"]
    assert {"podSelector": {"matchLabels": {}}} not in ingress["from"]
    off = run_with({"pgstack:postgres": {"networkPolicy": {"enabled": False}}})
    assert not off.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")


def test_no_generated_value_in_any_rendered_object_or_plain_output(stack_run: Run) -> None:
    rendered = json.dumps(kubernetes_objects(stack_run))
    plain_outputs = json.dumps({k: v for k, v in stack_run.outputs.items() if k not in stack_run.secret_outputs})
    assert stack_run.generated
    for value in stack_run.generated:
        assert value not in rendered
        assert value not in plain_outputs
    # And the scan itself can fail: the secret output does hold one.
    assert any(value in stack_run.outputs["connectionUri"] for value in stack_run.generated)


# ------------------------------------------------------------------ checkov


def _checkov() -> str:
    found = shutil.which("checkov") or str(ROOT / ".venv-checkov" / "bin" / "checkov")
    if not Path(found).exists():
        pytest.fail("checkov is not installed; bin/test installs it into .venv-checkov")
    return found


def _run_checkov(directory: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [_checkov(), "-d", str(directory), "--framework", "kubernetes", "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(directory), "BC_SKIP_MAPPING": "TRUE"},
    )
    start = proc.stdout.find("{")
    assert start >= 0, proc.stdout + proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout[start:])
    return report


def test_checkov_reports_zero_failed_checks(tmp_path: Path, stack: str) -> None:
    render(stack, tmp_path)
    report = _run_checkov(tmp_path)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    # The image checks follow the stack's config: a stack that does not pin its image by digest fails
    # CKV_K8S_43 (use a digest) and, unless it pulls Always, CKV_K8S_15 (IfNotPresent then means
    # "whatever the node has under that tag"); a pinned image pulled IfNotPresent skips CKV_K8S_15 with a reason.
    image = settings_of(stack).postgres.image
    pinned_if_not_present = image.digest is not None and image.pullPolicy == "IfNotPresent"
    expected_failed = ({"CKV_K8S_43"} if image.digest is None else set()) | (
        {"CKV_K8S_15"} if image.pullPolicy != "Always" and not pinned_if_not_present else set()
    )
    assert {check for check, _ in failed} == expected_failed, failed
    assert report["summary"]["passed"] > 50
    skipped = {c["check_id"]: c["check_result"].get("suppress_comment", "") for c in report["results"]["skipped_checks"]}
    assert set(skipped) == {SKIP_HIGH_UID[0], SKIP_SIDECAR_READINESS[0]} | ({SKIP_PULL_ALWAYS[0]} if pinned_if_not_present else set())
    assert all(reason.strip() for reason in skipped.values())


def test_checkov_would_catch_a_regression(tmp_path: Path) -> None:
    render("dev", tmp_path)
    sts = next(tmp_path.glob("statefulset-*.yaml"))
    sts.write_text(sts.read_text().replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"))
    failed = {c["check_id"] for c in _run_checkov(tmp_path)["results"]["failed_checks"]}
    assert "CKV_K8S_22" in failed


def test_readme_lists_every_checkov_skip() -> None:
    readme = (ROOT / "README.md").read_text()
    for check, reason in (SKIP_HIGH_UID, SKIP_PULL_ALWAYS, SKIP_SIDECAR_READINESS):
        assert check in readme
        assert reason in readme
