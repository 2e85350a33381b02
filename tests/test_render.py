"""Offline render: every object of every stack is a valid Kubernetes object, and secrets stay out."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from stacks.render import REDACTED, Run, kubernetes_objects, main, render
from tests.conftest import settings_of

KUBERNETES_VERSIONS = ["1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_passes_strict_schema_validation(stack_run: Run, version: str) -> None:
    objects = kubernetes_objects(stack_run)
    assert len(objects) >= 9
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)  # raises on any unknown or invalid field


def test_strict_validation_can_fail() -> None:
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"clusterIp": "None"}}, "1.33.0", strict=True
        )


def test_render_command_writes_yaml_without_secret_values(tmp_path: Path, stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([stack, "--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("*.yaml"))
    assert [str(p) for p in files] <= capsys.readouterr().out.split()
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in files}
    assert {"StatefulSet", "Service", "Secret", "ConfigMap", "Namespace", "StorageClass", "PodDisruptionBudget"} <= kinds
    secret = yaml.safe_load(next(tmp_path.glob("secret-*.yaml")).read_text())
    assert set(secret["stringData"].values()) == {REDACTED}
    releases = sorted((tmp_path / "helm").glob("*.yaml"))
    assert [p.name for p in releases] == (["release-longhorn.yaml"] if settings_of(stack).longhorn.install else [])
    for path in releases:
        assert yaml.safe_load(path.read_text())["chart"] == "longhorn"


def test_render_rewrites_the_directory(tmp_path: Path) -> None:
    (tmp_path / "stale.yaml").write_text("kind: Stale\n")
    written = render("dev", tmp_path)
    assert not (tmp_path / "stale.yaml").exists()
    assert all(p.exists() for p in written)
