"""The README's restore manifests are objects the cluster accepts, and fit what the program creates."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

from tests.conftest import settings_of
from tests.tools.test_render import KUBERNETES_VERSIONS, crd_schemas
from tools.stack_files import ROOT

MANIFESTS = ROOT / "docs" / "restore-from-longhorn-backup.yaml"


def _objects() -> list[dict[str, object]]:
    return [o for o in yaml.safe_load_all(Path(MANIFESTS).read_text()) if o]


def test_restore_manifests_pass_the_schemas() -> None:
    objects = _objects()
    assert [o["kind"] for o in objects] == ["Volume", "PersistentVolume", "PersistentVolumeClaim"]
    schemas = crd_schemas()
    volume = objects[0]
    jsonschema.validate(volume, schemas[("longhorn.io/v1beta2", "Volume")])
    for obj in objects[1:]:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_restored_claim_is_the_one_the_program_adopts() -> None:
    volume, pv, pvc = _objects()
    settings = settings_of("dev")
    spec = pvc["spec"]
    assert isinstance(spec, dict) and isinstance(pv["spec"], dict) and isinstance(volume["spec"], dict)
    assert pvc["metadata"] == {"name": f"data-{settings.postgres.name}-0", "namespace": settings.namespace}
    # The program's claim names the stack's class: a different class would be refused on a bound claim.
    assert spec["storageClassName"] == pv["spec"]["storageClassName"] == settings.storage.className
    assert spec["volumeName"] == pv["metadata"]["name"] == pv["spec"]["csi"]["volumeHandle"] == volume["metadata"]["name"]  # type: ignore[index]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert int(volume["spec"]["size"]) == 20 * 1024**3
