"""Offline render: every object of every stack is a valid Kubernetes object, and secrets stay out."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import fixed_project, settings_of
from tools.mock_run import Run
from tools.render import MARKER, REDACTED, OutputDirError, kubernetes_objects, main, render

KUBERNETES_VERSIONS = ["1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0"]

# kubernetes_validate.validate reads and parses its schema files again for every object it checks (1.4 MB of
# definitions per version): most of the time of the strict validation below. Read once per file here; the
# library treats the parsed schemas as read-only (referencing's Resource.from_contents).
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents)


# The CRDs of the custom resources a stack can render, at the pinned versions: Longhorn's (upstream
# deploy/longhorn.yaml) and prometheus-operator's beside the repository, cert-manager's in tests/fixtures.
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference"
LONGHORN_REFERENCE = REFERENCE / "longhorn-1.10.1"
LONGHORN_CRDS = LONGHORN_REFERENCE / "crds-recurringjob-backuptarget-volume.yaml"
CNPG_REFERENCE = REFERENCE / "cloudnative-pg-1.30.0"
CRD_FILES = (
    LONGHORN_CRDS,
    REFERENCE / "prometheus-operator-0.93.0" / "monitoring.coreos.com_podmonitors.yaml",
    REFERENCE / "prometheus-operator-0.93.0" / "monitoring.coreos.com_prometheusrules.yaml",
    Path(__file__).resolve().parents[1] / "fixtures" / "cert-manager-1.21.1" / "cert-manager.io_certificates.yaml",
    *(CNPG_REFERENCE / f"postgresql.cnpg.io_{kind}.yaml" for kind in ("clusters", "poolers", "scheduledbackups")),
)
CUSTOM_GROUPS = ("longhorn.io", "monitoring.coreos.com", "cert-manager.io", "postgresql.cnpg.io")


def _is_custom(obj: dict[str, Any]) -> bool:
    return str(obj["apiVersion"]).split("/")[0] in CUSTOM_GROUPS


@pytest.mark.scanner
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


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict openAPIV3Schema, from the reference CRDs. Read once per process (1.2 MB of
    CloudNativePG CRDs among them); the validators only read the schemas."""
    assert LONGHORN_CRDS.is_file(), f"{LONGHORN_CRDS} is missing: the tests need ../shared beside the repository"
    out = {}
    # Go's RE2 takes a flag group after '^' (prometheus-operator's '^(?i)(abort|warn)?$'); Python only first.
    texts = (path.read_text().replace("^(?i)", "(?i)^") for path in CRD_FILES)
    for crd in (c for text in texts for c in yaml.load_all(text, Loader=yaml.CSafeLoader)):
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            out[key] = _strict(version["schema"]["openAPIV3Schema"])
    return out


def test_custom_resources_pass_their_crd_schema(stack_run: Run) -> None:
    schemas = crd_schemas()
    for obj in [o for o in kubernetes_objects(stack_run) if _is_custom(o)]:
        schema = schemas.get((obj["apiVersion"], obj["kind"]))
        assert schema is not None, f"no CRD for {obj['apiVersion']} {obj['kind']} at the pinned versions (CRD_FILES)"
        jsonschema.validators.validator_for(schema)(schema).validate(obj)


@pytest.mark.parametrize("stack", ["dev", "prod"], ids=["fixed_dev", "fixed_prod"])
def test_cloudnative_pg_renders_pass_their_crd_schemas(stack: str) -> None:
    """The engine variant of the fixed dev and prod (tests/stacks/test_database_cnpg.py): a Cluster, and each
    custom resource, strictly valid against the 1.30.0 CRDs."""
    from tests.stacks.test_database_cnpg import cnpg_run

    schemas = crd_schemas()
    custom = [o for o in kubernetes_objects(cnpg_run(stack)) if _is_custom(o)]
    assert [o["kind"] for o in custom if o["apiVersion"] == "postgresql.cnpg.io/v1"] == ["Cluster"]
    for obj in custom:
        schema = schemas[(obj["apiVersion"], obj["kind"])]
        jsonschema.validators.validator_for(schema)(schema).validate(obj)


@pytest.mark.scanner
@pytest.mark.parametrize("stack", ["dev", "prod"], ids=["fixed_dev", "fixed_prod"])
def test_cloudnative_pg_renders_pass_strict_schema_validation(stack: str) -> None:
    from tests.stacks.test_database_cnpg import cnpg_run

    objects = [o for o in kubernetes_objects(cnpg_run(stack)) if not _is_custom(o)]
    assert "StatefulSet" not in {o["kind"] for o in objects}
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSIONS[-1], strict=True)


def test_crd_validation_can_fail() -> None:
    schema = crd_schemas()[("longhorn.io/v1beta2", "RecurringJob")]
    good = {"apiVersion": "longhorn.io/v1beta2", "kind": "RecurringJob", "metadata": {"name": "x"}, "spec": {"task": "snapshot"}}
    jsonschema.validate(good, schema)
    for bad in ({"task": "snapshots"}, {"task": "backup", "retian": 3}, {"retain": "3"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(good | {"spec": bad}, schema)


@pytest.mark.scanner
def test_strict_validation_can_fail() -> None:
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"clusterIp": "None"}}, "1.33.0", strict=True
        )


def test_render_command_writes_yaml_without_secret_values(tmp_path: Path, stack: str, capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_of(stack)
    out = tmp_path / "out"
    assert main([stack, "--out", str(out)]) == 0
    # It prints each file it wrote, once, and nothing else: exactly the files now in the directory.
    written = sorted(str(p) for p in out.rglob("*") if p.is_file() and p.name != MARKER)
    assert sorted(capsys.readouterr().out.splitlines()) == written
    files = sorted(out.glob("*.yaml"))
    kinds = {yaml.load(p.read_text(), Loader=yaml.CSafeLoader)["kind"] for p in files}
    assert {"StatefulSet", "Service", "Secret", "ConfigMap", "Namespace", "PodDisruptionBudget"} <= kinds
    assert ("StorageClass" in kinds) == (settings.storage.existingClass is None)
    secret = yaml.safe_load(next(out.glob("secret-*.yaml")).read_text())
    assert set(secret["stringData"].values()) == {REDACTED}
    releases = sorted((out / "helm").glob("*.yaml"))
    assert [p.name for p in releases] == (["release-longhorn.yaml"] if settings.longhorn.install else [])
    for path in releases:
        assert yaml.safe_load(path.read_text())["chart"] == "longhorn"


# ------------------------------------------------------------------ the output directory


def _tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_rerender_removes_only_the_stale_files_it_wrote(tmp_path: Path) -> None:
    # A render with the Longhorn release (dev installs it), then one without (staging does not):
    # the release file the first render wrote is stale, and goes. The fixed dev and staging: a user's may differ.
    out, project = tmp_path / "out", fixed_project(tmp_path)
    first = render("dev", out, project)
    release = out / "helm" / "release-longhorn.yaml"
    assert release in first and release.is_file()
    (out / "notes.yaml").write_text("mine: true\n")  # a file the render did not write
    (out / "helm" / "values-override.yaml").write_text("mine: true\n")
    second = render("staging", out, project)
    assert not release.exists()
    assert not [p for p in first if p not in second and p.exists()]
    assert all(p.is_file() for p in second)
    assert (out / "notes.yaml").read_text() == "mine: true\n"
    assert (out / "helm" / "values-override.yaml").read_text() == "mine: true\n"
    listed = [line for line in (out / MARKER).read_text().splitlines() if line and not line.startswith("#")]
    assert sorted(listed) == sorted(str(p.relative_to(out)) for p in second)


def test_render_claims_a_new_or_empty_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert render("dev", empty)
    assert (empty / MARKER).is_file()
    assert render("dev", tmp_path / "new" / "dir")


@pytest.mark.parametrize(
    "existing",
    [
        {"stale.yaml": "kind: Stale\n"},  # what the render used to delete
        {"Pulumi.yaml": "name: someone-elses\n", "Pulumi.dev.yaml": "config: {}\n"},
        {"notes.txt": "x\n"},
    ],
    ids=["a yaml file", "a project", "any file"],
)
def test_render_refuses_a_directory_it_did_not_write(tmp_path: Path, existing: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    for name, text in existing.items():
        (tmp_path / name).write_text(text)
    before = _tree(tmp_path)
    assert main(["dev", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"render: refusing to write into {tmp_path}: it is not empty and was not written by the render (no {MARKER}); "
        "choose a new or empty directory, or delete this one if it holds only an older render"
    )
    assert _tree(tmp_path) == before


def test_render_refuses_a_marker_that_points_outside_its_directory(tmp_path: Path) -> None:
    victim = tmp_path / "victim.yaml"
    victim.write_text("kind: Mine\n")
    out = tmp_path / "out"
    render("dev", out)
    (out / MARKER).write_text("../victim.yaml\n")
    with pytest.raises(OutputDirError, match=r"lists '../victim.yaml', not a file the render writes"):
        render("dev", out)
    assert victim.read_text() == "kind: Mine\n"
