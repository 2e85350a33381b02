"""Secure by default: restricted Pod Security field by field, NetworkPolicy, checkov, and no leaked values."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.pod_security import SKIP_HIGH_UID, SKIP_PULL_ALWAYS, SKIP_SIDECAR_READINESS, checkov_skips
from tests.components.wal_runs import wal_prod
from tests.conftest import STS, dns_rule_of, run_with, settings_of
from tests.stacks.test_database_cnpg import cnpg_run
from tools.mock_run import Run, plain
from tools.render import kubernetes_objects, render
from tools.stack_files import ROOT

# Volume types the restricted profile admits (Pod Security Standards, v1.33).
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def _pod_templates(run: Run) -> list[tuple[str, dict[str, Any]]]:
    return [(sts.name, dict(plain(sts.inputs["spec"]["template"]["spec"]))) for sts in run.of_type(STS)]


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
            if c["name"] == "metrics":
                continue  # the exporter's own image: tests/components/test_postgres_exporter.py
            assert c["image"] == expected
            assert bool(re.search(r"@sha256:[0-9a-f]{64}$", c["image"])) == (image.digest is not None), c["image"]
            assert c["imagePullPolicy"] == image.pullPolicy


def test_network_policy(stack_run: Run, stack: str) -> None:
    pg = settings_of(stack).postgres
    policies = stack_run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    if not pg.networkPolicy.enabled:
        assert not policies
        return
    policy = plain(stack_run.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", f"{pg.name}-netpol").inputs["spec"])
    instance = {"app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": pg.name}
    assert policy["podSelector"] == {"matchLabels": instance}
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    ingress, *scrapers = policy["ingress"]
    metrics = settings_of(stack).metrics  # the metrics port's rule: tests/components/test_postgres_exporter.py
    assert len(scrapers) == (1 if metrics.enabled and metrics.allowFrom else 0)
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
    assert dns == dns_rule_of(policy["egress"], stack)  # UDP and TCP 53
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
    ingress = plain(run.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "postgres-netpol").inputs["spec"])["ingress"][0]
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
        # --compact: no code block per check in the report (72 MB of JSON for this run's renders, 2 MB without:
        # printing it was half of checkov's time); the checks and their results are the same.
        [_checkov(), "-d", str(directory), "--framework", "kubernetes", "--output", "json", "--skip-download", "--compact"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(directory), "BC_SKIP_MAPPING": "TRUE"},
    )
    start = proc.stdout.find("{")
    assert start >= 0, proc.stdout + proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout[start:])
    return report


# The key of the deliberately broken render in checkov_report (stack names cannot hold a '/'), and the prefix
# of the CloudNativePG engine's renders of the fixed dev and prod (tests/stacks/test_database_cnpg.py).
REGRESSION = "regression/dev"
CNPG_RENDER = "cnpg/"
# prod as a deploy renders it with its S3 account set (tests/components/wal_runs.py): WAL archiving on, its
# base-backup CronJob and the rclone init container included (the stack file alone cannot hold the secret).
WAL_RENDER = "wal/prod"
CHECK_KINDS = ("passed_checks", "failed_checks", "skipped_checks")


def _scan(base: Path, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The renders of these stacks under base/<stack> (REGRESSION: dev's, with a regression), scanned by
    one checkov run (its start-up is most of its time), its results split by directory. Running checkov
    on each directory alone gives the same results. A render that fails is its own test's error."""
    reports: dict[str, dict[str, Any]] = {}
    for key in keys:
        try:
            if key.startswith(CNPG_RENDER):
                _write_objects(cnpg_run(key.removeprefix(CNPG_RENDER)), base / key)
            elif key == WAL_RENDER:
                _write_objects(wal_prod(), base / key)
            else:
                render(key.removeprefix("regression/"), base / key)
        except Exception as exc:  # reported by that stack's test, not by every checkov test
            reports[key] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        reports[key] = {"results": {kind: [] for kind in CHECK_KINDS}}
        if key == REGRESSION:
            sts = next((base / key).glob("statefulset-*.yaml"))
            sts.write_text(sts.read_text().replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"))
    if not any("results" in report for report in reports.values()):
        return reports
    scanned = _run_checkov(base)
    for kind in CHECK_KINDS:
        for check in scanned["results"][kind]:
            directory = str(Path(check["file_path"].lstrip("/")).parent)
            reports[directory]["results"][kind].append(check)
    return reports


def _write_objects(run: Run, directory: Path) -> None:
    """A run's objects as the render writes them (Secret values redacted), one file each."""
    directory.mkdir(parents=True)
    for i, obj in enumerate(kubernetes_objects(run)):
        (directory / f"{i:03}-{obj['kind'].lower()}.yaml").write_text(yaml.safe_dump(obj))


@pytest.fixture(scope="session")
def checkov_report(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """checkov's results for the renders the selected checkov tests need (the new-stacks copy selects no regression),
    made once per pytest run: the xdist workers share the first one's, through a file in the run's
    temporary directory."""
    per_stack = test_checkov_reports_zero_failed_checks
    tests = [item for item in request.session.items if isinstance(item, pytest.Function) and item.function is per_stack]
    keys = sorted({str(item.callspec.params["stack"]) for item in tests})
    engine = test_checkov_reports_zero_failed_checks_on_cloudnative_pg
    keys += sorted({CNPG_RENDER + str(i.callspec.params["stack"]) for i in request.session.items if getattr(i, "function", None) is engine})
    wal = test_checkov_reports_zero_failed_checks_with_wal_archiving
    keys += [WAL_RENDER] if any(getattr(i, "function", None) is wal for i in request.session.items) else []
    regression = test_checkov_would_catch_a_regression
    keys += [REGRESSION] if any(getattr(i, "function", None) is regression for i in request.session.items) else []
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's directory, above each worker's
    result = shared / "checkov-report.json"
    with (shared / "checkov-report.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.is_file():
            work = Path(tempfile.mkdtemp(prefix="checkov-", dir=shared))
            result.write_text(json.dumps(_scan(work, keys)))
    reports: dict[str, dict[str, Any]] = json.loads(result.read_text())
    return reports


def _report(checkov_report: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    report = checkov_report[key]
    if "error" in report:
        pytest.fail(f"render {key}: {report['error']}", pytrace=False)
    return report


@pytest.mark.scanner
def test_checkov_reports_zero_failed_checks(checkov_report: dict[str, dict[str, Any]], stack: str) -> None:
    report = _report(checkov_report, stack)
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
    assert len(report["results"]["passed_checks"]) > 50
    skipped = {c["check_id"]: c["check_result"].get("suppress_comment", "") for c in report["results"]["skipped_checks"]}
    assert set(skipped) == {SKIP_HIGH_UID[0], SKIP_SIDECAR_READINESS[0]} | ({SKIP_PULL_ALWAYS[0]} if pinned_if_not_present else set())
    assert all(reason.strip() for reason in skipped.values())


@pytest.mark.scanner
@pytest.mark.parametrize("stack", ["dev", "prod"], ids=["fixed_dev", "fixed_prod"])
def test_checkov_reports_zero_failed_checks_on_cloudnative_pg(checkov_report: dict[str, dict[str, Any]], stack: str) -> None:
    """The fixed dev and prod under postgres.engine cloudnative-pg (both pin the image by digest): the operator's pods
    are not ours to render, and what we render (the dump CronJob, the NetworkPolicy, Secrets, namespaces) passes."""
    report = _report(checkov_report, CNPG_RENDER + stack)
    assert [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]] == []
    # prod runs the dump CronJob, the only pod template either render holds.
    assert len(report["results"]["passed_checks"]) > (20 if stack == "prod" else 2)
    assert all(c["check_result"].get("suppress_comment", "").strip() for c in report["results"]["skipped_checks"])


@pytest.mark.scanner
def test_checkov_reports_zero_failed_checks_with_wal_archiving(checkov_report: dict[str, dict[str, Any]]) -> None:
    report = _report(checkov_report, WAL_RENDER)
    assert [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]] == []
    # The base-backup CronJob was among what checkov judged.
    judged = {c["resource"] for kind in CHECK_KINDS for c in report["results"][kind]}
    name = settings_of("prod").postgres.name
    assert any(r.startswith("CronJob.") and r.endswith(f".{name}-wal") for r in judged), sorted(judged)[:20]
    assert all(c["check_result"].get("suppress_comment", "").strip() for c in report["results"]["skipped_checks"])


@pytest.mark.scanner
def test_checkov_would_catch_a_regression(checkov_report: dict[str, dict[str, Any]]) -> None:
    failed = {c["check_id"] for c in _report(checkov_report, REGRESSION)["results"]["failed_checks"]}
    assert "CKV_K8S_22" in failed


# ------------------------------------------------------------------ the pull-policy skip

DIGEST = "sha256:" + "0123456789abcdef" * 4
PINNED = re.compile(r"[^@\s]+@sha256:[0-9a-f]{64}")  # a reference pinned by digest, with or without a tag


def _pull_skips(annotations: dict[str, str]) -> list[str]:
    return [v for k, v in annotations.items() if k.startswith("checkov.io/skip") and v.startswith(f"{SKIP_PULL_ALWAYS[0]}=")]


@pytest.mark.parametrize(
    "image",
    ["postgres:18.1", "docker.io/library/postgres:18.1", f"docker.io/library/postgres:18.1@{DIGEST}", f"postgres@{DIGEST}"],
)
@pytest.mark.parametrize("pull_policy", ["IfNotPresent", "Always", "Never"])
@pytest.mark.parametrize("sidecar", [False, True])
def test_pull_policy_skip_only_for_an_image_pinned_by_digest(image: str, pull_policy: str, sidecar: bool) -> None:
    # checkov's CKV_K8S_15 (pull Always) is skipped only where IfNotPresent cannot mean "whatever the node
    # has under that tag": an image pinned by digest.
    skips = _pull_skips(checkov_skips(image, pull_policy, sidecar=sidecar))
    expected = bool(PINNED.fullmatch(image)) and pull_policy == "IfNotPresent"
    assert skips == ([f"{SKIP_PULL_ALWAYS[0]}={SKIP_PULL_ALWAYS[1]}"] if expected else [])


def _containers(value: Any) -> list[dict[str, Any]]:
    """Every container and init container anywhere in an object (a pod template, a CronJob's job template)."""
    if isinstance(value, list):
        return [c for v in value for c in _containers(v)]
    if not isinstance(value, dict):
        return []
    own = list(value.get("containers", [])) + list(value.get("initContainers", []))
    return own + [c for v in value.values() for c in _containers(v)]


def _workloads_with_pull_skip(run: Run) -> list[tuple[str, list[dict[str, Any]]]]:
    """(object, its containers) for every object that skips CKV_K8S_15."""
    return [
        (f"{obj['kind']} {obj['metadata']['name']}", _containers(obj.get("spec")))
        for obj in kubernetes_objects(run)
        if _pull_skips((obj.get("metadata") or {}).get("annotations") or {})
    ]


@pytest.mark.parametrize(
    "image",
    [{"digest": None}, {"digest": DIGEST}],
    ids=["tag, IfNotPresent", "digest, IfNotPresent"],  # the other policies: the test above
)
def test_rendered_pull_policy_skip_only_on_workloads_whose_images_are_pinned(image: dict[str, Any]) -> None:
    run = run_with({"pgstack:postgres": {"image": {"tag": "18.1", **image}}, "pgstack:backup": {"dumps": {"keep": 3}}})
    skipping = _workloads_with_pull_skip(run)
    for name, containers in skipping:
        images = [c["image"] for c in containers]
        assert images and all(PINNED.fullmatch(i) for i in images), f"{name} skips {SKIP_PULL_ALWAYS[0]} with {images}"
        assert {c["imagePullPolicy"] for c in containers} == {"IfNotPresent"}, name
    # The skip is there where it holds: the database's StatefulSets and the dump job.
    workloads = [o for o in kubernetes_objects(run) if o["kind"] in ("StatefulSet", "CronJob")]
    assert len(skipping) == (len(workloads) if image["digest"] is not None else 0)


def test_the_security_doc_lists_every_checkov_skip() -> None:
    doc = (ROOT / "docs" / "security.md").read_text()
    for check, reason in (SKIP_HIGH_UID, SKIP_PULL_ALWAYS, SKIP_SIDECAR_READINESS):
        assert check in doc
        assert reason in doc
