"""Offline render: every object of every stack is a valid Kubernetes object, and secrets stay out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from stacks.render import REDACTED, Run, kubernetes_objects, main, render
from tests.conftest import settings_of

KUBERNETES_VERSIONS = ["1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0"]


# Longhorn's CRDs at the pinned chart version (upstream deploy/longhorn.yaml), beside the repository.
LONGHORN_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "longhorn-1.10.1"
LONGHORN_CRDS = LONGHORN_REFERENCE / "crds-recurringjob-backuptarget-volume.yaml"


def _is_custom(obj: dict[str, Any]) -> bool:
    return str(obj["apiVersion"]).split("/")[0].endswith("longhorn.io")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_passes_strict_schema_validation(stack_run: Run, version: str) -> None:
    objects = [o for o in kubernetes_objects(stack_run) if not _is_custom(o)]
    assert len(objects) >= 9
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)  # raises on any unknown or invalid field


def _strict(schema: Any) -> Any:
    """A CRD schema that, like kubernetes-validate --strict, refuses fields it does not declare
    (the API server would silently prune them)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict openAPIV3Schema, from the reference CRDs."""
    assert LONGHORN_CRDS.is_file(), f"{LONGHORN_CRDS} is missing: the tests need ../shared beside the repository"
    out = {}
    for crd in yaml.safe_load_all(LONGHORN_CRDS.read_text()):
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            out[key] = _strict(version["schema"]["openAPIV3Schema"])
    return out


def test_custom_resources_pass_their_crd_schema(stack_run: Run) -> None:
    schemas = crd_schemas()
    for obj in [o for o in kubernetes_objects(stack_run) if _is_custom(o)]:
        schema = schemas.get((obj["apiVersion"], obj["kind"]))
        assert schema is not None, f"no CRD for {obj['apiVersion']} {obj['kind']} at the pinned Longhorn version"
        jsonschema.validate(obj, schema)


def test_crd_validation_can_fail() -> None:
    schema = crd_schemas()[("longhorn.io/v1beta2", "RecurringJob")]
    good = {"apiVersion": "longhorn.io/v1beta2", "kind": "RecurringJob", "metadata": {"name": "x"}, "spec": {"task": "snapshot"}}
    jsonschema.validate(good, schema)
    for bad in ({"task": "snapshots"}, {"task": "backup", "retian": 3}, {"retain": "3"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(good | {"spec": bad}, schema)


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
